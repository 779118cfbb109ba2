/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/stat.h>

/* Opening request paths confined beneath the document root. The kernel does
 * the confining (openat2 with RESOLVE_BENEATH): "..", absolute symlinks and
 * symlinks that climb out are refused however the path was spelled. */

/* Opens the directory to serve from. Returns an O_PATH fd or -errno. */
int file_open_root(const char *root);

/* Opens path (absolute, normalized: "/a/b", "/") beneath root_fd, without
 * blocking even on a FIFO. Returns the fd and fills *ret_st, or:
 *   -ENOENT, -ENOTDIR       no such file (404)
 *   -EXDEV, -ELOOP, -EACCES  outside the root or not allowed (403)
 *   -EPERM                  not a regular file or directory (403) */
int file_open_beneath(int root_fd, const char *path, struct stat *ret_st);

/* The status code an error of file_open_beneath() maps to. */
int file_status_for_error(int error);
