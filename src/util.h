/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* Sets or clears O_NONBLOCK. Returns 0 or -errno. */
int fd_set_nonblock(int fd, bool nonblock);

/* Sets FD_CLOEXEC. Returns 0 or -errno. */
int fd_set_cloexec(int fd);

/* Writes a then b into out, NUL-terminated. Returns the length, or
 * -ENAMETOOLONG (out untouched past size) when it does not fit. For paths
 * built per request, where snprintf costs more than the lookup's own work. */
int str_join(char *out, size_t size, const char *a, const char *b);

/* "/proc/self/fd/N", the link through which a descriptor is opened anew. */
#define PROC_FD_PATH_MAX 32
void proc_fd_path(char out[static PROC_FD_PATH_MAX], int fd);
