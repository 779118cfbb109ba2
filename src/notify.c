/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

void notify_ready(const char *status) {
        (void) sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_status(const char *format, ...) {
        char status[512];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(status, sizeof(status), format, ap);
        va_end(ap);
        (void) sd_notifyf(0, "STATUS=%s", status);
}

void notify_reloading(uint64_t monotonic_usec, const char *status) {
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=%s", monotonic_usec, status);
}

void notify_stopping(const char *status) {
        (void) sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void notify_watchdog(void) {
        (void) sd_notify(0, "WATCHDOG=1");
}

void notify_extend_timeout(uint64_t usec) {
        (void) sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
}
