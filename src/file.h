/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/stat.h>

/* Opening request paths confined beneath the document root: "..", absolute
 * symlinks and symlinks that climb out are refused however the path was
 * spelled, and a rename racing the lookup cannot lead out either.
 *
 * Two resolvers give that guarantee. The kernel's, openat2() with
 * RESOLVE_BENEATH, is used wherever it can be called. Some seccomp filters
 * answer openat2() with ENOSYS because they cannot inspect struct open_how
 * (systemd's RestrictSUIDSGID=, implied by DynamicUser=; Docker's default
 * profile), and kernels before 5.6 lack it; there the path is walked one
 * component at a time with openat(O_NOFOLLOW) from the root's descriptor,
 * symlinks are expanded here and ".." is taken back along the path already
 * walked, so no step ever asks the kernel to go upwards. The walk keeps the
 * path it still has to resolve, and the one it has walked, within PATH_MAX
 * each: a lookup that outgrows that (a long symlink target spliced in front
 * of a long rest) is not found (-ENAMETOOLONG), where openat2() might have
 * found it.
 *
 * Either resolver only looks the path up (O_PATH), which opens nothing: a
 * FIFO, a socket or a device node is refused without being opened, so no
 * writer waiting on a FIFO is let through and no driver sees an open().
 * What is served is then opened as the very inode looked at, a regular
 * file through /proc/self/fd (which must be mounted), a directory through
 * its own "."; a name swapped meanwhile is not followed. */

typedef enum FileResolver {
        FILE_RESOLVE_OPENAT2,
        FILE_RESOLVE_WALK,
} FileResolver;

/* The most symlinks one lookup follows, as the kernel's own limit. */
#define FILE_MAX_SYMLINKS 40

/* Opens the directory to serve from. Returns an O_PATH fd or -errno. */
int file_open_root(const char *root);

/* Decides which resolver serves, by trying openat2() beneath root_fd.
 * Returns the resolver; *ret_error is the error that ruled openat2() out,
 * or 0. Call once, before any thread opens files, and pass the result to
 * file_set_resolver(). */
FileResolver file_probe_resolver(int root_fd, int *ret_error);

void file_set_resolver(FileResolver resolver);
FileResolver file_get_resolver(void);
const char *file_resolver_to_string(FileResolver resolver);

/* Checks that files can be opened here the way file_open_beneath() opens
 * them: through /proc/self/fd, which must be procfs. Returns 0, or -ENOSYS
 * where /proc is not mounted (or is something else). */
int file_probe_reopen(int root_fd);

/* Opens path (absolute, normalized: "/a/b", "/") beneath root_fd for
 * reading, never opening anything but a regular file or a directory.
 * Returns the fd and fills *ret_st, or:
 *   -ENOENT, -ENOTDIR, -ENAMETOOLONG  no such file (404)
 *   -EXDEV, -ELOOP, -EACCES           outside the root or not allowed (403)
 *   -EPERM                            not a regular file or directory (403)
 *   anything else                     a fault of the server (500), -ENOSYS
 *                                     among them where /proc is missing */
int file_open_beneath(int root_fd, const char *path, struct stat *ret_st);

/* The status code an error of file_open_beneath() maps to. */
int file_status_for_error(int error);
