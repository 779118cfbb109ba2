/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "pool.h"

/* The main thread's event loop: accepts connections, parks them in epoll
 * between turns, hands ready ones to the pool, enforces timeouts on parked
 * ones, and handles signals. See the DESIGN block in acceptor.c. */

typedef struct Acceptor Acceptor;

typedef struct AcceptorOptions {
        const char *config_path; /* re-read on SIGHUP */
        bool socket_activated;   /* systemd holds copies of the listeners */
        uint64_t watchdog_usec;  /* WATCHDOG_USEC, 0 when off */
        /* Client sockets the descriptor limit leaves room for, lingering
         * ones included; max_connections is capped to it. */
        unsigned max_sockets;
} AcceptorOptions;

/* Takes ownership of the listening sockets. With socket activation, systemd
 * keeps its own copies, so on stop pending connections are left to the next
 * instance. SIGTERM, SIGINT and SIGHUP must already be blocked in every
 * thread. Returns 0 or -errno. */
int acceptor_new(ServeContext *ctx, Pool *pool, const int *listen_fds, size_t n_listen,
                 const AcceptorOptions *options, Acceptor **ret);

/* Serves until SIGTERM or SIGINT, then drains (bounded by the shutdown
 * timeout) and returns 0 once no connection is left; the pool is idle then
 * but not yet shut down. Returns -errno if the loop itself fails. */
int acceptor_run(Acceptor *a);

/* Closes every listener and remaining connection. Accepts NULL; returns NULL.
 * Call only after the pool has been shut down. */
Acceptor *acceptor_free(Acceptor *a);
