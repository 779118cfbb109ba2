/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

_Atomic int log_max_level = LOG_INFO;
static bool log_prefix = true;

/* systemd connects a service's stderr to journald and says so with
 * JOURNAL_STREAM=DEVICE:INODE (systemd.exec(5)); only a stream that is
 * still that one understands "<N>". A terminal, a file or a pipe gets plain
 * lines. */
void log_open(void) {
        const char *stream = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        log_prefix = stream && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
                     fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",         [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",   [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_level_from_string(const char *s) {
        for (int i = 0; i < (int) ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int) ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

/* The whole line goes out in one write(), so lines from different threads
 * never interleave. */
int log_internal(int level, int error, const char *format, ...) {
        char line[LOG_LINE_MAX];
        va_list ap;
        int n;

        error = abs(error);
        n = log_prefix ? snprintf(line, sizeof(line), "<%d>", level) : 0;

        errno = error; /* so that %m expands to this error */
        va_start(ap, format);
        n += vsnprintf(line + n, sizeof(line) - (size_t) n, format, ap);
        va_end(ap);
        if (n > (int) sizeof(line) - 2)
                n = (int) sizeof(line) - 2;

        /* A line may not contain a newline, or journald would split it. */
        for (char *p = line; p < line + n; p++)
                if (*p == '\n')
                        *p = ' ';
        line[n++] = '\n';
        (void) !write(STDERR_FILENO, line, (size_t) n);
        return -error;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

bool log_ratelimit_pass(LogRateLimit *rl, unsigned *ret_suppressed) {
        uint64_t now = monotonic_usec();
        bool pass;

        pthread_mutex_lock(&rl->lock);
        if (rl->window_start_usec == 0 || now - rl->window_start_usec >= LOG_RATELIMIT_INTERVAL_USEC) {
                rl->window_start_usec = now;
                rl->n_in_window = 0;
        }
        pass = rl->n_in_window < LOG_RATELIMIT_BURST;
        if (pass) {
                rl->n_in_window++;
                *ret_suppressed = rl->n_suppressed;
                rl->n_suppressed = 0;
        } else
                rl->n_suppressed++;
        pthread_mutex_unlock(&rl->lock);
        return pass;
}
