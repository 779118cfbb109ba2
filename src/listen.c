/* SPDX-License-Identifier: MIT */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

int listen_from_systemd(int fds[static LISTEN_MAX_FDS], int *ret_bad_fd) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(/* unset_environment= */ 1, &names);

        if (names) {
                for (char **p = names; *p; p++)
                        free(*p);
                free(names);
        }
        if (n <= 0)
                return n;
        if (n > LISTEN_MAX_FDS)
                return -E2BIG;

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, /* listening= */ 1) <= 0) {
                        *ret_bad_fd = fd;
                        return -EINVAL;
                }
                int r = fd_set_nonblock(fd, true);
                if (r < 0)
                        return r;
                r = fd_set_cloexec(fd);
                if (r < 0)
                        return r;
                fds[i] = fd;
        }
        return n;
}

static socklen_t listen_sockaddr(const ListenAddress *addr, struct sockaddr_storage *ss) {
        memset(ss, 0, sizeof(*ss));
        switch (addr->kind) {
        case LISTEN_INET: {
                struct sockaddr_in *sin = (struct sockaddr_in *) ss;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(addr->port);
                sin->sin_addr.s_addr = htonl(INADDR_ANY);
                if (addr->host[0] && inet_pton(AF_INET, addr->host, &sin->sin_addr) != 1)
                        return 0;
                return sizeof(*sin);
        }
        case LISTEN_INET6: {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(addr->port);
                sin6->sin6_addr = in6addr_any;
                if (addr->host[0] && inet_pton(AF_INET6, addr->host, &sin6->sin6_addr) != 1)
                        return 0;
                return sizeof(*sin6);
        }
        case LISTEN_UNIX: {
                struct sockaddr_un *sun = (struct sockaddr_un *) ss;
                sun->sun_family = AF_UNIX;
                if (strlen(addr->path) >= sizeof(sun->sun_path))
                        return 0;
                strcpy(sun->sun_path, addr->path);
                return sizeof(*sun);
        }
        }
        return 0;
}

/* Removes a socket file left behind by an earlier run, but never a file of
 * another kind that happens to sit at the path. */
static void unlink_stale_socket(const char *path) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
}

int listen_bind(const ListenAddress *addr) {
        static const int one = 1;
        struct sockaddr_storage ss;
        socklen_t len = listen_sockaddr(addr, &ss);

        if (len == 0)
                return -EINVAL;
        _cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;

        if (addr->kind == LISTEN_UNIX)
                unlink_stale_socket(addr->path);
        else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (addr->kind == LISTEN_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;

        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        if (listen(fd, LISTEN_BACKLOG) < 0)
                return -errno;
        return TAKE_FD(fd);
}

void listen_describe(int fd, char *buf, size_t size) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char host[INET6_ADDRSTRLEN];

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
                snprintf(buf, size, "fd %d", fd);
                return;
        }
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;
                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
                snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;
                inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
                snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
        } else if (ss.ss_family == AF_UNIX) {
                const struct sockaddr_un *sun = (const struct sockaddr_un *) &ss;
                snprintf(buf, size, "unix:%s", sun->sun_path[0] ? sun->sun_path : "(unnamed)");
        } else
                snprintf(buf, size, "fd %d", fd);
}
