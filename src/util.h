/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* Sets or clears O_NONBLOCK. Returns 0 or -errno. */
int fd_set_nonblock(int fd, bool nonblock);

/* Sets FD_CLOEXEC. Returns 0 or -errno. */
int fd_set_cloexec(int fd);
