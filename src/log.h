/* SPDX-License-Identifier: MIT */
#pragma once

#include <syslog.h>

#include "macro.h"

/* One line per event on stderr, prefixed "<N>" with the syslog priority, so
 * journald files each line at its level (see sd-daemon(3)). The level check
 * happens before any formatting, so a disabled level costs one comparison. */

/* Atomic: a reload changes it while workers read it. */
extern _Atomic int log_max_level;

/* Decides whether lines carry the "<N>" prefix: they do unless stderr is a
 * terminal, where a person reads them. */
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
