/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "config.h"

#define LISTEN_BACKLOG 4096
#define LISTEN_MAX_FDS CONFIG_MAX_LISTEN

/* Takes the sockets systemd passed (LISTEN_FDS), checks each is a listening
 * stream socket, makes them non-blocking and close-on-exec, and unsets the
 * LISTEN_* variables so nothing we start inherits them. Returns how many
 * (0 when not socket-activated), or -errno: -EINVAL names a passed fd that
 * is not a listening stream socket (its number in *ret_bad_fd). */
int listen_from_systemd(int fds[static LISTEN_MAX_FDS], int *ret_bad_fd);

/* Creates, binds and listens on one configured address: non-blocking,
 * close-on-exec, SO_REUSEADDR, IPV6_V6ONLY for IPv6 (so "[::]:80" and
 * "0.0.0.0:80" can both be bound). A stale unix socket file is replaced.
 * Returns the fd or -errno. */
int listen_bind(const ListenAddress *addr);

/* Describes a bound socket ("127.0.0.1:8080", "[::1]:80", "unix:/run/x")
 * for the log. */
void listen_describe(int fd, char *buf, size_t size);
