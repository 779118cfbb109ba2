/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "pool.h"

/* The main thread's event loop: accepts connections, parks them in epoll
 * between turns, hands ready ones to the pool, enforces timeouts on parked
 * ones, and handles signals. See the DESIGN block in acceptor.c. */

typedef struct Acceptor Acceptor;

/* Takes ownership of the listening sockets. socket_activated tells whether
 * systemd holds its own copies (then pending connections are left to the
 * next instance on stop). SIGTERM, SIGINT and SIGHUP must already be blocked
 * in every thread. Returns 0 or -errno. */
int acceptor_new(ServeContext *ctx, Pool *pool, const int *listen_fds, size_t n_listen,
                 bool socket_activated, Acceptor **ret);

/* Serves until SIGTERM or SIGINT, then drains (bounded by the shutdown
 * timeout) and returns 0 once no connection is left; the pool is idle then
 * but not yet shut down. Returns -errno if the loop itself fails. */
int acceptor_run(Acceptor *a);

/* Closes every listener and remaining connection. Accepts NULL; returns NULL.
 * Call only after the pool has been shut down. */
Acceptor *acceptor_free(Acceptor *a);
