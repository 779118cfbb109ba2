/* SPDX-License-Identifier: MIT */
/*
 * The table is an array of (extension, type) pairs, sorted by extension and
 * searched with bsearch(). Type strings live in one arena; entries refer to
 * them by offset, so the arena may move while it grows during parsing.
 * Nothing changes once mime_table_new*() returns, which is what makes
 * lookups safe from any thread without a lock.
 */
#include "mime.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

/* Debian's /etc/mime.types is about 70 KiB, with lines under 100 bytes: these
 * limits leave ample room and still bound what a broken file can cost. */
#define MIME_MAX_FILE_BYTES (4U * 1024U * 1024U)
#define MIME_MAX_LINE 1024U
#define MIME_READ_CHUNK (64U * 1024U)

/* Merged under the file's entries. Written in mime.types syntax so that one
 * parser, and the tests that cover it, serve both. */
static const char mime_builtin_types[] =
        "text/html html htm\n"
        "text/css css\n"
        "text/javascript js mjs\n"
        "application/json json\n"
        "text/plain txt\n"
        "application/xml xml\n"
        "image/svg+xml svg\n"
        "image/png png\n"
        "image/jpeg jpg jpeg\n"
        "image/gif gif\n"
        "image/webp webp\n"
        "image/avif avif\n"
        "image/vnd.microsoft.icon ico\n"
        "application/pdf pdf\n"
        "application/wasm wasm\n"
        "font/woff woff\n"
        "font/woff2 woff2\n"
        "video/mp4 mp4\n"
        "video/webm webm\n"
        "audio/mpeg mp3\n"
        "audio/ogg ogg\n"
        "application/zip zip\n"
        "application/gzip gz\n"
        "application/x-tar tar\n"
        "text/csv csv\n"
        "text/markdown md\n";

typedef struct MimeEntry {
        char extension[MIME_MAX_EXTENSION + 1]; /* lower-case */
        size_t type;                            /* offset into MimeTable.types */
} MimeEntry;

struct MimeTable {
        MimeEntry *entries;
        size_t n_entries;
        size_t n_allocated;

        char *types; /* NUL-terminated type strings, back to back */
        size_t types_size;
        size_t types_allocated;
};

MimeTable *mime_table_free(MimeTable *table) {
        if (!table)
                return NULL;
        free(table->entries);
        free(table->types);
        free(table);
        return NULL;
}

static void mime_table_freep(MimeTable **table) {
        mime_table_free(*table);
}

/* Not tolower(): the locale must not change which extensions match. */
static char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_graph(char c) {
        return (unsigned char) c > ' ' && (unsigned char) c < 0x7f;
}

static bool all_graph(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_graph(s[i]))
                        return false;
        return true;
}

/* The type ends up in a response header, so control bytes and anything
 * without a '/' are refused rather than passed on. */
static bool mime_type_valid(const char *s, size_t n) {
        return n > 0 && all_graph(s, n) && memchr(s, '/', n);
}

/* An extension with a dot or a slash could never be matched by a lookup. */
static bool mime_extension_valid(const char *s, size_t n) {
        return n > 0 && n <= MIME_MAX_EXTENSION && all_graph(s, n) &&
                !memchr(s, '.', n) && !memchr(s, '/', n);
}

/* Grows an array to hold at least `need` elements; returns the (possibly
 * moved) array, or NULL with p left intact. */
static void *mime_grow(void *p, size_t *allocated, size_t need, size_t size) {
        if (need <= *allocated)
                return p;
        size_t n = MAX(MAX(need, *allocated * 2), (size_t) 16);
        void *q = reallocarray(p, n, size);
        if (!q)
                return NULL;
        *allocated = n;
        return q;
}

static int mime_add_type(MimeTable *t, const char *type, size_t len, size_t *ret_offset) {
        char *a = mime_grow(t->types, &t->types_allocated, t->types_size + len + 1, 1);
        if (!a)
                return -ENOMEM;
        t->types = a;
        memcpy(a + t->types_size, type, len);
        a[t->types_size + len] = '\0';
        *ret_offset = t->types_size;
        t->types_size += len + 1;
        return 0;
}

static int mime_add_entry(MimeTable *t, const char *extension, size_t len, size_t type) {
        MimeEntry *e = mime_grow(t->entries, &t->n_allocated, t->n_entries + 1, sizeof(MimeEntry));
        if (!e)
                return -ENOMEM;
        t->entries = e;

        MimeEntry *entry = &t->entries[t->n_entries++];
        *entry = (MimeEntry) { .type = type };
        for (size_t i = 0; i < len; i++)
                entry->extension[i] = ascii_lower(extension[i]);
        return 0;
}

/* Returns the next word in [*p, end) and advances *p past it; NULL at the end
 * of the line or where a comment starts. */
static const char *mime_next_word(const char **p, const char *end, size_t *ret_len) {
        const char *s = *p;
        while (s < end && is_blank(*s))
                s++;
        const char *word = s;
        while (s < end && !is_blank(*s))
                s++;
        *p = s;
        *ret_len = (size_t) (s - word);
        return word == s || *word == '#' ? NULL : word;
}

static int mime_parse_line(MimeTable *t, const char *p, const char *end) {
        size_t type = SIZE_MAX, len;
        const char *word = mime_next_word(&p, end, &len);
        if (!word || !mime_type_valid(word, len))
                return 0;

        const char *type_word = word;
        size_t type_len = len;
        while ((word = mime_next_word(&p, end, &len))) {
                if (!mime_extension_valid(word, len))
                        continue;
                /* Stored lazily: types without extensions cost nothing. */
                if (type == SIZE_MAX) {
                        int r = mime_add_type(t, type_word, type_len, &type);
                        if (r < 0)
                                return r;
                }
                int r = mime_add_entry(t, word, len, type);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* contents need not be NUL-terminated; a stray NUL byte just makes its word
 * invalid. */
static int mime_parse(MimeTable *t, const char *contents, size_t size) {
        const char *p = contents, *end = contents + size;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p)) ?: end;
                /* Over-long lines are skipped whole: no real entry is that
                 * long, and cutting one could map an extension to a
                 * truncated type. */
                if ((size_t) (eol - p) <= MIME_MAX_LINE) {
                        int r = mime_parse_line(t, p, eol);
                        if (r < 0)
                                return r;
                }
                p = eol < end ? eol + 1 : end;
        }
        return 0;
}

static int mime_entry_compare(const void *a, const void *b) {
        const MimeEntry *x = a, *y = b;
        int c = strcmp(x->extension, y->extension);
        if (c != 0)
                return c;
        /* Type offsets grow in input order, so the first mapping of an
         * extension sorts first, and qsort() need not be stable. */
        return (x->type > y->type) - (x->type < y->type);
}

/* Sorts, then keeps only the first mapping of each extension. */
static void mime_finalize(MimeTable *t) {
        if (t->n_entries == 0)
                return;
        qsort(t->entries, t->n_entries, sizeof(MimeEntry), mime_entry_compare);

        size_t n = 1;
        for (size_t i = 1; i < t->n_entries; i++)
                if (strcmp(t->entries[i].extension, t->entries[n - 1].extension) != 0)
                        t->entries[n++] = t->entries[i];
        t->n_entries = n;
}

/* contents may be NULL: built-in types only. */
static int mime_table_build(const char *contents, size_t size, MimeTable **ret) {
        _cleanup_(mime_table_freep) MimeTable *t = calloc(1, sizeof(MimeTable));
        if (!t)
                return -ENOMEM;

        /* The file goes first, so its entries win over the built-in ones. */
        if (contents) {
                int r = mime_parse(t, contents, size);
                if (r < 0)
                        return r;
        }
        int r = mime_parse(t, mime_builtin_types, sizeof(mime_builtin_types) - 1);
        if (r < 0)
                return r;

        mime_finalize(t);
        *ret = TAKE_PTR(t);
        return 0;
}

/* Reads the whole file, refusing one over MIME_MAX_FILE_BYTES with -EFBIG.
 * The size is learnt by reading, not from fstat(), so a device or a file
 * that grows meanwhile is bounded too. */
static int mime_read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;
        for (;;) {
                if (size == allocated) {
                        /* One byte past the limit: reading it proves the
                         * file too big. */
                        size_t n = MIN(MAX(allocated * 2, (size_t) MIME_READ_CHUNK),
                                       (size_t) MIME_MAX_FILE_BYTES + 1);
                        char *p = realloc(buf, n);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated = n;
                }
                ssize_t n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > MIME_MAX_FILE_BYTES)
                        return -EFBIG;
        }

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int mime_table_new(const char *path, MimeTable **ret, int *ret_error) {
        _cleanup_free_ char *contents = NULL;
        size_t size = 0;

        /* A read failure is not ours to report: the built-in types still
         * make a usable table, and the caller decides how loudly to log. */
        int error = mime_read_file(path ?: MIME_SYSTEM_FILE, &contents, &size);

        int r = mime_table_build(contents, size, ret);
        if (r < 0)
                return r;
        if (ret_error)
                *ret_error = error;
        return 0;
}

int mime_table_new_from_string(const char *contents, MimeTable **ret) {
        return mime_table_build(contents, contents ? strlen(contents) : 0, ret);
}

/* Extracts the lower-cased extension of the last path component. Leading dots
 * do not start one (".bashrc" has none), nor does a trailing dot. */
static bool mime_filename_extension(const char *filename, char ret[static MIME_MAX_EXTENSION + 1]) {
        const char *name = strrchr(filename, '/');
        name = name ? name + 1 : filename;
        name += strspn(name, ".");

        const char *dot = strrchr(name, '.');
        if (!dot)
                return false;
        const char *extension = dot + 1;
        size_t len = strlen(extension);
        if (len == 0 || len > MIME_MAX_EXTENSION)
                return false;

        for (size_t i = 0; i < len; i++)
                ret[i] = ascii_lower(extension[i]);
        ret[len] = '\0';
        return true;
}

static int mime_key_compare(const void *key, const void *entry) {
        return strcmp(key, ((const MimeEntry *) entry)->extension);
}

const char *mime_table_lookup(const MimeTable *table, const char *filename) {
        char extension[MIME_MAX_EXTENSION + 1];

        if (!table || !filename || !mime_filename_extension(filename, extension))
                return MIME_DEFAULT_TYPE;

        const MimeEntry *e = bsearch(extension, table->entries, table->n_entries,
                                     sizeof(MimeEntry), mime_key_compare);
        return e ? table->types + e->type : MIME_DEFAULT_TYPE;
}

unsigned mime_table_size(const MimeTable *table) {
        return table ? (unsigned) table->n_entries : 0;
}
