/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
}

int fd_set_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        int wanted = nonblock ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
        if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return -errno;
        if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

int str_join(char *out, size_t size, const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);

        if (na + nb >= size)
                return -ENAMETOOLONG;
        memcpy(out, a, na);
        memcpy(out + na, b, nb + 1);
        return (int) (na + nb);
}

void proc_fd_path(char out[static PROC_FD_PATH_MAX], int fd) {
        static const char prefix[] = "/proc/self/fd/";
        char digits[12];
        size_t n = 0;
        unsigned v = (unsigned) fd;

        do {
                digits[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        memcpy(out, prefix, sizeof(prefix) - 1);
        for (size_t i = 0; i < n; i++)
                out[sizeof(prefix) - 1 + i] = digits[n - 1 - i];
        out[sizeof(prefix) - 1 + n] = '\0';
}
