/* SPDX-License-Identifier: MIT */
/*
 * The config loader on arbitrary text. Relative paths resolve against a
 * directory made once at start-up in $TMPDIR (removed at exit), holding
 * "www" (a root that exists), "logs" (a directory for the access log) and
 * "file" (not a directory), so inputs reach the checks that run after a
 * successful parse. Validation only looks at the file system (realpath,
 * stat), never writes to it.
 *
 * Checked: a failure leaves *ret untouched and explains itself; a success
 * stays within every documented limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char fuzz_base_dir[PATH_MAX];

static void fuzz_cleanup(void) {
        char path[PATH_MAX + 16];

        (void) snprintf(path, sizeof(path), "%s/www", fuzz_base_dir);
        (void) rmdir(path);
        (void) snprintf(path, sizeof(path), "%s/logs", fuzz_base_dir);
        (void) rmdir(path);
        (void) snprintf(path, sizeof(path), "%s/file", fuzz_base_dir);
        (void) unlink(path);
        (void) rmdir(fuzz_base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = getenv("TMPDIR");
        char path[PATH_MAX + 16];
        int fd;

        (void) argc;
        (void) argv;
        (void) snprintf(fuzz_base_dir, sizeof(fuzz_base_dir), "%s/webpoold-fuzz-config.XXXXXX",
                        tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(fuzz_base_dir)) {
                perror("mkdtemp");
                abort();
        }
        (void) atexit(fuzz_cleanup);
        (void) snprintf(path, sizeof(path), "%s/www", fuzz_base_dir);
        fuzz_check(mkdir(path, 0755) >= 0);
        (void) snprintf(path, sizeof(path), "%s/logs", fuzz_base_dir);
        fuzz_check(mkdir(path, 0755) >= 0);
        (void) snprintf(path, sizeof(path), "%s/file", fuzz_base_dir);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        fuzz_check(fd >= 0);
        (void) close(fd);
        return 0;
}

static int fuzz_terminated(const char *s, size_t size) {
        return memchr(s, '\0', size) != NULL;
}

static void fuzz_check_listen(const Config *c) {
        fuzz_check(c->n_listen >= 1 && c->n_listen <= CONFIG_MAX_LISTEN);
        for (size_t i = 0; i < c->n_listen; i++) {
                const ListenAddress *a = &c->listen[i];

                fuzz_check(a->kind == LISTEN_INET || a->kind == LISTEN_INET6 || a->kind == LISTEN_UNIX);
                fuzz_check(fuzz_terminated(a->text, sizeof(a->text)) && a->text[0] != '\0');
                fuzz_check(fuzz_terminated(a->host, sizeof(a->host)));
                fuzz_check(fuzz_terminated(a->path, sizeof(a->path)));
                if (a->kind == LISTEN_UNIX)
                        fuzz_check(a->path[0] == '/');
                else
                        fuzz_check(a->port > 0);
                for (size_t j = 0; j < i; j++)
                        fuzz_check(strcmp(a->text, c->listen[j].text) != 0);
        }
}

static void fuzz_check_config(const Config *c) {
        fuzz_check_listen(c);
        fuzz_check(fuzz_terminated(c->root, sizeof(c->root)) && c->root[0] == '/');
        fuzz_check(fuzz_terminated(c->index, sizeof(c->index)) && c->index[0] != '\0');
        fuzz_check(!strchr(c->index, '/') && strcmp(c->index, ".") != 0 && strcmp(c->index, "..") != 0);
        fuzz_check(fuzz_terminated(c->error_page_404, sizeof(c->error_page_404)));
        fuzz_check(c->error_page_404[0] == '\0' || c->error_page_404[0] == '/');
        fuzz_check(c->workers >= 1 && c->workers <= CONFIG_MAX_WORKERS);
        fuzz_check(c->max_connections >= 1 && c->max_connections <= CONFIG_MAX_CONNECTIONS);
        fuzz_check(c->max_header_bytes >= CONFIG_MIN_HEADER_BYTES &&
                   c->max_header_bytes <= CONFIG_MAX_HEADER_BYTES);
        fuzz_check(c->header_timeout_usec >= 1000 && c->header_timeout_usec <= CONFIG_MAX_TIMEOUT_USEC);
        fuzz_check(c->keepalive_timeout_usec <= CONFIG_MAX_TIMEOUT_USEC);
        fuzz_check(c->send_timeout_usec >= 1000 && c->send_timeout_usec <= CONFIG_MAX_TIMEOUT_USEC);
        fuzz_check(c->shutdown_timeout_usec >= 1000 && c->shutdown_timeout_usec <= CONFIG_MAX_TIMEOUT_USEC);
        fuzz_check(c->log_level >= LOG_EMERG && c->log_level <= LOG_DEBUG);
        fuzz_check(fuzz_terminated(c->access_log, sizeof(c->access_log)));
        fuzz_check(strcmp(c->access_log, "off") == 0 || strcmp(c->access_log, "journal") == 0 ||
                   c->access_log[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Static: a Config is some 60 kB, too much for each call's stack. */
        static Config config, untouched;
        ConfigError error;
        char *text = malloc(size + 1);
        int r;

        fuzz_check(text);
        memcpy(text, data, size);
        text[size] = '\0';

        memset(&config, 0xa5, sizeof(config));
        memset(&error, 0x5a, sizeof(error));
        untouched = config;
        r = config_parse_string(text, fuzz_base_dir, &config, &error);
        free(text);

        fuzz_check(r == 0 || r == -EINVAL);
        if (r < 0) {
                fuzz_check(memcmp(&config, &untouched, sizeof(config)) == 0);
                fuzz_check(fuzz_terminated(error.key, sizeof(error.key)));
                fuzz_check(fuzz_terminated(error.message, sizeof(error.message)));
                fuzz_check(error.message[0] != '\0');
                return 0;
        }
        fuzz_check_config(&config);
        return 0;
}
