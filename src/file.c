/* SPDX-License-Identifier: MIT */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"

int file_open_root(const char *root) {
        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int openat2_beneath(int dir_fd, const char *relpath) {
        struct open_how how = {
                /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
                .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        /* EAGAIN means a concurrent rename raced the lookup; it is safe to
         * retry, and pointless to retry forever. */
        for (int attempt = 0; attempt < 3; attempt++) {
                fd = syscall(SYS_openat2, dir_fd, relpath, &how, sizeof(how));
                if (fd >= 0 || errno != EAGAIN)
                        break;
        }
        return fd < 0 ? (errno == EAGAIN ? -EACCES : -errno) : (int) fd;
}

int file_open_beneath(int root_fd, const char *path, struct stat *ret_st) {
        const char *relpath = path;
        struct stat st;

        while (*relpath == '/')
                relpath++;
        if (*relpath == '\0')
                relpath = ".";

        _cleanup_close_ int fd = openat2_beneath(root_fd, relpath);
        /* Sockets (ENXIO) and devices without a driver (ENODEV) cannot even
         * be opened: they are "not a regular file" too. */
        if (fd == -ENXIO || fd == -ENODEV || fd == -EOPNOTSUPP)
                return -EPERM;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return -EPERM;

        *ret_st = st;
        return TAKE_FD(fd);
}

int file_status_for_error(int error) {
        switch (error) {
        case -ENOENT:
        case -ENOTDIR:
        case -ENAMETOOLONG:
                return 404;
        case -EXDEV:
        case -ELOOP:
        case -EACCES:
        case -EPERM:
                return 403;
        default:
                return 500;
        }
}
