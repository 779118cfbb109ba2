/* SPDX-License-Identifier: MIT */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "util.h"

/* Both resolvers only look a path up: an O_PATH descriptor names the inode
 * without opening it, so no FIFO's writer is let through and no driver's
 * open() runs for a request that is then refused. Only a regular file or a
 * directory is opened for reading, and only that very inode. */
#define FILE_LOOKUP_FLAGS (O_PATH | O_CLOEXEC)
/* O_NONBLOCK: should a FIFO ever get this far, opening it does not wait. */
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

static int look_up_with_openat2(int root_fd, const char *relpath) {
        long fd = -1;

        /* EAGAIN means a concurrent rename raced the lookup; it is safe to
         * retry, and pointless to retry forever. */
        for (int attempt = 0; attempt < 3; attempt++) {
                fd = openat2_beneath_raw(root_fd, relpath, FILE_LOOKUP_FLAGS);
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

        strcpy(copy, w->walked);
        for (char *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
                int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd != w->root_fd)
                        (void) safe_close(fd);
                if (next < 0) /* moved or replaced meanwhile, unless we ran out */
                        return errno == EMFILE || errno == ENFILE ? -errno : -EACCES;
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

/* Splices the target of the symlink link_fd (an O_PATH descriptor of the
 * link itself, so that what is read is what was looked at) in front of
 * what is pending. */
static int walk_follow(Walk *w, int link_fd) {
        char target[PATH_MAX];

        if (++w->n_symlinks > FILE_MAX_SYMLINKS)
                return -ELOOP;
        ssize_t n = readlinkat(link_fd, "", target, sizeof(target));
        if (n < 0)
                return -errno;
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

/* Looks name up in the current directory, a symlink being the link itself.
 * Returns an O_PATH fd and fills *ret_st, or -errno. */
static int walk_look_up(Walk *w, const char *name, struct stat *ret_st) {
        _cleanup_close_ int fd = openat(w->dir_fd, name, FILE_LOOKUP_FLAGS | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        if (fstat(fd, ret_st) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* One component that is not the last: it must be a directory, or a symlink
 * to be expanded. */
static int walk_through(Walk *w, const char *name) {
        struct stat st;
        _cleanup_close_ int fd = walk_look_up(w, name, &st);

        if (fd < 0)
                return fd;
        if (S_ISLNK(st.st_mode))
                return walk_follow(w, fd);
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return walk_down(w, TAKE_FD(fd), name);
}

/* The last component: the lookup ends there, unless it is a symlink, which
 * is expanded and the walk goes on. Returns 1 with *ret_fd (O_PATH) set, 0
 * to go on, or -errno. */
static int walk_last(Walk *w, const char *name, int *ret_fd) {
        struct stat st;
        _cleanup_close_ int fd = walk_look_up(w, name, &st);

        if (fd < 0)
                return fd;
        if (S_ISLNK(st.st_mode))
                return walk_follow(w, fd);
        *ret_fd = TAKE_FD(fd);
        return 1;
}

/* Returns 1 with *ret_fd set when the path is resolved, 0 to go on, or
 * -errno. */
static int walk_step(Walk *w, const char *name, bool more, int *ret_fd) {
        if (strcmp(name, "..") == 0)
                return walk_up(w);
        /* "name/" must be a directory, as the kernel demands. */
        return more ? walk_through(w, name) : walk_last(w, name, ret_fd);
}

static int look_up_with_walk(int root_fd, const char *relpath) {
        /* Not zeroed whole: two PATH_MAX buffers per request cost more than
         * the rest of the lookup. */
        Walk w;
        char name[NAME_MAX + 1];
        bool more = false;
        int fd = -EBADF, r;

        if (strlen(relpath) >= sizeof(w.pending))
                return -ENAMETOOLONG;
        w.root_fd = w.dir_fd = root_fd;
        w.n_symlinks = 0;
        w.walked[0] = '\0';
        strcpy(w.pending, relpath);
        while ((r = walk_next_name(&w, name, &more)) > 0) {
                r = walk_step(&w, name, more, &fd);
                if (r != 0)
                        break;
        }
        if (r == 0) { /* all walked: the path names a directory */
                fd = openat(w.dir_fd, ".", FILE_LOOKUP_FLAGS);
                r = fd < 0 ? -errno : 1;
        }
        walk_set_dir(&w, -EBADF);
        return r < 0 ? r : fd;
}

/* Opens for reading the inode that the O_PATH descriptor path_fd names, not
 * whatever its name leads to by now: a directory through its own ".", a
 * file through its /proc/self/fd link. So a file replaced after the lookup
 * (by a FIFO, say) is not what gets opened. Returns the fd and fills *ret_st,
 * or -errno; -ENOSYS where /proc is not mounted. */
static int reopen_for_reading(int path_fd, const struct stat *looked_up, struct stat *ret_st) {
        char link[PROC_FD_PATH_MAX];
        _cleanup_close_ int fd = -EBADF;

        if (S_ISDIR(looked_up->st_mode))
                fd = openat(path_fd, ".", FILE_OPEN_FLAGS | O_DIRECTORY);
        else {
                proc_fd_path(link, path_fd);
                fd = open(link, FILE_OPEN_FLAGS);
                if (fd < 0 && errno == ENOENT) /* the fd exists: /proc does not */
                        return -ENOSYS;
        }
        if (fd < 0)
                return -errno;
        /* The same inode by construction (file_probe_reopen() made sure
         * /proc is procfs), so what was looked at describes it: no fstat. */
        *ret_st = *looked_up;
        return TAKE_FD(fd);
}

int file_open_beneath(int root_fd, const char *path, struct stat *ret_st) {
        const char *relpath = path;
        struct stat st;

        while (*relpath == '/')
                relpath++;
        if (*relpath == '\0')
                relpath = ".";

        _cleanup_close_ int path_fd = file_resolver == FILE_RESOLVE_OPENAT2 ? look_up_with_openat2(root_fd, relpath)
                                                                            : look_up_with_walk(root_fd, relpath);
        if (path_fd < 0)
                return path_fd;
        if (fstat(path_fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return -EPERM;
        return reopen_for_reading(path_fd, &st, ret_st);
}

int file_probe_reopen(int root_fd) {
        char link[PROC_FD_PATH_MAX];
        struct statfs fs;
        struct stat reopened, root;

        /* Serving relies on a reopen through /proc yielding the very inode,
         * without checking each time: so /proc must be procfs. */
        if (statfs("/proc/self/fd", &fs) < 0)
                return errno == ENOENT ? -ENOSYS : -errno;
        if (fs.f_type != PROC_SUPER_MAGIC)
                return -ENOSYS;
        proc_fd_path(link, root_fd);
        _cleanup_close_ int fd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOSYS : -errno;
        if (fstat(fd, &reopened) < 0 || fstat(root_fd, &root) < 0)
                return -errno;
        if (reopened.st_dev != root.st_dev || reopened.st_ino != root.st_ino)
                return -ENOSYS;
        return 0;
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
        /* Out of descriptors: a moment later one may be free again. */
        case -EMFILE:
        case -ENFILE:
                return 503;
        default:
                return 500;
        }
}
