/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime.h"

/* html htm css js mjs json txt xml svg png jpg jpeg gif webp avif ico pdf
 * wasm woff woff2 mp4 webm mp3 ogg zip gz tar csv md */
#define N_BUILTIN 29U

typedef struct {
        const char *filename;
        const char *type;
} LookupCase;

static void assert_lookups(const MimeTable *table, const LookupCase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *type = mime_table_lookup(table, cases[i].filename);
                if (strcmp(type, cases[i].type) != 0)
                        print_message("lookup \"%s\"\n", cases[i].filename);
                assert_string_equal(type, cases[i].type);
        }
}

static MimeTable *table_from_string(const char *contents) {
        MimeTable *table = NULL;
        assert_int_equal(mime_table_new_from_string(contents, &table), 0);
        assert_non_null(table);
        return table;
}

/* Writes contents (size bytes, NULs allowed) to a fresh temporary file. */
static void write_temp_file(char path[static 64], const char *contents, size_t size) {
        strcpy(path, "/tmp/test_mime.XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, contents, size), (ssize_t) size);
        assert_int_equal(close(fd), 0);
}

static const char sample[] =
        "# mime.types for the tests\n"
        "\n"
        "text/x-alpha\talpha alp\n"
        "   \t  \n"
        "application/x-noext\n"
        "  image/x-indented   ind  # trailing comment extra\n"
        "#text/x-commented cmt\n"
        "text/x-crlf crlf\r\n"
        "text/x-first dup\n"
        "text/x-second dup\n"
        "Text/X-Mixed MiXeD\n"
        "text/x-custom-html html\n"
        "text/x-last last";

static void test_from_string(void **state) {
        (void) state;
        static const LookupCase cases[] = {
                { "a.alpha", "text/x-alpha" },
                { "a.alp", "text/x-alpha" },
                { "pic.ind", "image/x-indented" },
                { "x.comment", MIME_DEFAULT_TYPE },
                { "x.extra", MIME_DEFAULT_TYPE },
                { "x.cmt", MIME_DEFAULT_TYPE },
                { "x.crlf", "text/x-crlf" },
                { "x.dup", "text/x-first" },     /* first wins */
                { "x.html", "text/x-custom-html" }, /* file beats built-in */
                { "x.htm", "text/html" },        /* built-in still under it */
                { "x.last", "text/x-last" },     /* no final newline */
                { "x.mixed", "Text/X-Mixed" },
                { "X.MIXED", "Text/X-Mixed" },
                { "dir/Sub.MiXeD", "Text/X-Mixed" },
                { "A.ALPHA", "text/x-alpha" },
                { "x.unknownext", MIME_DEFAULT_TYPE },
                { "x.noext", MIME_DEFAULT_TYPE },
        };
        MimeTable *table = table_from_string(sample);
        assert_lookups(table, cases, sizeof(cases) / sizeof(cases[0]));
        /* alpha alp ind crlf dup mixed last; html overrides a built-in */
        assert_int_equal(mime_table_size(table), N_BUILTIN + 7);
        mime_table_free(table);
}

static void test_no_extension(void **state) {
        (void) state;
        static const LookupCase cases[] = {
                { "README", MIME_DEFAULT_TYPE },
                { ".bashrc", MIME_DEFAULT_TYPE },
                { "dir/.html", MIME_DEFAULT_TYPE },
                { "..html", MIME_DEFAULT_TYPE },
                { "a.b/c", MIME_DEFAULT_TYPE },
                { "a.html/", MIME_DEFAULT_TYPE },
                { "file.", MIME_DEFAULT_TYPE },
                { ".", MIME_DEFAULT_TYPE },
                { "..", MIME_DEFAULT_TYPE },
                { "", MIME_DEFAULT_TYPE },
                { ".hidden.css", "text/css" },
                { "archive.tar.gz", "application/gzip" },
                { "a.b/c.png", "image/png" },
                { "/srv/www/index.HTML", "text/html" },
        };
        MimeTable *table = table_from_string("");
        assert_lookups(table, cases, sizeof(cases) / sizeof(cases[0]));
        mime_table_free(table);
}

static void test_extension_length_limit(void **state) {
        (void) state;
        char contents[256], longest[MIME_MAX_EXTENSION + 1], too_long[MIME_MAX_EXTENSION + 2];
        char name[64];

        memset(longest, 'e', MIME_MAX_EXTENSION);
        longest[MIME_MAX_EXTENSION] = '\0';
        memset(too_long, 'f', MIME_MAX_EXTENSION + 1);
        too_long[MIME_MAX_EXTENSION + 1] = '\0';
        snprintf(contents, sizeof(contents), "text/x-long %s %s short\n", longest, too_long);

        MimeTable *table = table_from_string(contents);
        snprintf(name, sizeof(name), "x.%s", longest);
        assert_string_equal(mime_table_lookup(table, name), "text/x-long");
        snprintf(name, sizeof(name), "x.%s", too_long);
        assert_string_equal(mime_table_lookup(table, name), MIME_DEFAULT_TYPE);
        assert_string_equal(mime_table_lookup(table, "x.short"), "text/x-long");
        assert_int_equal(mime_table_size(table), N_BUILTIN + 2);
        mime_table_free(table);
}

/* Words that could never be matched, or that would put junk in a header,
 * are dropped rather than stored. */
static void test_rejects_malformed_words(void **state) {
        (void) state;
        static const LookupCase cases[] = {
                { "x.noslash", MIME_DEFAULT_TYPE },
                { "x.ctl", MIME_DEFAULT_TYPE },
                { "x.ok", "text/x-ok" },
                { "x.b", MIME_DEFAULT_TYPE },
        };
        MimeTable *table = table_from_string(
                "textnoslash noslash\n"
                "text/x\001ctl ctl\n"
                "text/x-ok a.b a/b ok\n");
        assert_lookups(table, cases, sizeof(cases) / sizeof(cases[0]));
        assert_int_equal(mime_table_size(table), N_BUILTIN + 1);
        mime_table_free(table);
}

static void test_overlong_line_skipped(void **state) {
        (void) state;
        size_t n = 100000;
        char *contents = malloc(n + 64);
        assert_non_null(contents);

        /* A valid-looking entry, padded far beyond any sane line length. */
        strcpy(contents, "text/x-huge huge");
        size_t len = strlen(contents);
        memset(contents + len, ' ', n);
        strcpy(contents + len + n, "pad\ntext/x-after after\n");

        MimeTable *table = table_from_string(contents);
        free(contents);
        assert_string_equal(mime_table_lookup(table, "x.huge"), MIME_DEFAULT_TYPE);
        assert_string_equal(mime_table_lookup(table, "x.pad"), MIME_DEFAULT_TYPE);
        assert_string_equal(mime_table_lookup(table, "x.after"), "text/x-after");
        mime_table_free(table);
}

static void test_builtins_when_file_missing(void **state) {
        (void) state;
        MimeTable *table = NULL;
        int error = 1;
        assert_int_equal(mime_table_new("/nonexistent/mime.types", &table, &error), 0);
        assert_int_equal(error, -ENOENT);
        assert_string_equal(mime_table_lookup(table, "x.html"), "text/html");
        assert_string_equal(mime_table_lookup(table, "x.woff2"), "font/woff2");
        assert_string_equal(mime_table_lookup(table, "x.ico"), "image/vnd.microsoft.icon");
        assert_int_equal(mime_table_size(table), N_BUILTIN);
        mime_table_free(table);

        /* ret_error is optional. */
        assert_int_equal(mime_table_new("/nonexistent/mime.types", &table, NULL), 0);
        mime_table_free(table);
}

static void test_unreadable_files(void **state) {
        (void) state;
        MimeTable *table = NULL;
        int error = 0;

        /* Endless: must stop at the size limit, not exhaust memory. */
        assert_int_equal(mime_table_new("/dev/zero", &table, &error), 0);
        assert_int_equal(error, -EFBIG);
        assert_string_equal(mime_table_lookup(table, "x.css"), "text/css");
        table = mime_table_free(table);

        assert_int_equal(mime_table_new("/", &table, &error), 0);
        assert_int_equal(error, -EISDIR);
        assert_int_equal(mime_table_size(table), N_BUILTIN);
        mime_table_free(table);
}

static void test_from_file(void **state) {
        (void) state;
        /* A NUL byte mid-file spoils only its own line. */
        static const char contents[] = "text/x\0y zz\ntext/x-from-file ff html\n";
        char path[64];
        MimeTable *table = NULL;
        int error = 1;

        write_temp_file(path, contents, sizeof(contents) - 1);
        assert_int_equal(mime_table_new(path, &table, &error), 0);
        (void) unlink(path);
        assert_int_equal(error, 0);
        assert_string_equal(mime_table_lookup(table, "x.ff"), "text/x-from-file");
        assert_string_equal(mime_table_lookup(table, "x.html"), "text/x-from-file");
        assert_string_equal(mime_table_lookup(table, "x.zz"), MIME_DEFAULT_TYPE);
        assert_int_equal(mime_table_size(table), N_BUILTIN + 1);
        mime_table_free(table);
}

/* Debian's media-types package (a test dependency) installs it. */
static void test_system_file(void **state) {
        (void) state;
        static const LookupCase cases[] = {
                { "index.html", "text/html" },
                { "logo.png", "image/png" },
                { "site.css", "text/css" },
        };
        MimeTable *table = NULL;
        int error = 1;
        assert_int_equal(mime_table_new(NULL, &table, &error), 0);
        assert_int_equal(error, 0);
        assert_lookups(table, cases, sizeof(cases) / sizeof(cases[0]));
        assert_true(mime_table_size(table) > 1000);
        mime_table_free(table);
}

static void test_free_and_null(void **state) {
        (void) state;
        assert_null(mime_table_free(NULL));
        assert_string_equal(mime_table_lookup(NULL, "x.html"), MIME_DEFAULT_TYPE);
        assert_int_equal(mime_table_size(NULL), 0);

        MimeTable *table = table_from_string(NULL);
        assert_int_equal(mime_table_size(table), N_BUILTIN);
        assert_null(mime_table_free(table));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_from_string),
                cmocka_unit_test(test_no_extension),
                cmocka_unit_test(test_extension_length_limit),
                cmocka_unit_test(test_rejects_malformed_words),
                cmocka_unit_test(test_overlong_line_skipped),
                cmocka_unit_test(test_builtins_when_file_missing),
                cmocka_unit_test(test_unreadable_files),
                cmocka_unit_test(test_from_file),
                cmocka_unit_test(test_system_file),
                cmocka_unit_test(test_free_and_null),
        };
        return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
