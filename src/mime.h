/* SPDX-License-Identifier: MIT */
#pragma once

/* File-name extension to Content-Type. The table comes from a mime.types file
 * (Debian's media-types package installs /etc/mime.types); a small built-in
 * table covers the common types when that file is absent.
 *
 * Built once at startup, then read-only: lookups are thread-safe without
 * locks. */

#define MIME_DEFAULT_TYPE "application/octet-stream"
#define MIME_SYSTEM_FILE "/etc/mime.types"
#define MIME_MAX_EXTENSION 32

typedef struct MimeTable MimeTable;

/* Loads path (NULL: MIME_SYSTEM_FILE). If it cannot be read, the table holds
 * the built-in types only and *ret_error (may be NULL) gets the -errno of the
 * failure (0 otherwise), so the caller can log it. Returns 0 or -ENOMEM. */
int mime_table_new(const char *path, MimeTable **ret, int *ret_error);

/* Same, from the contents of a mime.types file (for tests). */
int mime_table_new_from_string(const char *contents, MimeTable **ret);

MimeTable *mime_table_free(MimeTable *table);

/* Content-Type for a file name or path, by its last extension, matched
 * case-insensitively ("a/B.HTML" → "text/html"); never NULL:
 * MIME_DEFAULT_TYPE when unknown or without extension. The file's entries
 * win over the built-in ones. */
const char *mime_table_lookup(const MimeTable *table, const char *filename);

/* Number of extensions known (for the startup log). */
unsigned mime_table_size(const MimeTable *table);
