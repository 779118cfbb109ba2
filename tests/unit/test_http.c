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

#include "http.h"
#include "macro.h"

#define MAX_TEST_HEADERS 6
#define X10 "xxxxxxxxxx"

static Slice slice(const char *s) {
        return (Slice) { s, strlen(s) };
}

static void assert_slice_equal(Slice s, const char *expected) {
        assert_int_equal(s.len, strlen(expected));
        assert_memory_equal(s.ptr, expected, s.len);
}

/* Parses the first n bytes from a buffer of exactly n bytes, so the address
 * sanitizer catches any read past the end. The copy is left in *ret_buf,
 * where the request's slices point; the caller frees it. */
static ssize_t parse_copy(const char *input, size_t n, HttpRequest *ret, char **ret_buf) {
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        memcpy(buf, input, n);
        *ret_buf = buf;
        return http_parse_request(buf, n, ret);
}

/* The same, for when only the return value matters. */
static ssize_t parse_prefix(const char *input, size_t n, HttpRequest *ret) {
        char *buf;
        ssize_t r = parse_copy(input, n, ret, &buf);
        free(buf);
        return r;
}

/* ---- valid requests ---- */

typedef struct ValidCase {
        const char *name;
        const char *input;
        size_t consumed; /* 0: all of input */
        HttpMethod method;
        const char *method_name;
        const char *target;
        int minor;
        const char *headers[MAX_TEST_HEADERS][2]; /* name, value; NULL-terminated */
} ValidCase;

static const ValidCase valid_cases[] = {
        { "simple GET", "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", 0,
          HTTP_GET, "GET", "/index.html", 1, { { "Host", "example.com" } } },
        { "HTTP/1.0 without fields", "GET / HTTP/1.0\r\n\r\n", 0, HTTP_GET, "GET", "/", 0, { { NULL } } },
        { "other 1.x minor", "GET / HTTP/1.9\r\n\r\n", 0, HTTP_GET, "GET", "/", 9, { { NULL } } },
        { "bare LF", "HEAD /a HTTP/1.1\nHost: h\nAccept: */*\n\n", 0, HTTP_HEAD, "HEAD", "/a", 1,
          { { "Host", "h" }, { "Accept", "*/*" } } },
        { "mixed CRLF and LF", "GET / HTTP/1.1\nHost: h\r\nX: y\n\r\n", 0, HTTP_GET, "GET", "/", 1,
          { { "Host", "h" }, { "X", "y" } } },
        { "leading empty lines", "\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_GET, "GET", "/", 1,
          { { "Host", "h" } } },
        { "as many leading empty lines as allowed", "\r\n\n\r\n\n\r\n\r\n\n\r\nGET / HTTP/1.1\r\n\r\n", 0,
          HTTP_GET, "GET", "/", 1, { { NULL } } },
        { "OWS trimmed", "GET / HTTP/1.1\r\nA:   a b  \t\r\nB:x\r\nC:\r\nD: \t \r\nE: a\tb\r\n\r\n", 0,
          HTTP_GET, "GET", "/", 1, { { "A", "a b" }, { "B", "x" }, { "C", "" }, { "D", "" }, { "E", "a\tb" } } },
        { "obs-text and colons in value", "GET / HTTP/1.1\r\nHost: h:8080\r\nX-Name: caf\xc3\xa9\r\n\r\n", 0,
          HTTP_GET, "GET", "/", 1, { { "Host", "h:8080" }, { "X-Name", "caf\xc3\xa9" } } },
        { "every tchar in a name", "GET / HTTP/1.1\r\nX-!#$%&'*+-.^_`|~09: v\r\n\r\n", 0, HTTP_GET, "GET", "/", 1,
          { { "X-!#$%&'*+-.^_`|~09", "v" } } },
        { "POST with body after head", "POST /f HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
          sizeof("POST /f HTTP/1.1\r\nContent-Length: 5\r\n\r\n") - 1, HTTP_POST, "POST", "/f", 1,
          { { "Content-Length", "5" } } },
        { "pipelined", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
          sizeof("GET /a HTTP/1.1\r\nHost: h\r\n\r\n") - 1, HTTP_GET, "GET", "/a", 1, { { "Host", "h" } } },
        { "pipelined garbage is not ours", "GET /a HTTP/1.1\r\n\r\n\x01\x02garbage",
          sizeof("GET /a HTTP/1.1\r\n\r\n") - 1, HTTP_GET, "GET", "/a", 1, { { NULL } } },
        { "PUT", "PUT /x HTTP/1.1\r\n\r\n", 0, HTTP_PUT, "PUT", "/x", 1, { { NULL } } },
        { "DELETE", "DELETE /x HTTP/1.1\r\n\r\n", 0, HTTP_DELETE, "DELETE", "/x", 1, { { NULL } } },
        { "CONNECT authority-form", "CONNECT example.com:443 HTTP/1.1\r\n\r\n", 0, HTTP_CONNECT, "CONNECT",
          "example.com:443", 1, { { NULL } } },
        { "OPTIONS asterisk-form", "OPTIONS * HTTP/1.1\r\n\r\n", 0, HTTP_OPTIONS, "OPTIONS", "*", 1, { { NULL } } },
        { "TRACE", "TRACE / HTTP/1.1\r\n\r\n", 0, HTTP_TRACE, "TRACE", "/", 1, { { NULL } } },
        { "PATCH", "PATCH / HTTP/1.1\r\n\r\n", 0, HTTP_PATCH, "PATCH", "/", 1, { { NULL } } },
        { "methods are case-sensitive", "get / HTTP/1.1\r\n\r\n", 0, HTTP_METHOD_OTHER, "get", "/", 1, { { NULL } } },
        { "unknown method", "PROPFIND /d HTTP/1.1\r\n\r\n", 0, HTTP_METHOD_OTHER, "PROPFIND", "/d", 1, { { NULL } } },
        { "longest method", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / HTTP/1.1\r\n\r\n", 0, HTTP_METHOD_OTHER,
          "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF", "/", 1, { { NULL } } },
        { "absolute-form and odd target bytes", "GET http://h/a%20b?q=1&r=~!$ HTTP/1.1\r\n\r\n", 0, HTTP_GET, "GET",
          "http://h/a%20b?q=1&r=~!$", 1, { { NULL } } },
        { "repeated fields kept in order", "GET / HTTP/1.1\r\nX: 1\r\nx: 2\r\n\r\n", 0, HTTP_GET, "GET", "/", 1,
          { { "X", "1" }, { "x", "2" } } },
};

static size_t valid_consumed(const ValidCase *c) {
        return c->consumed ? c->consumed : strlen(c->input);
}

static void check_valid_request(const ValidCase *c, const HttpRequest *req) {
        size_t n = 0;

        assert_int_equal(req->method, c->method);
        assert_slice_equal(req->method_name, c->method_name);
        assert_slice_equal(req->target, c->target);
        assert_int_equal(req->minor_version, c->minor);
        while (n < MAX_TEST_HEADERS && c->headers[n][0])
                n++;
        assert_int_equal(req->n_headers, n);
        for (size_t i = 0; i < n; i++) {
                assert_slice_equal(req->headers[i].name, c->headers[i][0]);
                assert_slice_equal(req->headers[i].value, c->headers[i][1]);
        }
}

static void test_parse_valid(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(valid_cases); i++) {
                const ValidCase *c = &valid_cases[i];
                HttpRequest req;
                char *buf;
                print_message("valid: %s\n", c->name);
                assert_int_equal(parse_copy(c->input, strlen(c->input), &req, &buf), valid_consumed(c));
                check_valid_request(c, &req);
                free(buf);
        }
}

/* Every shorter prefix is "need more"; from the end of the head on, the
 * answer is the same however much follows. */
static void test_parse_valid_bytewise(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(valid_cases); i++) {
                const ValidCase *c = &valid_cases[i];
                size_t consumed = valid_consumed(c);
                print_message("valid bytewise: %s\n", c->name);
                for (size_t n = 0; n <= strlen(c->input); n++) {
                        HttpRequest req;
                        char *buf;
                        ssize_t r = parse_copy(c->input, n, &req, &buf);
                        if (n < consumed)
                                assert_int_equal(r, -EAGAIN);
                        else {
                                assert_int_equal(r, consumed);
                                check_valid_request(c, &req);
                        }
                        free(buf);
                }
        }
}

/* ---- malformed requests ---- */

typedef struct BadCase {
        const char *name;
        const char *input;
        size_t len; /* 0: strlen(input); set when input holds a NUL */
        int status;
} BadCase;

#define BAD_NUL(name, lit, status) { name, lit, sizeof(lit) - 1, status }

static const BadCase bad_cases[] = {
        { "double space after method", "GET  / HTTP/1.1\r\n\r\n", 0, 400 },
        { "double space after target", "GET /  HTTP/1.1\r\n\r\n", 0, 400 },
        { "tab separator", "GET\t/ HTTP/1.1\r\n\r\n", 0, 400 },
        { "leading space", " GET / HTTP/1.1\r\n\r\n", 0, 400 },
        { "trailing space", "GET / HTTP/1.1 \r\n\r\n", 0, 400 },
        { "space in target", "GET /a b HTTP/1.1\r\n\r\n", 0, 400 },
        { "DEL in target", "GET /\x7f HTTP/1.1\r\n\r\n", 0, 400 },
        { "non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 0, 400 },
        { "bad method char", "G@T / HTTP/1.1\r\n\r\n", 0, 400 },
        { "method too long", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n\r\n", 0, 400 },
        { "HTTP/0.9 request line", "GET /\r\n\r\n", 0, 400 },
        { "no target", "GET HTTP/1.1\r\n\r\n", 0, 400 },
        { "lowercase version", "GET / http/1.1\r\n\r\n", 0, 400 },
        { "two-digit minor", "GET / HTTP/1.10\r\n\r\n", 0, 400 },
        { "two-digit major", "GET / HTTP/11.1\r\n\r\n", 0, 400 },
        { "no minor", "GET / HTTP/1\r\n\r\n", 0, 400 },
        { "letter minor", "GET / HTTP/1.x\r\n\r\n", 0, 400 },
        { "HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 0, 505 },
        { "HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 0, 505 },
        { "HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", 0, 505 },
        { "first bad line wins", "GET / HTTP/2.0\r\nBad header\r\n\r\n", 0, 505 },
        { "space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 0, 400 },
        { "tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 0, 400 },
        { "obs-fold", "GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", 0, 400 },
        { "whitespace before first field", "GET / HTTP/1.1\r\n X: a\r\n\r\n", 0, 400 },
        { "empty field name", "GET / HTTP/1.1\r\n: v\r\n\r\n", 0, 400 },
        { "no colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0, 400 },
        { "bad name char", "GET / HTTP/1.1\r\nBad[Name]: v\r\n\r\n", 0, 400 },
        { "bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 0, 400 },
        { "bare CR ends request line", "GET / HTTP/1.1\r\r\n\r\n", 0, 400 },
        { "bare CR before request", "\r\rGET / HTTP/1.1\r\n\r\n", 0, 400 },
        { "CR CR LF ends head", "GET / HTTP/1.1\r\nX: y\r\n\r\r\n", 0, 400 },
        BAD_NUL("NUL in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 400),
        BAD_NUL("NUL in target", "GET /\0 HTTP/1.1\r\n\r\n", 400),
        { "control char in value", "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 0, 400 },
        { "DEL in value", "GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", 0, 400 },
        { "TLS handshake, no LF", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, 400 },
        { "one empty line too many", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", 0, 400 },
        { "one bare LF too many", "\n\n\n\n\n\n\n\n\nGET / HTTP/1.1\r\n\r\n", 0, 400 },
        { "too many empty lines, nothing else yet", "\r\n\n\r\n\n\r\n\n\r\n\n\r\n", 0, 400 },
};

static size_t bad_len(const BadCase *c) {
        return c->len ? c->len : strlen(c->input);
}

static void test_parse_malformed(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const BadCase *c = &bad_cases[i];
                HttpRequest req;
                print_message("malformed: %s\n", c->name);
                ssize_t r = parse_prefix(c->input, bad_len(c), &req);
                assert_true(r < 0 && r != -EAGAIN);
                assert_int_equal(http_status_for_error((int) r), c->status);
        }
}

/* Each prefix is "need more" or the final error, and once the error shows
 * up it stays. */
static void test_parse_malformed_bytewise(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const BadCase *c = &bad_cases[i];
                HttpRequest req;
                size_t len = bad_len(c);
                ssize_t final = parse_prefix(c->input, len, &req);
                bool seen = false;
                print_message("malformed bytewise: %s\n", c->name);
                for (size_t n = 0; n < len; n++) {
                        ssize_t r = parse_prefix(c->input, n, &req);
                        if (r != -EAGAIN || seen)
                                assert_int_equal(r, final);
                        seen = seen || r == final;
                }
        }
}

/* A failed parse leaves the output alone. */
static void test_parse_failure_keeps_output(void **state) {
        (void) state;
        HttpRequest req, before;
        memset(&req, 0xaa, sizeof(req));
        memcpy(&before, &req, sizeof(req));
        assert_int_equal(parse_prefix("GET / HTTP/1.1\r\nX: 1\r\n", 22, &req), -EAGAIN);
        assert_int_equal(parse_prefix("GET / HTTP/1.1\r\nX : 1\r\n\r\n", 25, &req), -EBADMSG);
        assert_memory_equal(&req, &before, sizeof(req));
}

static char *make_request_with_fields(size_t n_fields) {
        size_t size = 32 + n_fields * 16, len = 0;
        char *buf = malloc(size);
        assert_non_null(buf);
        len += (size_t) snprintf(buf + len, size - len, "GET / HTTP/1.1\r\n");
        for (size_t i = 0; i < n_fields; i++)
                len += (size_t) snprintf(buf + len, size - len, "X-%zu: %zu\r\n", i, i);
        (void) snprintf(buf + len, size - len, "\r\n");
        return buf;
}

static void test_parse_too_many_fields(void **state) {
        (void) state;
        HttpRequest req;
        char *ok = make_request_with_fields(HTTP_MAX_HEADERS);
        char *big = make_request_with_fields(HTTP_MAX_HEADERS + 1);

        assert_int_equal(http_parse_request(ok, strlen(ok), &req), strlen(ok));
        assert_int_equal(req.n_headers, HTTP_MAX_HEADERS);
        char last[16];
        snprintf(last, sizeof(last), "%d", HTTP_MAX_HEADERS - 1);
        assert_slice_equal(req.headers[HTTP_MAX_HEADERS - 1].value, last);

        ssize_t r = parse_prefix(big, strlen(big), &req);
        assert_int_equal(r, -E2BIG);
        assert_int_equal(http_status_for_error((int) r), 431);
        for (size_t n = 0; n < strlen(big); n++) {
                r = parse_prefix(big, n, &req);
                assert_true(r == -EAGAIN || r == -E2BIG);
        }
        free(ok);
        free(big);
}

/* The valid and malformed tables above spell the cap out as 8. */
_Static_assert(HTTP_MAX_EMPTY_LINES == 8, "update the empty-line cases");

/* Up to the cap, empty lines of either ending are skipped; one more is a
 * 400 as soon as it is complete, whatever follows. */
static void test_parse_empty_lines_cap(void **state) {
        (void) state;
        static const char *const endings[] = { "\r\n", "\n" };
        char buf[64];

        for (size_t e = 0; e < ELEMENTSOF(endings); e++)
                for (unsigned n = 0; n <= HTTP_MAX_EMPTY_LINES + 1; n++) {
                        size_t len = 0;
                        HttpRequest req;
                        for (unsigned i = 0; i < n; i++)
                                len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s", endings[e]);
                        size_t lines = len;
                        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "GET / HTTP/1.1\r\n\r\n");
                        print_message("%u empty lines ending in %s\n", n, e ? "LF" : "CRLF");
                        ssize_t r = parse_prefix(buf, len, &req);
                        if (n <= HTTP_MAX_EMPTY_LINES)
                                assert_int_equal(r, len);
                        else {
                                assert_int_equal(r, -EBADMSG);
                                assert_int_equal(parse_prefix(buf, lines, &req), -EBADMSG);
                                assert_int_equal(parse_prefix(buf, lines - 1, &req), -EAGAIN);
                        }
                }
}

/* ---- finding the end of a head ---- */

typedef struct ScanCase {
        const char *name;
        const char *input;
        size_t len;      /* 0: strlen(input) */
        size_t max_line;
        ssize_t result;  /* the head's length, or the error */
} ScanCase;

#define HEAD_A "GET /aaaa HTTP/1.1\r\nHost: h\r\n\r\n"

static const ScanCase scan_cases[] = {
        { "complete head", HEAD_A, 0, 100, sizeof(HEAD_A) - 1 },
        { "what follows the head is not looked at", HEAD_A "\x01\x02", 0, 100, sizeof(HEAD_A) - 1 },
        { "bare LF", "GET / HTTP/1.1\nHost: h\n\n", 0, 100, 24 },
        { "LF then CRLF", "GET / HTTP/1.1\nX: y\n\r\n", 0, 100, 22 },
        { "incomplete", "GET / HTTP/1.1\r\nHost: h\r\n", 0, 100, -EAGAIN },
        { "empty lines before", "\r\n\nGET / HTTP/1.1\r\n\r\n", 0, 100, 21 },
        { "as many empty lines as allowed", "\n\n\n\n\n\n\n\n", 0, 100, -EAGAIN },
        { "one empty line too many", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", 0, 100, -EBADMSG },
        { "request line at the limit", HEAD_A, 0, 18, sizeof(HEAD_A) - 1 },
        { "request line over the limit", HEAD_A, 0, 17, -EMSGSIZE },
        { "over the limit before its end", "GET /aaaaaaaaaaaaaa", 0, 17, -EMSGSIZE },
        { "a CR after the limit may be CRLF's", "GET /aaaa HTTP/1.1\r", 0, 18, -EAGAIN },
        { "empty lines do not count to the limit", "\r\n\r\n" HEAD_A, 0, 18, sizeof(HEAD_A) + 3 },
        { "fields are not held to the line limit", "GET / HTTP/1.1\r\nX: " X10 "\r\n\r\n", 0, 14, 33 },
        { "control character", "GET /\x01", 0, 100, -EBADMSG },
        { "DEL in a field", "GET / HTTP/1.1\r\nX: \x7f", 0, 100, -EBADMSG },
        { "NUL in an empty line", "\r\n\0", 3, 100, -EBADMSG },
        { "TLS handshake", "\x16\x03\x01\x02\x00", 0, 100, -EBADMSG },
        { "bare CR", "GET / HTTP/1.1\rX", 0, 100, -EBADMSG },
        { "CR CR LF before the request line", "\r\r\n", 0, 100, -EBADMSG },
        { "CR CR LF ending the head", "GET / HTTP/1.1\r\n\r\r\n", 0, 100, -EBADMSG },
        { "a CR at the end waits", "GET / HTTP/1.1\r\n\r", 0, 100, -EAGAIN },
        { "obs-text is the parser's to judge", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 0, 100, 20 },
        { "tabs are the parser's to judge", "GET\t/ HTTP/1.1\r\n\t\r\n\r\n", 0, 100, 21 },
};

static ssize_t scan_in_pieces(const char *input, size_t len, size_t piece, size_t max_line) {
        HttpHeadScan s = {};
        ssize_t r = -EAGAIN;

        for (size_t n = piece; r == -EAGAIN; n += piece) {
                r = http_head_scan(&s, input, MIN(n, len), max_line);
                if (r == -EAGAIN)
                        assert_int_equal(s.pos, MIN(n, len)); /* each byte once */
                if (n >= len)
                        break;
        }
        return r;
}

/* Whole, in pieces of 3 or one byte at a time, the same answer; and the
 * parser's agrees: the same length or an error, an error where the scanner
 * saw a bad byte, and no head where the scanner saw none. The line limit is
 * the scanner's alone. */
static void test_head_scan(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(scan_cases); i++) {
                const ScanCase *c = &scan_cases[i];
                size_t len = c->len ? c->len : strlen(c->input);
                HttpRequest req;

                print_message("scan: %s\n", c->name);
                assert_int_equal(scan_in_pieces(c->input, len, len, c->max_line), c->result);
                assert_int_equal(scan_in_pieces(c->input, len, 3, c->max_line), c->result);
                assert_int_equal(scan_in_pieces(c->input, len, 1, c->max_line), c->result);

                ssize_t parsed = parse_prefix(c->input, len, &req);
                if (c->result > 0)
                        assert_true(parsed == c->result || (parsed < 0 && parsed != -EAGAIN));
                else if (c->result == -EBADMSG)
                        assert_true(parsed < 0 && parsed != -EAGAIN);
                else if (c->result == -EAGAIN)
                        assert_true(parsed < 0);
        }
}

/* ---- Transfer-Encoding ---- */

typedef struct CodingCase {
        const char *fields; /* header lines, each ending in CRLF */
        int result;
} CodingCase;

#define TE "Transfer-Encoding: "

static const CodingCase coding_cases[] = {
        { "", 0 },
        { "Transfer-Encodings: chunked\r\n", 0 },
        { TE "chunked\r\n", 1 },
        { TE "CHUNKED\r\n", 1 },
        { "transfer-encoding: Chunked\r\n", 1 },
        { TE ", chunked\r\n", 1 },
        { TE "chunked ,\r\n", 1 },
        { TE "chunked,,\t,\r\n", 1 },
        { TE "\r\n" TE "chunked\r\n", 1 },
        { TE "chunked\r\nX: y\r\n" TE "\r\n", 1 },
        /* Something to decode before the chunks: not implemented (501). */
        { TE "gzip, chunked\r\n", -EOPNOTSUPP },
        { TE "cow, chunked\r\n", -EOPNOTSUPP },
        { TE "gzip\r\n" TE "chunked\r\n", -EOPNOTSUPP },
        { TE "identity, chunked\r\n", -EOPNOTSUPP },
        { TE "gzip;level=1 , chunked\r\n", -EOPNOTSUPP },
        { TE "x ; a = b ;c=d, chunked\r\n", -EOPNOTSUPP },
        { TE "x;a=\"b, c\", chunked\r\n", -EOPNOTSUPP },
        { TE "x;a=\"b\\\"c\\\\\", chunked\r\n", -EOPNOTSUPP },
        { TE "x;a=\"\", chunked\r\n", -EOPNOTSUPP },
        /* chunked not last: no way to find the end (400). */
        { TE "gzip\r\n", -EBADMSG },
        { TE "identity\r\n", -EBADMSG },
        { TE "chunked, gzip\r\n", -EBADMSG },
        { TE "chunked\r\n" TE "gzip\r\n", -EBADMSG },
        { TE "chunkedx\r\n", -EBADMSG },
        /* chunked twice, or with parameters (400). */
        { TE "chunked, chunked\r\n", -EBADMSG },
        { TE "chunked\r\n" TE "chunked\r\n", -EBADMSG },
        { TE "gzip, chunked, chunked\r\n", -EBADMSG },
        { TE "chunked;a=b\r\n", -EBADMSG },
        { TE "chunked ; a=\"b\"\r\n", -EBADMSG },
        /* Not a list of codings (400). */
        { TE "\r\n", -EBADMSG },
        { TE ",\r\n", -EBADMSG },
        { TE ", ,\t,\r\n", -EBADMSG },
        { TE "foo chunked\r\n", -EBADMSG },
        { TE "chunked foo\r\n", -EBADMSG },
        { TE "gzip chunked, chunked\r\n", -EBADMSG },
        { TE "\"chunked\"\r\n", -EBADMSG },
        { TE "chunked\"x\"\r\n", -EBADMSG },
        { TE "chu/nked\r\n", -EBADMSG },
        { TE "chunked;\r\n", -EBADMSG },
        { TE "x;a, chunked\r\n", -EBADMSG },
        { TE "x;=b, chunked\r\n", -EBADMSG },
        { TE "x;a=, chunked\r\n", -EBADMSG },
        { TE "x;a=b c, chunked\r\n", -EBADMSG },
        { TE "x;a=\"b, chunked\r\n", -EBADMSG },
        { TE "x;a=\"b\\\r\n" TE "chunked\r\n", -EBADMSG },
        { TE "gzip, chunked\r\n" TE "foo bar\r\n", -EBADMSG },
};

static void test_request_chunked(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(coding_cases); i++) {
                char buf[256];
                HttpRequest req;
                int n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\n%s\r\n", coding_cases[i].fields);
                assert_true(n > 0 && (size_t) n < sizeof(buf));

                print_message("coding: %s\n", coding_cases[i].fields);
                assert_int_equal(http_parse_request(buf, (size_t) n, &req), n);
                assert_int_equal(http_request_chunked(&req), coding_cases[i].result);
        }
        assert_int_equal(http_status_for_error(-EOPNOTSUPP), 501);
}

static void test_status_for_error(void **state) {
        (void) state;
        static const struct {
                int error, status;
        } cases[] = {
                { -EBADMSG, 400 }, { -E2BIG, 431 }, { -EPROTONOSUPPORT, 505 },
                { -EINVAL, 400 },  { -EAGAIN, 400 }, { 0, 400 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(http_status_for_error(cases[i].error), cases[i].status);
}

static void test_request_header(void **state) {
        (void) state;
        const char *in = "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nACCEPT: b\r\n\r\n";
        HttpRequest req;
        size_t count = 99;

        assert_int_equal(http_parse_request(in, strlen(in), &req), strlen(in));
        const HttpHeader *h = http_request_header(&req, "accept", &count);
        assert_non_null(h);
        assert_slice_equal(h->value, "a");
        assert_int_equal(count, 2);
        h = http_request_header(&req, "HOST", NULL);
        assert_non_null(h);
        assert_slice_equal(h->value, "h");
        assert_null(http_request_header(&req, "Range", &count));
        assert_int_equal(count, 0);
        assert_null(http_request_header(&req, "Hos", &count));
}

/* ---- response helpers ---- */

static void test_status_reason(void **state) {
        (void) state;
        static const struct {
                int status;
                const char *reason;
        } cases[] = {
                { 100, "Continue" },
                { 101, "Switching Protocols" },
                { 200, "OK" },
                { 201, "Created" },
                { 204, "No Content" },
                { 206, "Partial Content" },
                { 301, "Moved Permanently" },
                { 302, "Found" },
                { 303, "See Other" },
                { 304, "Not Modified" },
                { 307, "Temporary Redirect" },
                { 308, "Permanent Redirect" },
                { 400, "Bad Request" },
                { 401, "Unauthorized" },
                { 403, "Forbidden" },
                { 404, "Not Found" },
                { 405, "Method Not Allowed" },
                { 406, "Not Acceptable" },
                { 408, "Request Timeout" },
                { 409, "Conflict" },
                { 410, "Gone" },
                { 411, "Length Required" },
                { 412, "Precondition Failed" },
                { 413, "Content Too Large" },
                { 414, "URI Too Long" },
                { 415, "Unsupported Media Type" },
                { 416, "Range Not Satisfiable" },
                { 417, "Expectation Failed" },
                { 421, "Misdirected Request" },
                { 426, "Upgrade Required" },
                { 428, "Precondition Required" },
                { 429, "Too Many Requests" },
                { 431, "Request Header Fields Too Large" },
                { 500, "Internal Server Error" },
                { 501, "Not Implemented" },
                { 502, "Bad Gateway" },
                { 503, "Service Unavailable" },
                { 504, "Gateway Timeout" },
                { 505, "HTTP Version Not Supported" },
                { 0, NULL },
                { -1, NULL },
                { 299, NULL },
                { 418, NULL },
                { 999, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *r = http_status_reason(cases[i].status);
                if (cases[i].reason)
                        assert_string_equal(r, cases[i].reason);
                else
                        assert_null(r);
        }
}

static void test_list_has_token(void **state) {
        (void) state;
        static const struct {
                const char *value, *token;
                bool expected;
        } cases[] = {
                { "close", "close", true },
                { "CLOSE", "close", true },
                { "keep-alive, Close", "close", true },
                { "keep-alive,close", "close", true },
                { " , ,\tclose\t, ", "close", true },
                { "gzip, chunked", "chunked", true },
                { "closed", "close", false },
                { "clos", "close", false },
                { "xclose", "close", false },
                { "keep-alive", "close", false },
                { "close;q=1", "close", false },
                { "a, b c", "b", false },
                { "", "close", false },
                { ",,,", "close", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                print_message("list: \"%s\" has \"%s\"\n", cases[i].value, cases[i].token);
                assert_int_equal(http_list_has_token(slice(cases[i].value), cases[i].token), cases[i].expected);
        }
}

static void test_target_split(void **state) {
        (void) state;
        static const struct {
                const char *target, *path, *query; /* path NULL: -EBADMSG */
        } cases[] = {
                { "/", "/", "" },
                { "/a/b?x=1&y", "/a/b", "x=1&y" },
                { "/a?", "/a", "" },
                { "/a?b?c", "/a", "b?c" },
                { "//a", "//a", "" },
                { "/%2e%2e/x", "/%2e%2e/x", "" },
                { "http://example.com/a?q", "/a", "q" },
                { "HTTPS://example.com:8443/x", "/x", "" },
                { "http://example.com", "/", "" },
                { "http://example.com?q=1", "/", "q=1" },
                { "http://[::1]:80/p", "/p", "" },
                { "*", NULL, NULL },
                { "example.com:80", NULL, NULL },
                { "path", NULL, NULL },
                { "", NULL, NULL },
                { "?q", NULL, NULL },
                { "/a#frag", NULL, NULL },
                { "http://h/a#frag", NULL, NULL },
                { "http:///a", NULL, NULL },
                { "http://user@h/a", NULL, NULL },
                { "ftp://h/a", NULL, NULL },
                { "http:/a", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Slice path = { "untouched", 9 }, query = path;
                print_message("split: %s\n", cases[i].target);
                int r = http_target_split(slice(cases[i].target), &path, &query);
                if (!cases[i].path) {
                        assert_int_equal(r, -EBADMSG);
                        assert_slice_equal(path, "untouched");
                        continue;
                }
                assert_int_equal(r, 0);
                assert_slice_equal(path, cases[i].path);
                assert_slice_equal(query, cases[i].query);
        }
}

typedef struct PathCase {
        const char *in;
        size_t in_len;    /* 0: strlen(in) */
        size_t out_size;  /* 0: PATH_OUT */
        const char *out;  /* expected result, or NULL */
        int error;        /* expected error when out is NULL */
} PathCase;

#define PATH_OUT 64

static const PathCase path_cases[] = {
        { "/", 0, 0, "/", 0 },
        { "/a/b", 0, 0, "/a/b", 0 },
        { "/a/b/", 0, 0, "/a/b/", 0 },
        { "/a//b", 0, 0, "/a/b", 0 },
        { "//", 0, 0, "/", 0 },
        { "/a//", 0, 0, "/a/", 0 },
        { "/.", 0, 0, "/", 0 },
        { "/a/.", 0, 0, "/a/", 0 },
        { "/a/..", 0, 0, "/", 0 },
        { "/a/./b", 0, 0, "/a/b", 0 },
        { "/a/b/../c", 0, 0, "/a/c", 0 },
        { "/a/b/../..", 0, 0, "/", 0 },
        { "/a/b/../../", 0, 0, "/", 0 },
        { "/a/b/c/../", 0, 0, "/a/b/", 0 },
        { "/a//../b", 0, 0, "/b", 0 },
        { "/a/.%2e/b", 0, 0, "/b", 0 },
        { "/a/%2E./b", 0, 0, "/b", 0 },
        { "/a/%62", 0, 0, "/a/b", 0 },
        { "/%41%7a%7A", 0, 0, "/Azz", 0 },
        { "/a%20b", 0, 0, "/a b", 0 },
        { "/a%2Fb", 0, 0, "/a/b", 0 },
        { "/a%2fb/..", 0, 0, "/a/", 0 },
        { "/%2F", 0, 0, "/", 0 },
        { "/%252F", 0, 0, "/%2F", 0 },
        { "/%25%2e%2e", 0, 0, "/%..", 0 },
        { "/.../x", 0, 0, "/.../x", 0 },
        { "/..a/x.", 0, 0, "/..a/x.", 0 },
        { "/.%2e%2e/x", 0, 0, "/.../x", 0 },
        { "/caf%C3%A9", 0, 0, "/caf\xc3\xa9", 0 },
        { "/abc", 0, 5, "/abc", 0 },
        { "/aaaaaaaaaaaaaaaa/../b", 0, 3, "/b", 0 },
        { "/a/b/", 0, 6, "/a/b/", 0 },
        /* traversal and malformed input */
        { "/..", 0, 0, NULL, -EBADMSG },
        { "/../x", 0, 0, NULL, -EBADMSG },
        { "/./../x", 0, 0, NULL, -EBADMSG },
        { "/a/../..", 0, 0, NULL, -EBADMSG },
        { "/a/../../b/c/..", 0, 0, NULL, -EBADMSG },
        { "/%2e%2e/x", 0, 0, NULL, -EBADMSG },
        { "/.%2e/", 0, 0, NULL, -EBADMSG },
        { "/a/..%2f..%2fx", 0, 0, NULL, -EBADMSG },
        { "/%2E%2E%2Fetc/passwd", 0, 0, NULL, -EBADMSG },
        { "/a/%00", 0, 0, NULL, -EBADMSG },
        { "/a\0b", 4, 0, NULL, -EBADMSG },
        { "/%zz", 0, 0, NULL, -EBADMSG },
        { "/%g0", 0, 0, NULL, -EBADMSG },
        { "/%", 0, 0, NULL, -EBADMSG },
        { "/%4", 0, 0, NULL, -EBADMSG },
        { "/%%41", 0, 0, NULL, -EBADMSG },
        { "", 0, 0, NULL, -EBADMSG },
        { "a/b", 0, 0, NULL, -EBADMSG },
        { "%2Fetc", 0, 0, NULL, -EBADMSG },
        { "/abc", 0, 4, NULL, -ENAMETOOLONG },
        { "/a/b/", 0, 5, NULL, -ENAMETOOLONG },
        { "/", 0, 1, NULL, -ENAMETOOLONG },
};

static void test_path_normalize(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(path_cases); i++) {
                const PathCase *c = &path_cases[i];
                size_t out_size = c->out_size ? c->out_size : PATH_OUT;
                Slice in = { c->in, c->in_len ? c->in_len : strlen(c->in) };
                char *out = malloc(out_size);
                assert_non_null(out);

                print_message("normalize: %s (size %zu)\n", c->in, out_size);
                ssize_t r = http_path_normalize(in, out, out_size);
                if (c->out) {
                        assert_int_equal(r, strlen(c->out));
                        assert_string_equal(out, c->out);
                } else
                        assert_int_equal(r, c->error);
                free(out);
        }
}

/* ---- dates ---- */

#define RFC_EXAMPLE_TIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_format_date(void **state) {
        (void) state;
        static const struct {
                time_t t;
                const char *text;
        } cases[] = {
                { RFC_EXAMPLE_TIME, "Sun, 06 Nov 1994 08:49:37 GMT" },
                { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
                { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
                { 1700000000, "Tue, 14 Nov 2023 22:13:20 GMT" },
                { 4102444800, "Fri, 01 Jan 2100 00:00:00 GMT" },
                { 253402300799, "Fri, 31 Dec 9999 23:59:59 GMT" },
                { -62167219200, "Sat, 01 Jan 0000 00:00:00 GMT" },
                /* Out of the four-digit range: clamped, so no round trip. */
                { 253402300800, "Fri, 31 Dec 9999 23:59:59 GMT" },
                { -62167219201, "Sat, 01 Jan 0000 00:00:00 GMT" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char out[30];
                time_t back;
                memset(out, 'x', sizeof(out));
                http_format_date(cases[i].t, out);
                assert_string_equal(out, cases[i].text);
                assert_int_equal(strlen(out), 29);
                if (i + 2 >= ELEMENTSOF(cases))
                        continue;
                assert_int_equal(http_parse_date(slice(out), &back), 0);
                assert_int_equal(back, cases[i].t);
        }
}

static void test_parse_date(void **state) {
        (void) state;
        static const struct {
                const char *text;
                time_t t; /* -1: -EINVAL */
        } cases[] = {
                { "Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE_TIME },
                { "Sunday, 06-Nov-94 08:49:37 GMT", RFC_EXAMPLE_TIME },
                { "Sun Nov  6 08:49:37 1994", RFC_EXAMPLE_TIME },
                { "Wed Nov 16 08:49:37 1994", RFC_EXAMPLE_TIME + 10 * 86400 },
                { "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
                { "Sat, 31 Dec 2016 23:59:60 GMT", 1483228800 }, /* leap second */
                { "Mon, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE_TIME }, /* day name not checked */
                { "Sun, 06 Nov 1994 08:49:37 UTC", -1 },
                { "Sun, 6 Nov 1994 08:49:37 GMT", -1 },
                { "sun, 06 Nov 1994 08:49:37 GMT", -1 },
                { "Sun, 06 nov 1994 08:49:37 GMT", -1 },
                { "Sun, 06 Nov 1994 08:49:37 GMT ", -1 },
                { " Sun, 06 Nov 1994 08:49:37 GMT", -1 },
                { "Sun, 06 Nov 1994 08:49:37", -1 },
                { "Sun, 06 Nov 94 08:49:37 GMT", -1 },
                { "Sun, 06 Nov 1994 8:49:37 GMT", -1 },
                { "Sun, 00 Nov 1994 08:49:37 GMT", -1 },
                { "Sun, 31 Nov 1994 08:49:37 GMT", -1 },
                { "Sun, 29 Feb 1900 08:49:37 GMT", -1 },
                { "Sun, 29 Feb 1993 08:49:37 GMT", -1 },
                { "Sun, 06 Nov 1994 24:00:00 GMT", -1 },
                { "Sun, 06 Nov 1994 08:60:00 GMT", -1 },
                { "Sun, 06 Nov 1994 08:49:61 GMT", -1 },
                { "Sunday, 06 Nov 1994 08:49:37 GMT", -1 },
                { "Sun, 06-Nov-94 08:49:37 GMT", -1 },
                { "Sunday, 06-Nov-1994 08:49:37 GMT", -1 },
                { "Sun Nov 6 08:49:37 1994", -1 },
                { "Sun Nov 06 08:49:37 1994", RFC_EXAMPLE_TIME },
                { "Sun Nov  6 08:49:37 1994 GMT", -1 },
                { "", -1 },
                { "784111777", -1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                time_t t = 42;
                print_message("date: \"%s\"\n", cases[i].text);
                int r = http_parse_date(slice(cases[i].text), &t);
                if (cases[i].t == -1) {
                        assert_int_equal(r, -EINVAL);
                        assert_int_equal(t, 42);
                } else {
                        assert_int_equal(r, 0);
                        assert_int_equal(t, cases[i].t);
                }
        }
}

/* RFC 850's two-digit year: up to 50 years ahead stays in this century,
 * beyond that it is the previous one. */
static void test_parse_date_two_digit_year(void **state) {
        (void) state;
        time_t now = time(NULL);
        struct tm tm;
        assert_non_null(gmtime_r(&now, &tm));
        int year = tm.tm_year + 1900;

        static const int offsets[] = { 0, 1, 49, 50, 51, 99 };
        for (size_t i = 0; i < ELEMENTSOF(offsets); i++) {
                int future = year + offsets[i];
                int expected = offsets[i] > 50 ? future - 100 : future;
                char text[64];
                time_t t;
                (void) snprintf(text, sizeof(text), "Monday, 01-Jan-%02d 00:00:00 GMT", future % 100);
                assert_int_equal(http_parse_date(slice(text), &t), 0);
                assert_non_null(gmtime_r(&t, &tm));
                assert_int_equal(tm.tm_year + 1900, expected);
        }
}

typedef struct ChunkedCase {
        const char *body;        /* chunked body followed by what comes after it */
        ssize_t consumed;        /* bytes of body, or the error */
        uint64_t total;          /* data bytes */
        uint64_t max;
} ChunkedCase;

static const ChunkedCase chunked_cases[] = {
        { "0\r\n\r\n", 5, 5, 100 },
        { "0\r\n\r\nGET / HTTP/1.1\r\n", 5, 5, 100 },
        { "5\r\nhello\r\n0\r\n\r\n", 15, 15, 100 },
        { "5;name=value\r\nhello\r\n0\r\n\r\nNEXT", 26, 26, 100 },
        { "5;name=\"quoted; value\"\r\nhello\r\n0\r\n\r\n", 36, 36, 100 },
        { "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", 35, 35, 100 },
        { "1\r\nx\r\n0\r\nTrailer: v\r\nOther: w\r\n\r\nNEXT", 33, 33, 100 },
        { "5 ;ext\r\nhello\r\n0\r\n\r\n", 20, 20, 100 },              /* BWS before ';' */
        { "5\t; ext\r\nhello\r\n0\r\n\r\n", 21, 21, 100 },
        { "5\nhello\n0\n\n", -EBADMSG, 0, 100 },                       /* bare LF */
        { "5\r\nhello\n0\r\n\r\n", -EBADMSG, 0, 100 },
        { "0\r\nT: v\n\r\n", -EBADMSG, 0, 100 },
        { "0\r\n\n", -EBADMSG, 0, 100 },
        { "5 zz\r\n", -EBADMSG, 0, 100 },                              /* BWS not before ';' */
        { "5 \r\n", -EBADMSG, 0, 100 },
        { "zz\r\n", -EBADMSG, 0, 100 },
        { ";\r\n", -EBADMSG, 0, 100 },
        { "\r\n", -EBADMSG, 0, 100 },
        { "5\r\nhelloXX", -EBADMSG, 0, 100 },                          /* no CRLF after data */
        { "5\rX", -EBADMSG, 0, 100 },
        { "5;a\x01\r\n", -EBADMSG, 0, 100 },
        { "0\r\nT: a\rb\r\n\r\n", -EBADMSG, 0, 100 },                   /* bare CR in a trailer */
        { "0\r\nT: a\x01\r\n\r\n", -EBADMSG, 0, 100 },
        { "0\r\n folded\r\n\r\n", -EBADMSG, 0, 100 },
        { "0\r\n\rX", -EBADMSG, 0, 100 },
        { "11111111111111111\r\n", -E2BIG, 0, UINT64_MAX },            /* 17 digits */
        { "65\r\n", -E2BIG, 0, 100 },                                  /* 101 > max */
        { "32\r\n", 4, 0, 100 },                                       /* 50: fine, data pending */
        { "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
          -E2BIG, 0, 100 },                                            /* framing counts too */
};

static void check_chunked_case(const ChunkedCase *t, bool bytewise) {
        HttpChunked s = {};
        size_t len = strlen(t->body), pos = 0;
        ssize_t result = 0;

        while (pos < len && s.state != HTTP_CHUNKED_DONE) {
                size_t n = bytewise ? 1 : len - pos;
                ssize_t r = http_chunked_skip(&s, t->body + pos, n, t->max);
                if (r < 0) {
                        result = r;
                        break;
                }
                pos += (size_t) r;
                result = (ssize_t) pos;
                if ((size_t) r < n)
                        break;
        }
        printf("chunked %s: \"%s\"\n", bytewise ? "bytewise" : "whole", t->body);
        assert_int_equal(result, t->consumed);
        if (t->consumed >= 0 && s.state == HTTP_CHUNKED_DONE)
                assert_int_equal(s.total, t->total); /* the whole body, framing included */
}

static void test_chunked_skip(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof(chunked_cases) / sizeof(chunked_cases[0]); i++) {
                check_chunked_case(&chunked_cases[i], false);
                check_chunked_case(&chunked_cases[i], true);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_valid_bytewise),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_malformed_bytewise),
                cmocka_unit_test(test_parse_failure_keeps_output),
                cmocka_unit_test(test_parse_too_many_fields),
                cmocka_unit_test(test_parse_empty_lines_cap),
                cmocka_unit_test(test_head_scan),
                cmocka_unit_test(test_request_chunked),
                cmocka_unit_test(test_status_for_error),
                cmocka_unit_test(test_request_header),
                cmocka_unit_test(test_status_reason),
                cmocka_unit_test(test_list_has_token),
                cmocka_unit_test(test_chunked_skip),
                cmocka_unit_test(test_target_split),
                cmocka_unit_test(test_path_normalize),
                cmocka_unit_test(test_format_date),
                cmocka_unit_test(test_parse_date),
                cmocka_unit_test(test_parse_date_two_digit_year),
        };
        return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
