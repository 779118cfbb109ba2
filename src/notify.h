/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#include "macro.h"

/* Thin wrappers around sd_notify(3). Each sends one datagram; without
 * NOTIFY_SOCKET they do nothing. Failures are ignored: the service manager
 * going away must not stop us serving. */

void notify_ready(const char *status);
void notify_status(const char *format, ...) _printf_(1, 2);
/* RELOADING=1 with the CLOCK_MONOTONIC time, in one datagram, as
 * systemd.service(5) asks of Type=notify-reload services. */
void notify_reloading(uint64_t monotonic_usec, const char *status);
void notify_stopping(const char *status);
void notify_watchdog(void);
void notify_extend_timeout(uint64_t usec);
