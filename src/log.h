/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/* One line per event on stderr, prefixed "<N>" with the syslog priority
 * when stderr is journald's stream, so that journald files each line at its
 * level (see sd-daemon(3)). The level check happens before any formatting,
 * so a disabled level costs one comparison. */

/* Atomic: a reload changes it while workers read it. */
extern _Atomic int log_max_level;

/* Decides whether lines carry the "<N>" prefix: only when stderr is the
 * stream JOURNAL_STREAM= names. */
void log_open(void);

void log_set_max_level(int level);

/* Parses "err", "warning", "notice", "info", "debug" (and syslog's other
 * names). Returns the LOG_* value or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Writes the line and returns -abs(error) (or 0 when error is 0), so callers
 * can write: return log_error_errno(r, "Failed to ...: %m"); "%m" expands to
 * strerror(error). */
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...)                                       \
        ({                                                                      \
                int _level_ = (level), _e_ = (error);                           \
                _level_ <= log_max_level ? log_internal(_level_, _e_, __VA_ARGS__) \
                                         : -abs(_e_);                           \
        })

#define log_debug(...) (void) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) (void) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) (void) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) (void) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) (void) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* Lines caused by requests go through a limiter, so that a flood of bad
 * requests cannot flood the journal: at most LOG_RATELIMIT_BURST lines per
 * LOG_RATELIMIT_INTERVAL_USEC for each limiter; what is dropped is counted
 * and reported with the next line let through. */
#define LOG_RATELIMIT_BURST 10U
#define LOG_RATELIMIT_INTERVAL_USEC (10U * 1000000U)

typedef struct LogRateLimit {
        pthread_mutex_t lock;
        uint64_t window_start_usec;
        unsigned n_in_window;
        unsigned n_suppressed;
} LogRateLimit;

#define LOG_RATELIMIT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* True if a line may be written now; then *ret_suppressed is the number of
 * lines dropped since the last one let through. */
bool log_ratelimit_pass(LogRateLimit *rl, unsigned *ret_suppressed);

/* Like log_full_errno(), through the limiter rl. */
#define log_ratelimited_errno(level, rl, error, ...)                            \
        ({                                                                      \
                int _rl_level_ = (level), _rl_e_ = (error);                     \
                unsigned _rl_dropped_ = 0;                                      \
                if (_rl_level_ <= log_max_level && log_ratelimit_pass((rl), &_rl_dropped_)) { \
                        if (_rl_dropped_ > 0)                                   \
                                (void) log_internal(_rl_level_, 0, "(%u similar message(s) suppressed)", \
                                                    _rl_dropped_);              \
                        (void) log_internal(_rl_level_, _rl_e_, __VA_ARGS__);   \
                }                                                               \
                -abs(_rl_e_);                                                   \
        })
