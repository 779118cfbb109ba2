/* SPDX-License-Identifier: MIT */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"

/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
#define FILE_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* Written once at start, before any worker thread exists, and only read
 * after that: pthread_create() orders the write before every read. */
static FileResolver file_resolver = FILE_RESOLVE_OPENAT2;

int file_open_root(const char *root) {
        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static long openat2_beneath_raw(int dir_fd, const char *relpath, int flags) {
        struct open_how how = {
                .flags = (unsigned) flags,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        return syscall(SYS_openat2, dir_fd, relpath, &how, sizeof(how));
}

FileResolver file_probe_resolver(int root_fd, int *ret_error) {
        long fd = openat2_beneath_raw(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int error = fd < 0 ? errno : 0;

        if (fd >= 0)
                (void) close((int) fd);
        /* ENOSYS: no such call, or a filter that says so; EPERM: a filter;
         * E2BIG, EINVAL: a kernel that knows neither this struct nor these
         * flags. Any other error is about the root, not the call. */
        if (error == ENOSYS || error == EPERM || error == E2BIG || error == EINVAL) {
                *ret_error = error;
                return FILE_RESOLVE_WALK;
        }
        *ret_error = 0;
        return FILE_RESOLVE_OPENAT2;
}

void file_set_resolver(FileResolver resolver) {
        file_resolver = resolver;
}

FileResolver file_get_resolver(void) {
        return file_resolver;
}

const char *file_resolver_to_string(FileResolver resolver) {
        return resolver == FILE_RESOLVE_OPENAT2 ? "openat2(RESOLVE_BENEATH)"
                                                : "a walk of one component at a time with openat(O_NOFOLLOW)";
}

static int open_with_openat2(int root_fd, const char *relpath) {
        long fd = -1;

        /* EAGAIN means a concurrent rename raced the lookup; it is safe to
         * retry, and pointless to retry forever. */
        for (int attempt = 0; attempt < 3; attempt++) {
                fd = openat2_beneath_raw(root_fd, relpath, FILE_OPEN_FLAGS);
                if (fd >= 0 || errno != EAGAIN)
                        break;
        }
        return fd < 0 ? (errno == EAGAIN ? -EACCES : -errno) : (int) fd;
}

/* ---- the walk ------------------------------------------------------------- */

/* One lookup in progress. `pending` holds the components still to resolve
 * (symlink targets are spliced in front of them); `walked` the real
 * directories descended into so far, from the root, which is how ".." is
 * taken: by walking `walked` minus its last name again from the root, never
 * by asking the kernel for a parent. */
typedef struct Walk {
        int root_fd;
        int dir_fd; /* the directory `walked` names; root_fd (not owned) at first */
        unsigned n_symlinks;
        char pending[PATH_MAX];
        char walked[PATH_MAX];
} Walk;

static void walk_set_dir(Walk *w, int fd) {
        if (w->dir_fd != w->root_fd)
                (void) safe_close(w->dir_fd);
        w->dir_fd = fd;
}

/* Splits the next component off w->pending into name (NUL-terminated).
 * Returns 1 with *ret_more set when a '/' followed it, 0 when pending is
 * used up, or -ENAMETOOLONG. */
static int walk_next_name(Walk *w, char name[static NAME_MAX + 1], bool *ret_more) {
        char *p = w->pending;

        for (;;) {
                while (*p == '/')
                        p++;
                size_t len = strcspn(p, "/");
                if (len == 0) {
                        w->pending[0] = '\0';
                        return 0;
                }
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                bool more = p[len] == '/';
                memcpy(name, p, len);
                name[len] = '\0';
                memmove(w->pending, p + len, strlen(p + len) + 1);
                if (strcmp(name, ".") == 0) {
                        p = w->pending;
                        continue;
                }
                *ret_more = more;
                return 1;
        }
}

/* Opens `walked` from the root again, every step a directory that is not a
 * symlink. Anything else means the tree changed under the lookup: refused,
 * as openat2() refuses a lookup that a rename raced. */
static int walk_reopen(Walk *w) {
        int fd = w->root_fd;
        char *save = NULL;
        char copy[PATH_MAX];

        memcpy(copy, w->walked, sizeof(copy));
        for (char *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
                int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd != w->root_fd)
                        (void) safe_close(fd);
                if (next < 0)
                        return -EACCES;
                fd = next;
        }
        walk_set_dir(w, fd);
        return 0;
}

static int walk_up(Walk *w) {
        char *slash = strrchr(w->walked, '/');

        if (!slash) /* ".." of the root itself: leaving it */
                return -EXDEV;
        *slash = '\0';
        return walk_reopen(w);
}

static int walk_down(Walk *w, int fd, const char *name) {
        size_t len = strlen(w->walked);

        if (len + 1 + strlen(name) + 1 > sizeof(w->walked)) {
                (void) safe_close(fd);
                return -ENAMETOOLONG;
        }
        w->walked[len] = '/';
        strcpy(w->walked + len + 1, name);
        walk_set_dir(w, fd);
        return 0;
}

/* Splices the target of the symlink in front of what is pending: the link
 * link_fd (an O_PATH descriptor of the link itself) when there is one, so
 * that what is read is what was looked at, else `name` in the current
 * directory. */
static int walk_follow(Walk *w, int link_fd, const char *name) {
        char target[PATH_MAX];

        if (++w->n_symlinks > FILE_MAX_SYMLINKS)
                return -ELOOP;
        ssize_t n = link_fd >= 0 ? readlinkat(link_fd, "", target, sizeof(target))
                                 : readlinkat(w->dir_fd, name, target, sizeof(target));
        if (n < 0)
                return errno == EINVAL ? -EACCES : -errno; /* replaced meanwhile */
        if ((size_t) n >= sizeof(target))
                return -ENAMETOOLONG;
        if (n == 0)
                return -ENOENT;
        if (target[0] == '/') /* an absolute symlink starts outside the root */
                return -EXDEV;

        /* "target" + "/" + rest, or just "target" when nothing follows:
         * a symlink's target is a directory only if the lookup says so. */
        size_t rest = strlen(w->pending), sep = rest > 0;
        if ((size_t) n + sep + rest + 1 > sizeof(w->pending))
                return -ENAMETOOLONG;
        memmove(w->pending + n + sep, w->pending, rest + 1);
        memcpy(w->pending, target, (size_t) n);
        if (sep)
                w->pending[n] = '/';
        return 0;
}

/* One component that is not the last: it must be a directory, or a symlink
 * to be expanded. */
static int walk_through(Walk *w, const char *name) {
        struct stat st;
        _cleanup_close_ int fd = openat(w->dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return walk_follow(w, fd, name);
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return walk_down(w, TAKE_FD(fd), name);
}

/* The last component: opened for reading, unless it is a symlink (ELOOP
 * under O_NOFOLLOW), which is expanded and the walk goes on. Returns 1 with
 * *ret_fd set, 0 to go on, or -errno. */
static int walk_last(Walk *w, const char *name, int *ret_fd) {
        int fd = openat(w->dir_fd, name, FILE_OPEN_FLAGS | O_NOFOLLOW);

        if (fd >= 0) {
                *ret_fd = fd;
                return 1;
        }
        if (errno != ELOOP)
                return -errno;
        return walk_follow(w, -EBADF, name);
}

/* Returns 1 with *ret_fd set when the path is resolved, 0 to go on, or
 * -errno. */
static int walk_step(Walk *w, const char *name, bool more, int *ret_fd) {
        if (strcmp(name, "..") == 0)
                return walk_up(w);
        /* "name/" must be a directory, as the kernel demands. */
        return more ? walk_through(w, name) : walk_last(w, name, ret_fd);
}

static int open_with_walk(int root_fd, const char *relpath) {
        Walk w = { .root_fd = root_fd, .dir_fd = root_fd };
        char name[NAME_MAX + 1];
        bool more = false;
        int fd = -EBADF, r;

        if (strlen(relpath) >= sizeof(w.pending))
                return -ENAMETOOLONG;
        strcpy(w.pending, relpath);
        while ((r = walk_next_name(&w, name, &more)) > 0) {
                r = walk_step(&w, name, more, &fd);
                if (r != 0)
                        break;
        }
        if (r == 0) { /* all walked: the path names a directory */
                fd = openat(w.dir_fd, ".", FILE_OPEN_FLAGS);
                r = fd < 0 ? -errno : 1;
        }
        walk_set_dir(&w, -EBADF);
        return r < 0 ? r : fd;
}

int file_open_beneath(int root_fd, const char *path, struct stat *ret_st) {
        const char *relpath = path;
        struct stat st;

        while (*relpath == '/')
                relpath++;
        if (*relpath == '\0')
                relpath = ".";

        _cleanup_close_ int fd = file_resolver == FILE_RESOLVE_OPENAT2 ? open_with_openat2(root_fd, relpath)
                                                                       : open_with_walk(root_fd, relpath);
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
