/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accesslog.h"
#include "macro.h"

#define T_2026_11_26_04_10_02 ((time_t) 1795666202)
#define T_2024_02_29_23_59_59 ((time_t) 1709251199)
#define T_2000_01_01 ((time_t) 946684800)

/* A slice of a literal. */
#define S(s) s, sizeof(s) - 1

static char tmp[PATH_MAX];

static void path_in_tmp(char *buf, size_t size, const char *name) {
        int n = snprintf(buf, size, "%s/%s", tmp, name);
        assert_true(n > 0 && (size_t) n < size);
}

static int setup_tmp(void **state) {
        char dir[] = "/tmp/test-accesslog-XXXXXX";
        (void) state;
        if (!mkdtemp(dir) || !realpath(dir, tmp))
                return -1;
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown_tmp(void **state) {
        (void) state;
        return nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *read_all(const char *path, size_t *ret_size) {
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t size = 0;
        FILE *out;

        assert_non_null(f);
        out = open_memstream(&text, &size);
        assert_non_null(out);
        for (int c; (c = fgetc(f)) != EOF;)
                assert_int_not_equal(fputc(c, out), EOF);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(fclose(out), 0);
        if (ret_size)
                *ret_size = size;
        return text;
}

static size_t count_char(const char *s, size_t n, char c) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += s[i] == c;
        return k;
}

static unsigned count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        assert_int_equal(closedir(d), 0);
        return n;
}

/* The flags of the descriptor open on path, from /proc/self/fdinfo. */
static unsigned long fd_flags_of(const char *path) {
        unsigned long flags = 0;
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        bool found = false;

        assert_non_null(d);
        while ((de = readdir(d)) && !found) {
                char link[PATH_MAX], target[PATH_MAX], info[PATH_MAX], line[256];
                ssize_t n;
                FILE *f;

                snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
                n = readlink(link, target, sizeof(target) - 1);
                if (n < 0)
                        continue;
                target[n] = '\0';
                if (strcmp(target, path) != 0)
                        continue;
                snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", de->d_name);
                f = fopen(info, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f))
                        if (sscanf(line, "flags: %lo", &flags) == 1)
                                found = true;
                assert_int_equal(fclose(f), 0);
        }
        assert_int_equal(closedir(d), 0);
        assert_true(found);
        return flags;
}

typedef struct FormatCase {
        const char *name;
        AccessLogEntry entry;
        const char *line;       /* without the '\n' */
} FormatCase;

static const FormatCase format_cases[] = {
        { "typical",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/index.html?a=1"), .minor_version = 1,
            .status = 200, .bytes = 1234, .referer = S("http://example.com/"), .user_agent = S("curl/8.0.1"),
            .time = T_2026_11_26_04_10_02 },
          "127.0.0.1 - - [26/Nov/2026:04:10:02 +0000] \"GET /index.html?a=1 HTTP/1.1\" 200 1234 "
          "\"http://example.com/\" \"curl/8.0.1\"" },
        { "HTTP/1.0, no referer nor user agent, no body",
          { .remote_addr = "::1", .method = S("HEAD"), .target = S("/"), .minor_version = 0,
            .status = 304, .bytes = 0, .time = T_2024_02_29_23_59_59 },
          "::1 - - [29/Feb/2024:23:59:59 +0000] \"HEAD / HTTP/1.0\" 304 0 \"-\" \"-\"" },
        { "empty referer and user agent count as absent",
          { .remote_addr = "unix", .method = S("GET"), .target = S("/"), .minor_version = 1, .status = 404,
            .bytes = 153, .referer = "", .referer_len = 0, .user_agent = "x", .user_agent_len = 0,
            .time = T_2000_01_01 },
          "unix - - [01/Jan/2000:00:00:00 +0000] \"GET / HTTP/1.1\" 404 153 \"-\" \"-\"" },
        { "no request line, no remote address",
          { .status = 400, .bytes = 11, .time = 0 },
          "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 11 \"-\" \"-\"" },
        { "slices are not NUL-terminated",
          { .remote_addr = "10.0.0.1", .method = "GETX", .method_len = 3, .target = "/abcdef", .target_len = 2,
            .minor_version = 1, .status = 200, .bytes = UINT64_MAX, .referer = "refXXX", .referer_len = 3,
            .user_agent = "uaXXX", .user_agent_len = 2, .time = T_2026_11_26_04_10_02 },
          "10.0.0.1 - - [26/Nov/2026:04:10:02 +0000] \"GET /a HTTP/1.1\" 200 18446744073709551615 "
          "\"ref\" \"ua\"" },
        { "quotes and backslashes cannot end a field",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/a\"b\\c"), .minor_version = 1,
            .status = 200, .bytes = 1, .referer = S("\" \"-"), .user_agent = S("x\\\" 200 1 \"y"),
            .time = T_2026_11_26_04_10_02 },
          "127.0.0.1 - - [26/Nov/2026:04:10:02 +0000] \"GET /a\\x22b\\x5Cc HTTP/1.1\" 200 1 "
          "\"\\x22 \\x22-\" \"x\\x5C\\x22 200 1 \\x22y\"" },
        { "a newline cannot forge a line",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/x\n6.6.6.6 - - [x] \"GET / HTTP/1.1\" 200 0"),
            .minor_version = 1, .status = 404, .bytes = 0, .user_agent = S("a\r\nb"),
            .time = T_2026_11_26_04_10_02 },
          "127.0.0.1 - - [26/Nov/2026:04:10:02 +0000] \"GET /x\\x0A6.6.6.6 - - [x] \\x22GET / HTTP/1.1\\x22 200 0 "
          "HTTP/1.1\" 404 0 \"-\" \"a\\x0D\\x0Ab\"" },
        { "control and high bytes",
          { .remote_addr = "127.0.0.1", .method = S("G\tT"), .target = S("/caf\xc3\xa9\x7f\x01"),
            .minor_version = 1, .status = 200, .bytes = 5, .referer = S("\x1b[31m"),
            .user_agent = "nul\0byte\xff", .user_agent_len = 9, .time = T_2026_11_26_04_10_02 },
          "127.0.0.1 - - [26/Nov/2026:04:10:02 +0000] \"G\\x09T /caf\\xC3\\xA9\\x7F\\x01 HTTP/1.1\" 200 5 "
          "\"\\x1B[31m\" \"nul\\x00byte\\xFF\"" },
        { "the remote address is escaped too",
          { .remote_addr = "a b\"\n", .method = S("GET"), .target = S("/"), .minor_version = 1,
            .status = 200, .time = T_2026_11_26_04_10_02 },
          "a b\\x22\\x0A - - [26/Nov/2026:04:10:02 +0000] \"GET / HTTP/1.1\" 200 0 \"-\" \"-\"" },
        { "a method without a target",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .minor_version = 1, .status = 400,
            .time = T_2026_11_26_04_10_02 - 86400 * 330 },
          "127.0.0.1 - - [31/Dec/2025:04:10:02 +0000] \"GET - HTTP/1.1\" 400 0 \"-\" \"-\"" },
};

static void test_format_cases(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(format_cases); i++) {
                const FormatCase *t = &format_cases[i];
                char buf[ACCESS_LOG_LINE_MAX], expected[ACCESS_LOG_LINE_MAX];
                size_t n;

                memset(buf, 'Z', sizeof(buf));
                n = access_log_format_combined(&t->entry, buf, sizeof(buf));
                snprintf(expected, sizeof(expected), "%s\n", t->line);
                if (strcmp(buf, expected) != 0)
                        print_error("case '%s':\n  got      %s  expected %s", t->name, buf, expected);
                assert_string_equal(buf, expected);
                assert_int_equal(n, strlen(expected));
        }
}

static void test_format_month_names(void **state) {
        static const char *const months[] = {
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        };
        (void) state;

        for (int m = 0; m < 12; m++) {
                struct tm tm = { .tm_year = 2026 - 1900, .tm_mon = m, .tm_mday = 15, .tm_hour = 12 };
                AccessLogEntry e = { .time = timegm(&tm) };
                char buf[256], date[64];

                access_log_format_combined(&e, buf, sizeof(buf));
                snprintf(date, sizeof(date), "[15/%s/2026:12:00:00 +0000]", months[m]);
                assert_non_null(strstr(buf, date));
        }
}

/* Every cut is a prefix of the whole line plus '\n', loses at most an
 * escape's worth of room, and never ends inside an escape. */
static void assert_cut_is_prefix(const AccessLogEntry *e, const char *full, size_t full_len) {
        for (size_t size = 2; size <= full_len + 2; size++) {
                _cleanup_free_ char *buf = malloc(size);
                size_t n;

                assert_non_null(buf);
                n = access_log_format_combined(e, buf, size);
                assert_true(n >= 1 && n <= size - 1);
                assert_int_equal(buf[n - 1], '\n');
                assert_int_equal(buf[n], '\0');
                assert_memory_equal(buf, full, n - 1);
                assert_true(n - 1 + 3 >= MIN(size - 2, full_len - 1));
                /* In the output a backslash only ever starts a 4-byte escape. */
                for (size_t p = n - 1 > 3 ? n - 1 - 3 : 0; p < n - 1; p++)
                        assert_int_not_equal(buf[p], '\\');
        }
}

static void test_format_truncation(void **state) {
        static char ua[3 * ACCESS_LOG_LINE_MAX];
        AccessLogEntry e = {
                .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/\"q\"\n"), .minor_version = 1,
                .status = 200, .bytes = 7, .referer = S("r\x01"), .time = T_2026_11_26_04_10_02,
        };
        char full[4 * sizeof(ua)], buf[ACCESS_LOG_LINE_MAX];
        size_t n, prefix;
        (void) state;

        assert_int_equal(access_log_format_combined(&e, buf, 0), 0);
        assert_int_equal(access_log_format_combined(&e, buf, 1), 0);
        assert_int_equal(access_log_format_combined(&e, buf, 2), 1);
        assert_string_equal(buf, "\n");
        assert_int_equal(access_log_format_combined(&e, buf, 11), 10);
        assert_string_equal(buf, "127.0.0.1\n");

        /* Cut at every length, with escapes on the way. */
        n = access_log_format_combined(&e, full, sizeof(full));
        assert_cut_is_prefix(&e, full, n);

        /* A plain user agent too long for a line fills it exactly. */
        memset(ua, 'a', sizeof(ua));
        e.user_agent = ua;
        e.user_agent_len = sizeof(ua);
        n = access_log_format_combined(&e, buf, sizeof(buf));
        assert_int_equal(n, ACCESS_LOG_LINE_MAX - 1);
        assert_int_equal(buf[n - 1], '\n');
        assert_int_equal(strlen(buf), n);

        /* Escaped, it is cut between two escapes. */
        memset(ua, '"', sizeof(ua));
        n = access_log_format_combined(&e, buf, sizeof(buf));
        prefix = (size_t) (strstr(buf, "\"r\\x01\" \"") - buf) + strlen("\"r\\x01\" \"");
        assert_true(n <= ACCESS_LOG_LINE_MAX - 1 && n >= ACCESS_LOG_LINE_MAX - 4);
        assert_int_equal(buf[n - 1], '\n');
        assert_int_equal((n - 1 - prefix) % 4, 0);
        for (size_t i = prefix; i < n - 1; i += 4)
                assert_memory_equal(buf + i, "\\x22", 4);

        /* Cut at every length inside a run of escapes. */
        e.user_agent_len = 40;
        n = access_log_format_combined(&e, full, sizeof(full));
        assert_cut_is_prefix(&e, full, n);
}

typedef struct JournalCase {
        const char *name;
        AccessLogEntry entry;
        const char *fields[ACCESS_LOG_JOURNAL_FIELDS + 1]; /* NULL-terminated */
} JournalCase;

static const JournalCase journal_cases[] = {
        { "every field",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/a/b?x=1&y"), .minor_version = 1,
            .status = 200, .bytes = 1234, .duration_usec = 1500, .referer = S("http://example.com/"),
            .user_agent = S("curl/8.0.1"), .time = T_2026_11_26_04_10_02 },
          { "MESSAGE=127.0.0.1 \"GET /a/b?x=1&y HTTP/1.1\" 200 1234 \"http://example.com/\" \"curl/8.0.1\"",
            "PRIORITY=6", "HTTP_METHOD=GET", "HTTP_PATH=/a/b", "HTTP_QUERY=x=1&y", "HTTP_VERSION=HTTP/1.1",
            "HTTP_STATUS=200", "HTTP_BYTES=1234", "HTTP_DURATION_USEC=1500", "REMOTE_ADDR=127.0.0.1",
            "HTTP_REFERER=http://example.com/", "HTTP_USER_AGENT=curl/8.0.1" } },
        { "HTTP/1.0, no query, no referer nor user agent",
          { .remote_addr = "::1", .method = S("HEAD"), .target = S("/404"), .minor_version = 0, .status = 404,
            .bytes = 0, .duration_usec = 0, .referer = "", .time = T_2026_11_26_04_10_02 },
          { "MESSAGE=::1 \"HEAD /404 HTTP/1.0\" 404 0 \"-\" \"-\"", "PRIORITY=6", "HTTP_METHOD=HEAD",
            "HTTP_PATH=/404", "HTTP_VERSION=HTTP/1.0", "HTTP_STATUS=404", "HTTP_BYTES=0",
            "HTTP_DURATION_USEC=0", "REMOTE_ADDR=::1" } },
        { "no request line, no remote address",
          { .status = 400, .duration_usec = UINT64_MAX },
          { "MESSAGE=- \"-\" 400 0 \"-\" \"-\"", "PRIORITY=6", "HTTP_STATUS=400", "HTTP_BYTES=0",
            "HTTP_DURATION_USEC=18446744073709551615" } },
        { "an empty query and an empty path",
          { .remote_addr = "unix", .method = S("OPTIONS"), .target = S("?"), .minor_version = 1, .status = 400,
            .duration_usec = 3 },
          { "MESSAGE=unix \"OPTIONS ? HTTP/1.1\" 400 0 \"-\" \"-\"", "PRIORITY=6", "HTTP_METHOD=OPTIONS",
            "HTTP_PATH=", "HTTP_QUERY=", "HTTP_VERSION=HTTP/1.1", "HTTP_STATUS=400", "HTTP_BYTES=0",
            "HTTP_DURATION_USEC=3", "REMOTE_ADDR=unix" } },
        { "values are escaped: no newline reaches the journal",
          { .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/a\nb?c\"d\\"), .minor_version = 1,
            .status = 404, .bytes = 9, .duration_usec = 10, .referer = S("\r\n"),
            .user_agent = "u\0\xe2\x82\xac", .user_agent_len = 5 },
          { "MESSAGE=127.0.0.1 \"GET /a\\x0Ab?c\\x22d\\x5C HTTP/1.1\" 404 9 \"\\x0D\\x0A\" "
            "\"u\\x00\\xE2\\x82\\xAC\"",
            "PRIORITY=6", "HTTP_METHOD=GET", "HTTP_PATH=/a\\x0Ab", "HTTP_QUERY=c\\x22d\\x5C",
            "HTTP_VERSION=HTTP/1.1", "HTTP_STATUS=404", "HTTP_BYTES=9", "HTTP_DURATION_USEC=10",
            "REMOTE_ADDR=127.0.0.1", "HTTP_REFERER=\\x0D\\x0A", "HTTP_USER_AGENT=u\\x00\\xE2\\x82\\xAC" } },
};

static void assert_fields(const char *name, const struct iovec *iov, int n, const char *const *expected) {
        size_t n_expected = 0;

        while (expected[n_expected])
                n_expected++;
        for (int i = 0; i < n; i++) {
                const char *want = i < (int) n_expected ? expected[i] : "(none)";
                if (iov[i].iov_len != strlen(want) || memcmp(iov[i].iov_base, want, iov[i].iov_len) != 0)
                        print_error("case '%s', field %d:\n  got      %.*s\n  expected %s\n", name, i,
                                    (int) iov[i].iov_len, (const char *) iov[i].iov_base, want);
                assert_int_equal(iov[i].iov_len, strlen(want));
                assert_memory_equal(iov[i].iov_base, want, iov[i].iov_len);
        }
        assert_int_equal(n, n_expected);
}

static void test_journal_fields(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(journal_cases); i++) {
                const JournalCase *t = &journal_cases[i];
                _cleanup_free_ char *scratch = malloc(ACCESS_LOG_JOURNAL_SCRATCH);
                struct iovec iov[ACCESS_LOG_JOURNAL_FIELDS];
                int n;

                assert_non_null(scratch);
                n = access_log_journal_fields(&t->entry, iov, ELEMENTSOF(iov), scratch, ACCESS_LOG_JOURNAL_SCRATCH);
                assert_true(n > 0);
                assert_fields(t->name, iov, n, t->fields);
        }
}

static void test_journal_fields_too_small(void **state) {
        const AccessLogEntry e = { .status = 200 };
        _cleanup_free_ char *scratch = malloc(ACCESS_LOG_JOURNAL_SCRATCH);
        struct iovec iov[ACCESS_LOG_JOURNAL_FIELDS];
        (void) state;

        assert_non_null(scratch);
        assert_int_equal(access_log_journal_fields(&e, iov, ELEMENTSOF(iov) - 1, scratch, ACCESS_LOG_JOURNAL_SCRATCH),
                         -ENOBUFS);
        assert_int_equal(access_log_journal_fields(&e, iov, ELEMENTSOF(iov), scratch, ACCESS_LOG_JOURNAL_SCRATCH - 1),
                         -ENOBUFS);
}

static size_t field_value_len(const struct iovec *iov, const char *name) {
        assert_true(iov->iov_len >= strlen(name));
        assert_memory_equal(iov->iov_base, name, strlen(name));
        return iov->iov_len - strlen(name);
}

/* The largest entry a client can cause, every byte escaped: each field is
 * cut at its limit, and everything fits the scratch (ASan sees its end). */
static void test_journal_fields_limits(void **state) {
        static char big[4 * ACCESS_LOG_LINE_MAX];
        _cleanup_free_ char *scratch = malloc(ACCESS_LOG_JOURNAL_SCRATCH), *remote = malloc(sizeof(big) + 1);
        struct iovec iov[ACCESS_LOG_JOURNAL_FIELDS];
        AccessLogEntry e = {
                .method = big, .method_len = sizeof(big), .target = big, .target_len = sizeof(big),
                .minor_version = INT_MIN, .status = INT_MIN, .bytes = UINT64_MAX, .duration_usec = UINT64_MAX,
                .referer = big, .referer_len = sizeof(big), .user_agent = big, .user_agent_len = sizeof(big),
        };
        /* Each field's name, and its value's length: 0 for a short one. */
        static const struct {
                const char *name;
                size_t len;
        } fields[] = {
                { "MESSAGE=", 0 }, { "PRIORITY=", 0 }, { "HTTP_METHOD=", ACCESS_LOG_FIELD_MAX },
                { "HTTP_PATH=", ACCESS_LOG_FIELD_MAX }, { "HTTP_QUERY=", ACCESS_LOG_FIELD_MAX },
                { "HTTP_VERSION=", 0 }, { "HTTP_STATUS=", 0 }, { "HTTP_BYTES=", 0 },
                { "HTTP_DURATION_USEC=", 0 }, { "REMOTE_ADDR=", ACCESS_LOG_FIELD_MAX },
                { "HTTP_REFERER=", ACCESS_LOG_FIELD_MAX }, { "HTTP_USER_AGENT=", ACCESS_LOG_FIELD_MAX },
        };
        size_t total = 0;
        int n;
        (void) state;

        assert_non_null(scratch);
        assert_non_null(remote);
        memset(big, '\x01', sizeof(big));
        big[sizeof(big) / 2] = '?';
        memset(remote, '\n', sizeof(big));
        remote[sizeof(big)] = '\0';
        e.remote_addr = remote;

        n = access_log_journal_fields(&e, iov, ELEMENTSOF(iov), scratch, ACCESS_LOG_JOURNAL_SCRATCH);
        assert_int_equal(n, ACCESS_LOG_JOURNAL_FIELDS);
        for (int i = 0; i < n; i++) {
                size_t len = field_value_len(&iov[i], fields[i].name);

                assert_null(memchr(iov[i].iov_base, '\n', iov[i].iov_len));
                if (i == 0) /* a file's line, but for the '\n'; cut between escapes */
                        assert_true(len <= ACCESS_LOG_LINE_MAX - 2 && len > ACCESS_LOG_LINE_MAX - 6);
                else if (fields[i].len > 0)
                        assert_int_equal(len, fields[i].len);
                else
                        assert_true(len > 0 && len < 32);
                total += iov[i].iov_len;
        }
        assert_true(total <= ACCESS_LOG_JOURNAL_SCRATCH);
}

static void test_open_invalid(void **state) {
        static const struct {
                const char *spec;
                int r;
        } cases[] = {
                { "", -EINVAL },
                { "Journal", -EINVAL },
                { "OFF", -EINVAL },
                { "access.log", -EINVAL },
                { "./access.log", -EINVAL },
                { "/nonexistent-dir-of-webpoold/access.log", -ENOENT },
                { "/", -EISDIR },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AccessLog *log = (AccessLog *) (uintptr_t) 0x1;
                int r = access_log_open(cases[i].spec, &log);

                if (r != cases[i].r)
                        print_error("case '%s': got %d\n", cases[i].spec, r);
                assert_int_equal(r, cases[i].r);
                assert_ptr_equal(log, (AccessLog *) (uintptr_t) 0x1);
        }
}

static void test_missing_directory(void **state) {
        char path[PATH_MAX];
        AccessLog *log = NULL;
        (void) state;

        path_in_tmp(path, sizeof(path), "missing/access.log");
        assert_int_equal(access_log_open(path, &log), -ENOENT);
        assert_null(log);
}

static const AccessLogEntry some_entry = {
        .remote_addr = "127.0.0.1", .method = S("GET"), .target = S("/"), .minor_version = 1,
        .status = 200, .bytes = 10, .time = T_2026_11_26_04_10_02,
};

static void test_off(void **state) {
        unsigned fds = count_open_fds();
        AccessLog *log = NULL;
        (void) state;

        assert_int_equal(access_log_open("off", &log), 0);
        assert_non_null(log);
        assert_int_equal(access_log_kind(log), ACCESS_LOG_OFF);
        assert_int_equal(count_open_fds(), fds);
        assert_int_equal(access_log_write(log, &some_entry), 0);
        assert_int_equal(access_log_reopen(log), 0);
        assert_int_equal(count_open_fds(), fds);
        assert_null(access_log_free(log));

        /* NULL behaves as "off". */
        assert_int_equal(access_log_kind(NULL), ACCESS_LOG_OFF);
        assert_int_equal(access_log_write(NULL, &some_entry), 0);
        assert_int_equal(access_log_reopen(NULL), 0);
        assert_null(access_log_free(NULL));
}

/* Sending is only tried where no journal listens, so tests leave no entries
 * in the machine's journal: libsystemd then drops the entry and says 0. It
 * still runs the whole path, stack buffers included, under the sanitizers. */
static void test_journal(void **state) {
        unsigned fds = count_open_fds();
        AccessLog *log = NULL;
        (void) state;

        assert_int_equal(access_log_open("journal", &log), 0);
        assert_int_equal(access_log_kind(log), ACCESS_LOG_JOURNAL);
        assert_int_equal(count_open_fds(), fds);
        assert_int_equal(access_log_reopen(log), 0);
        if (access("/run/systemd/journal/socket", F_OK) < 0)
                assert_int_equal(access_log_write(log, &some_entry), 0);
        log = access_log_free(log);
}

static void test_file(void **state) {
        char path[PATH_MAX], line[ACCESS_LOG_LINE_MAX], expected[2 * ACCESS_LOG_LINE_MAX];
        _cleanup_free_ char *text = NULL;
        AccessLog *log = NULL;
        struct stat st;
        mode_t mask;
        (void) state;

        path_in_tmp(path, sizeof(path), "one.log");
        mask = umask(022);
        assert_int_equal(access_log_open(path, &log), 0);
        (void) umask(mask);
        assert_int_equal(access_log_kind(log), ACCESS_LOG_FILE);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_true(fd_flags_of(path) & O_CLOEXEC);
        assert_true(fd_flags_of(path) & O_APPEND);

        assert_int_equal(access_log_write(log, &some_entry), 0);
        log = access_log_free(log);

        /* An existing file is appended to. */
        assert_int_equal(access_log_open(path, &log), 0);
        assert_int_equal(access_log_write(log, &some_entry), 0);
        log = access_log_free(log);

        access_log_format_combined(&some_entry, line, sizeof(line));
        snprintf(expected, sizeof(expected), "%s%s", line, line);
        text = read_all(path, NULL);
        assert_string_equal(text, expected);
}

/* Entries the threads write: distinct, of very different lengths (up to a
 * cut line), so that interleaving would show. */
#define N_THREADS 8
#define N_PER_THREAD 1000

#define TARGET_MAX 8192

/* Called from the writer threads too: no cmocka assertion here. */
static void entry_for(unsigned thread, unsigned i, char target[static TARGET_MAX], AccessLogEntry *ret) {
        size_t pad = (thread * 7919 + i * 104729) % 5000;
        int n = snprintf(target, TARGET_MAX, "/t%u/%u/", thread, i); /* short: both are small */

        memset(target + n, i % 3 == 0 ? '"' : 'p', pad);
        *ret = (AccessLogEntry) {
                .remote_addr = "192.0.2.1", .method = S("GET"), .target = target, .target_len = (size_t) n + pad,
                .minor_version = 1, .status = 200, .bytes = i, .user_agent = S("test\n"),
                .time = T_2026_11_26_04_10_02 + i,
        };
}

/* cmocka's assertions jump out of the test and must stay on its thread:
 * a writer counts its failures instead. */
typedef struct WriterThread {
        AccessLog *log;
        unsigned thread;
        unsigned n;
        atomic_bool *go;
        unsigned failures;
} WriterThread;

static void *writer_main(void *arg) {
        WriterThread *w = arg;
        char target[TARGET_MAX];

        while (!atomic_load(w->go))
                ;
        for (unsigned i = 0; i < w->n; i++) {
                AccessLogEntry e;

                entry_for(w->thread, i, target, &e);
                w->failures += access_log_write(w->log, &e) < 0;
        }
        return NULL;
}

/* Checks that every line of text is one the writers wrote, whole, and marks
 * it seen; returns the number of lines. */
static size_t check_lines(const char *text, size_t size, bool seen[N_THREADS][N_PER_THREAD]) {
        size_t lines = 0;

        assert_true(size == 0 || text[size - 1] == '\n');
        for (const char *s = text, *end = text + size; s < end; lines++) {
                const char *nl = memchr(s, '\n', (size_t) (end - s));
                char target[TARGET_MAX], expected[ACCESS_LOG_LINE_MAX];
                unsigned t, i;
                AccessLogEntry e;

                assert_non_null(nl);
                assert_int_equal(sscanf(s, "192.0.2.1 - - [%*[^]]] \"GET /t%u/%u/", &t, &i), 2);
                assert_true(t < N_THREADS && i < N_PER_THREAD);
                assert_false(seen[t][i]);
                seen[t][i] = true;
                entry_for(t, i, target, &e);
                access_log_format_combined(&e, expected, sizeof(expected));
                assert_int_equal((size_t) (nl + 1 - s), strlen(expected));
                assert_memory_equal(s, expected, strlen(expected));
                s = nl + 1;
        }
        return lines;
}

static void start_writers(AccessLog *log, atomic_bool *go, WriterThread writers[static N_THREADS],
                          pthread_t threads[static N_THREADS]) {
        for (unsigned t = 0; t < N_THREADS; t++) {
                writers[t] = (WriterThread) { .log = log, .thread = t, .n = N_PER_THREAD, .go = go };
                assert_int_equal(pthread_create(&threads[t], NULL, writer_main, &writers[t]), 0);
        }
}

static void join_writers(WriterThread writers[static N_THREADS], pthread_t threads[static N_THREADS]) {
        for (unsigned t = 0; t < N_THREADS; t++) {
                assert_int_equal(pthread_join(threads[t], NULL), 0);
                assert_int_equal(writers[t].failures, 0);
        }
}

static void test_file_concurrent(void **state) {
        static bool seen[N_THREADS][N_PER_THREAD];
        pthread_t threads[N_THREADS];
        WriterThread writers[N_THREADS];
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        atomic_bool go = false;
        AccessLog *log = NULL;
        size_t size;
        (void) state;

        path_in_tmp(path, sizeof(path), "concurrent.log");
        assert_int_equal(access_log_open(path, &log), 0);
        start_writers(log, &go, writers, threads);
        atomic_store(&go, true);
        join_writers(writers, threads);
        log = access_log_free(log);

        memset(seen, 0, sizeof(seen));
        text = read_all(path, &size);
        assert_int_equal(count_char(text, size, '\n'), N_THREADS * N_PER_THREAD);
        assert_int_equal(check_lines(text, size, seen), N_THREADS * N_PER_THREAD);
}

static void test_reopen(void **state) {
        char path[PATH_MAX], rotated[PATH_MAX], line[ACCESS_LOG_LINE_MAX];
        _cleanup_free_ char *old_text = NULL, *new_text = NULL;
        AccessLog *log = NULL;
        (void) state;

        path_in_tmp(path, sizeof(path), "rotate.log");
        path_in_tmp(rotated, sizeof(rotated), "rotate.log.1");
        assert_int_equal(access_log_open(path, &log), 0);
        assert_int_equal(access_log_write(log, &format_cases[0].entry), 0);
        assert_int_equal(rename(path, rotated), 0);
        /* Until the signal, entries go on to the renamed file. */
        assert_int_equal(access_log_write(log, &format_cases[0].entry), 0);
        assert_int_equal(access_log_reopen(log), 0);
        assert_true(fd_flags_of(path) & O_CLOEXEC);
        assert_int_equal(access_log_write(log, &format_cases[1].entry), 0);
        log = access_log_free(log);

        old_text = read_all(rotated, NULL);
        new_text = read_all(path, NULL);
        access_log_format_combined(&format_cases[0].entry, line, sizeof(line));
        assert_int_equal(strlen(old_text), 2 * strlen(line));
        assert_memory_equal(old_text, line, strlen(line));
        assert_memory_equal(old_text + strlen(line), line, strlen(line));
        access_log_format_combined(&format_cases[1].entry, line, sizeof(line));
        assert_string_equal(new_text, line);
}

/* When the path cannot be opened again, the log keeps its old file. */
static void test_reopen_fails(void **state) {
        char dir[PATH_MAX], moved[PATH_MAX], path[PATH_MAX], old_path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        AccessLog *log = NULL;
        size_t size;
        (void) state;

        path_in_tmp(dir, sizeof(dir), "logs");
        path_in_tmp(moved, sizeof(moved), "logs.old");
        path_in_tmp(path, sizeof(path), "logs/access.log");
        path_in_tmp(old_path, sizeof(old_path), "logs.old/access.log");
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(access_log_open(path, &log), 0);
        assert_int_equal(rename(dir, moved), 0);
        assert_int_equal(access_log_reopen(log), -ENOENT);
        assert_int_equal(access_log_write(log, &some_entry), 0);
        log = access_log_free(log);

        text = read_all(old_path, &size);
        assert_int_equal(count_char(text, size, '\n'), 1);
}

/* logrotate while the workers write: every entry lands whole in one of the
 * files, none is lost. */
static void test_reopen_concurrent(void **state) {
        static bool seen[N_THREADS][N_PER_THREAD];
        enum { ROTATIONS = 5 };
        pthread_t threads[N_THREADS];
        WriterThread writers[N_THREADS];
        char path[PATH_MAX];
        atomic_bool go = false;
        AccessLog *log = NULL;
        size_t lines = 0;
        (void) state;

        path_in_tmp(path, sizeof(path), "busy.log");
        assert_int_equal(access_log_open(path, &log), 0);
        start_writers(log, &go, writers, threads);
        atomic_store(&go, true);
        for (unsigned r = 1; r <= ROTATIONS; r++) {
                char rotated[PATH_MAX + 16];

                usleep(2000);
                snprintf(rotated, sizeof(rotated), "%s.%u", path, r);
                assert_int_equal(rename(path, rotated), 0);
                assert_int_equal(access_log_reopen(log), 0);
        }
        join_writers(writers, threads);
        log = access_log_free(log);

        memset(seen, 0, sizeof(seen));
        for (unsigned r = 0; r <= ROTATIONS; r++) {
                char name[PATH_MAX + 16];
                _cleanup_free_ char *text = NULL;
                size_t size;

                snprintf(name, sizeof(name), r == 0 ? "%s" : "%s.%u", path, r);
                text = read_all(name, &size);
                lines += check_lines(text, size, seen);
        }
        assert_int_equal(lines, N_THREADS * N_PER_THREAD);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_cases),
                cmocka_unit_test(test_format_month_names),
                cmocka_unit_test(test_format_truncation),
                cmocka_unit_test(test_journal_fields),
                cmocka_unit_test(test_journal_fields_too_small),
                cmocka_unit_test(test_journal_fields_limits),
                cmocka_unit_test(test_open_invalid),
                cmocka_unit_test(test_missing_directory),
                cmocka_unit_test(test_off),
                cmocka_unit_test(test_journal),
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_file_concurrent),
                cmocka_unit_test(test_reopen),
                cmocka_unit_test(test_reopen_fails),
                cmocka_unit_test(test_reopen_concurrent),
        };

        return cmocka_run_group_tests_name("accesslog", tests, setup_tmp, teardown_tmp);
}
