/* SPDX-License-Identifier: MIT */
/*
 * Request bytes in, status and headers out: the request-handling rules of
 * conn.c and serve.c, driven through conn_run() on one end of a socketpair
 * without the acceptor, the pool or a listening socket.
 *
 * Each row of the table is run twice, as its own cmocka test: once with the
 * whole request written before conn_run(), and once fed one byte at a time
 * with conn_run() between bytes (the way a slow client or a split segment
 * arrives). Both must give the same responses and the same final verdict.
 *
 * Checked for every row, besides the row's own expectations: each response
 * is "HTTP/1.1", names the server and the date, is framed by Content-Length
 * (no body for HEAD or 304), and nothing follows the expected responses; a
 * connection left to linger said "Connection: close", one kept open did not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "macro.h"
#include "mime.h"
#include "site.h"
#include "util.h"

/* ---- the document root ------------------------------------------------ */

#define INDEX_HTML "<html>hello</html>\n"
#define INDEX_LEN "19"
#define D_TXT "0123456789"
#define P_TXT "plain text\n"
#define P_TXT_GZ "GZ-BYTES" /* never decoded: only its length tells it apart */

/* Written into the root, age_sec before now: p.txt.gz is newer than p.txt,
 * so it is a valid variant; q.txt.gz is older than q.txt, so it is not. */
static const struct {
        const char *name;
        const char *contents;
        time_t age_sec;
} root_files[] = {
        { "index.html", INDEX_HTML, 100 },
        { "d.txt", D_TXT, 100 },
        { "p.txt", P_TXT, 100 },
        { "p.txt.gz", P_TXT_GZ, 10 },
        { "q.txt", P_TXT, 10 },
        { "q.txt.gz", P_TXT_GZ, 100 }, /* stale: older than q.txt */
        { ".env", "SECRET=1\n", 100 },
};

#define CONFIG_FORMAT                                                          \
        "[server]\n"                                                           \
        "root = %s\n"                                                          \
        "max_request_line = 300\n"                                             \
        "max_header_fields = 5\n"                                              \
        "max_body_bytes = 100\n"

/* ---- the table ------------------------------------------------------- */

typedef enum Match {
        MATCH_NONE, /* an unused slot */
        MATCH_EQUAL,
        MATCH_PREFIX,
        MATCH_CONTAINS,
        MATCH_ABSENT,
} Match;

typedef struct HeaderCheck {
        const char *name;
        Match match;
        const char *value;
} HeaderCheck;

#define EQ(n, v) { n, MATCH_EQUAL, v }
#define PREFIX(n, v) { n, MATCH_PREFIX, v }
#define HAS(n, v) { n, MATCH_CONTAINS, v }
#define NO(n) { n, MATCH_ABSENT, NULL }

#define MAX_CHECKS 6
#define MAX_RESPONSES 2

typedef struct Expect {
        int status;                     /* 0: no such response */
        bool head;                      /* answers a HEAD: no body follows */
        HeaderCheck checks[MAX_CHECKS];
        const char *body;               /* NULL: not checked */
        const char *body_has[2];        /* substrings the body must hold */
} Expect;

typedef struct Case {
        const char *name;
        const char *request;
        Expect expect[MAX_RESPONSES];   /* in order, one per answered request */
        ConnVerdict verdict;            /* the last conn_run() verdict */
        bool closes_after_answer;       /* ends for a reason found after answering */
} Case;

#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X1000 X100 X100 X100 X100 X100 X100 X100 X100 X100 X100
#define SEG10 "/abcdefghi"
#define SEG280 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 \
        SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10       \
        SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10 SEG10
#define GET_D "GET /d.txt HTTP/1.1\r\nHost: x\r\n\r\n"
#define OK_D { .status = 200, .checks = { EQ("Content-Length", "10") }, .body = D_TXT }

static Case cases[] = {
        /* Methods and versions */
        { .name = "GET / answers the index",
          .request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 200, .body = INDEX_HTML,
                        .checks = { PREFIX("Content-Type", "text/html"), EQ("Content-Length", INDEX_LEN),
                                    EQ("Accept-Ranges", "bytes"), HAS("ETag", "\""), HAS("Last-Modified", "GMT"),
                                    NO("Connection") } } },
          .verdict = CONN_PARK_READ },
        { .name = "HEAD / has Content-Length but no body",
          .request = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 200, .head = true,
                        .checks = { PREFIX("Content-Type", "text/html"), EQ("Content-Length", INDEX_LEN) } } },
          .verdict = CONN_PARK_READ },
        { .name = "GET /d.txt is text/plain",
          .request = GET_D,
          .expect = { { .status = 200, .body = D_TXT,
                        .checks = { PREFIX("Content-Type", "text/plain"), EQ("Content-Length", "10") } } },
          .verdict = CONN_PARK_READ },
        { .name = "POST is 405 with Allow",
          .request = "POST / HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 405, .checks = { HAS("Allow", "GET"), HAS("Allow", "HEAD") } } },
          .verdict = CONN_PARK_READ },
        { .name = "unknown method FOO is 501",
          .request = "FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 501, .checks = { HAS("Allow", "GET") } } },
          .verdict = CONN_PARK_READ },
        { .name = "OPTIONS * lists the methods",
          .request = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 200, .body = "",
                        .checks = { HAS("Allow", "GET"), HAS("Allow", "HEAD"), HAS("Allow", "OPTIONS"),
                                    EQ("Content-Length", "0") } } },
          .verdict = CONN_PARK_READ },
        { .name = "HTTP/2.0 is 505 and closes",
          .request = "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
          .expect = { { .status = 505, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "HTTP/1.2 is answered as 1.1",
          .request = "GET /d.txt HTTP/1.2\r\nHost: x\r\n\r\n",
          .expect = { { .status = 200, .body = D_TXT, .checks = { NO("Connection") } } },
          .verdict = CONN_PARK_READ },
        { .name = "HTTP/1.0 without keep-alive closes",
          .request = "GET /d.txt HTTP/1.0\r\n\r\n",
          .expect = { { .status = 200, .body = D_TXT, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "HTTP/1.0 with keep-alive stays open",
          .request = "GET /d.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
          .expect = { { .status = 200, .body = D_TXT, .checks = { EQ("Connection", "keep-alive") } } },
          .verdict = CONN_PARK_READ },
        { .name = "HTTP/1.1 Connection: close closes",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          .expect = { { .status = 200, .body = D_TXT, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "absolute-form target",
          .request = "GET http://x/d.txt HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "empty line before the request line is skipped",
          .request = "\r\nGET /d.txt HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { OK_D },
          .verdict = CONN_PARK_READ },

        /* Host */
        { .name = "HTTP/1.1 without Host is 400 and closes",
          .request = "GET / HTTP/1.1\r\n\r\n",
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "two Host fields are 400",
          .request = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "Host with a space is 400",
          .request = "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },

        /* Ranges */
        { .name = "Range bytes=2-4 is 206",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n",
          .expect = { { .status = 206, .body = "234",
                        .checks = { EQ("Content-Range", "bytes 2-4/10"), EQ("Content-Length", "3"),
                                    PREFIX("Content-Type", "text/plain") } } },
          .verdict = CONN_PARK_READ },
        { .name = "Range bytes=20- is 416",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=20-\r\n\r\n",
          .expect = { { .status = 416, .checks = { EQ("Content-Range", "bytes */10") } } },
          .verdict = CONN_PARK_READ },
        { .name = "Range bytes=0-1,5-6 is multipart",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-6\r\n\r\n",
          .expect = { { .status = 206,
                        .checks = { PREFIX("Content-Type", "multipart/byteranges; boundary="),
                                    NO("Content-Range") },
                        .body_has = { "Content-Range: bytes 0-1/10\r\n\r\n01\r\n",
                                      "Content-Range: bytes 5-6/10\r\n\r\n56\r\n" } } },
          .verdict = CONN_PARK_READ },
        { .name = "Range on HEAD is ignored",
          .request = "HEAD /d.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n",
          .expect = { { .status = 200, .head = true,
                        .checks = { EQ("Content-Length", "10"), NO("Content-Range") } } },
          .verdict = CONN_PARK_READ },

        /* Preconditions */
        { .name = "If-None-Match: * is 304 without body",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n",
          .expect = { { .status = 304, .checks = { HAS("ETag", "\""), NO("Content-Length") } } },
          .verdict = CONN_PARK_READ },
        { .name = "If-Range not matching sends the whole file",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\nIf-Range: \"nope\"\r\n\r\n",
          .expect = { { .status = 200, .body = D_TXT, .checks = { NO("Content-Range") } } },
          .verdict = CONN_PARK_READ },
        { .name = "If-Match not matching is 412",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nIf-Match: \"nope\"\r\n\r\n",
          .expect = { { .status = 412 } },
          .verdict = CONN_PARK_READ },

        /* Request bodies and framing */
        { .name = "Transfer-Encoding with Content-Length is 400 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                     "0\r\n\r\n",
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "Transfer-Encoding: gzip is 400 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "Transfer-Encoding: foo chunked is 400 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo chunked\r\n\r\n0\r\n\r\n" GET_D,
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "Transfer-Encoding: gzip, chunked is 501 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" GET_D,
          .expect = { { .status = 501, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "chunked applied twice is 400 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                     "\r\n0\r\n\r\n" GET_D,
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "Content-Length body is skipped before a pipelined GET",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" GET_D,
          .expect = { { .status = 405, .checks = { NO("Connection") } }, OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "chunked body is skipped before a pipelined GET",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n" GET_D,
          .expect = { { .status = 405, .checks = { NO("Connection") } }, OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "Content-Length at max_body_bytes is skipped",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" X100 GET_D,
          .expect = { { .status = 405 }, OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "Content-Length over max_body_bytes is 413 and closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
          .expect = { { .status = 413, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "chunked body over max_body_bytes closes after the answer",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "65\r\n" X100 "x\r\n0\r\n\r\n" GET_D,
          .expect = { { .status = 405 } },
          .verdict = CONN_LINGER, .closes_after_answer = true },
        { .name = "Expect: 100-continue with a body closes",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
          .expect = { { .status = 405, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "8 empty lines before a request line are ignored",
          .request = "\r\n\n\r\n\n\r\n\r\n\n\r\n" GET_D,
          .expect = { OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "8 empty lines after a body are ignored",
          .request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" GET_D,
          .expect = { { .status = 405 }, OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "9 empty lines before a request line are 400 and close",
          .request = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\n" GET_D,
          .expect = { { .status = 400, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "two pipelined GETs get two answers",
          .request = GET_D GET_D,
          .expect = { OK_D, OK_D },
          .verdict = CONN_PARK_READ },

        /* Limits: max_request_line 300, max_header_fields 5 */
        { .name = "request line of exactly 300 bytes is served",
          .request = "GET " SEG280 "/abcdef HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 404 } },
          .verdict = CONN_PARK_READ },
        { .name = "request line of 301 bytes is 414 and closes",
          .request = "GET " SEG280 "/abcdefg HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 414, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "5 header fields are allowed",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
          .expect = { OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "header section over max_header_bytes is 431 and closes",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nA: " X1000 X1000 X1000 X1000 X1000 X1000 X1000 X1000
                     X1000 "\r\n\r\n",
          .expect = { { .status = 431, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },
        { .name = "6 header fields are 431 and close",
          .request = "GET /d.txt HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
          .expect = { { .status = 431, .checks = { EQ("Connection", "close") } } },
          .verdict = CONN_LINGER },

        /* Paths */
        { .name = "encoded NUL is 400",
          .request = "GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 400 } },
          .verdict = CONN_PARK_READ },
        { .name = "climbing above the root is 400",
          .request = "GET /../x HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 400 } },
          .verdict = CONN_PARK_READ },
        { .name = "dot segments are resolved",
          .request = "GET /sub/../d.txt HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { OK_D },
          .verdict = CONN_PARK_READ },
        { .name = "dotfile is 404",
          .request = "GET /.env HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 404 } },
          .verdict = CONN_PARK_READ },
        { .name = "missing file is 404",
          .request = "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 404 } },
          .verdict = CONN_PARK_READ },
        { .name = "HEAD of a missing file is 404 without body",
          .request = "HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 404, .head = true, .checks = { PREFIX("Content-Type", "text/html") } } },
          .verdict = CONN_PARK_READ },
        { .name = "file with a trailing slash is 404",
          .request = "GET /d.txt/ HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 404 } },
          .verdict = CONN_PARK_READ },
        { .name = "directory without slash redirects",
          .request = "GET /sub HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 301, .checks = { EQ("Location", "/sub/") } } },
          .verdict = CONN_PARK_READ },
        { .name = "directory redirect keeps the query",
          .request = "GET /sub?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 301, .checks = { EQ("Location", "/sub/?q=1") } } },
          .verdict = CONN_PARK_READ },
        { .name = "redirect Location never starts with //",
          .request = "GET //sub HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 301, .checks = { EQ("Location", "/sub/") } } },
          .verdict = CONN_PARK_READ },
        { .name = "directory without index is 403",
          .request = "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 403 } },
          .verdict = CONN_PARK_READ },

        /* Precompressed variants */
        { .name = "Accept-Encoding: gzip gets the .gz variant",
          .request = "GET /p.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
          .expect = { { .status = 200, .body = P_TXT_GZ,
                        .checks = { EQ("Content-Encoding", "gzip"), EQ("Vary", "Accept-Encoding"),
                                    PREFIX("Content-Type", "text/plain"), EQ("Content-Length", "8") } } },
          .verdict = CONN_PARK_READ },
        { .name = "Accept-Encoding: gzip;q=0 gets the file itself",
          .request = "GET /p.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0\r\n\r\n",
          .expect = { { .status = 200, .body = P_TXT,
                        .checks = { NO("Content-Encoding"), EQ("Vary", "Accept-Encoding") } } },
          .verdict = CONN_PARK_READ },
        { .name = "a .gz variant older than the file is not used",
          .request = "GET /q.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
          .expect = { { .status = 200, .body = P_TXT, .checks = { NO("Content-Encoding") } } },
          .verdict = CONN_PARK_READ },
        { .name = "no Accept-Encoding gets the file itself",
          .request = "GET /p.txt HTTP/1.1\r\nHost: x\r\n\r\n",
          .expect = { { .status = 200, .body = P_TXT,
                        .checks = { NO("Content-Encoding"), EQ("Vary", "Accept-Encoding") } } },
          .verdict = CONN_PARK_READ },
};

/* ---- the fixture ----------------------------------------------------- */

#define OUT_MAX (256 * 1024)
#define MAX_TURNS 1000 /* conn_run() calls per write; more means a loop */

static struct {
        char root[PATH_MAX];
        ServeContext ctx;
        Conn *conn;
        int peer;
        char out[OUT_MAX]; /* every byte the peer received */
        size_t out_len;
} h = {
        .ctx = { .site_lock = PTHREAD_MUTEX_INITIALIZER },
        .peer = -EBADF,
};

static void root_path(char *buf, size_t size, const char *name) {
        int n = snprintf(buf, size, "%s/%s", h.root, name);
        assert_true(n > 0 && (size_t) n < size);
}

static void write_root_file(const char *name, const char *contents, time_t age_sec) {
        char path[PATH_MAX];
        size_t len = strlen(contents);

        root_path(path, sizeof(path), name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, contents, len), (ssize_t) len);
        struct timespec t[2] = { { .tv_sec = time(NULL) - age_sec }, { .tv_sec = time(NULL) - age_sec } };
        assert_int_equal(futimens(fd, t), 0);
}

static void remove_root(void) {
        char path[PATH_MAX];

        if (!h.root[0])
                return;
        for (size_t i = 0; i < ELEMENTSOF(root_files); i++) {
                root_path(path, sizeof(path), root_files[i].name);
                (void) unlink(path);
        }
        root_path(path, sizeof(path), "sub");
        (void) rmdir(path);
        (void) rmdir(h.root);
        h.root[0] = '\0';
}

static int build_site(void) {
        char dir[] = "/tmp/test-serve-XXXXXX", path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        Config config;
        ConfigError error = {};
        Site *site;
        int mime_error;

        if (!mkdtemp(dir))
                return -1;
        if (!realpath(dir, h.root)) {
                (void) rmdir(dir);
                return -1;
        }
        for (size_t i = 0; i < ELEMENTSOF(root_files); i++)
                write_root_file(root_files[i].name, root_files[i].contents, root_files[i].age_sec);
        root_path(path, sizeof(path), "sub");
        if (mkdir(path, 0755) < 0)
                return -1;

        if (asprintf(&text, CONFIG_FORMAT, h.root) < 0)
                return -1;
        if (config_parse_string(text, NULL, &config, &error) < 0) {
                print_error("config: line %u: %s: %s\n", error.line, error.key, error.message);
                return -1;
        }
        if (site_new(&config, &site) < 0)
                return -1;
        serve_context_set_site(&h.ctx, site);
        return mime_table_new(NULL, &h.ctx.mime, &mime_error);
}

static int teardown_site(void **state) {
        (void) state;
        h.ctx.mime = mime_table_free(h.ctx.mime);
        h.ctx.site = site_unref(h.ctx.site);
        remove_root();
        return 0;
}

/* cmocka runs no group teardown after a failed setup: clean up here. */
static int setup_site(void **state) {
        if (build_site() < 0) {
                (void) teardown_site(state);
                return -1;
        }
        return 0;
}

/* Also runs after a failed row, so a failure leaks nothing. */
static int teardown_conn(void **state) {
        (void) state;
        h.conn = conn_free(h.conn);
        h.peer = safe_close(h.peer);
        return 0;
}

/* ---- driving a connection -------------------------------------------- */

static void dump_output(void) {
        print_message("---- %zu bytes received:\n%.*s\n----\n", h.out_len, (int) h.out_len, h.out);
}

#define check(cond, ...)                                \
        do {                                            \
                if (!(cond)) {                          \
                        dump_output();                  \
                        fail_msg(__VA_ARGS__);          \
                }                                       \
        } while (0)

static void open_conn(void) {
        int fds[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        h.peer = fds[1];
        h.conn = conn_new(fds[0], &h.ctx, now_usec());
        if (!h.conn)
                (void) close(fds[0]);
        assert_non_null(h.conn);
        h.out_len = 0;
}

static void peer_write(const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(h.peer, p, len);
                assert_true(n > 0);
                p += n;
                len -= (size_t) n;
        }
}

static void peer_drain(void) {
        for (;;) {
                check(h.out_len < sizeof(h.out), "more than %zu bytes of output", sizeof(h.out));
                ssize_t n = read(h.peer, h.out + h.out_len, sizeof(h.out) - h.out_len);
                if (n < 0 && errno == EAGAIN)
                        return;
                assert_true(n > 0);
                h.out_len += (size_t) n;
        }
}

/* Runs the connection as the acceptor and pool would, with a client that
 * reads everything at once: a full socket or a spent turn just means
 * running again. Returns the verdict that would park or end it. */
static ConnVerdict run_turns(void) {
        for (unsigned turn = 0; turn < MAX_TURNS; turn++) {
                ConnVerdict v = conn_run(h.conn);
                peer_drain();
                if (v != CONN_REQUEUE && v != CONN_PARK_WRITE)
                        return v;
        }
        fail_msg("conn_run() still busy after %d turns", MAX_TURNS);
        return CONN_CLOSE; /* not reached */
}

static ConnVerdict run_request(const char *request, bool bytewise) {
        size_t len = strlen(request);
        ConnVerdict v = CONN_PARK_READ;

        if (!bytewise) {
                peer_write(request, len);
                return run_turns();
        }
        for (size_t i = 0; i < len && v == CONN_PARK_READ; i++) {
                peer_write(request + i, 1);
                v = run_turns();
        }
        return v;
}

/* ---- reading the responses ------------------------------------------- */

#define MAX_FIELDS 32

typedef struct Field {
        char name[64];
        char value[512];
} Field;

typedef struct Response {
        int status;
        Field fields[MAX_FIELDS];
        size_t n_fields;
        const char *body;
        size_t body_len;
} Response;

/* Returns the value of the only field called name; NULL when there is
 * none. Two fields of one name fail the test: ours never repeat one. */
static const char *response_field(const Response *r, const char *name) {
        const char *value = NULL;

        for (size_t i = 0; i < r->n_fields; i++)
                if (strcasecmp(r->fields[i].name, name) == 0) {
                        check(!value, "header %s sent twice", name);
                        value = r->fields[i].value;
                }
        return value;
}

static void parse_field(const char *line, size_t len, Field *ret) {
        const char *colon = memchr(line, ':', len);

        check(colon, "header line without a colon: %.*s", (int) len, line);
        size_t name_len = (size_t) (colon - line);
        const char *v = colon + 1, *end = line + len;
        while (v < end && *v == ' ')
                v++;
        check(name_len < sizeof(ret->name) && (size_t) (end - v) < sizeof(ret->value),
              "header line too long: %.*s", (int) len, line);
        *ret = (Field) {};
        memcpy(ret->name, line, name_len);
        memcpy(ret->value, v, (size_t) (end - v));
}

static uint64_t parse_length(const char *s) {
        char *end;

        errno = 0;
        unsigned long long n = strtoull(s, &end, 10);
        check(errno == 0 && end != s && *end == '\0' && s[0] >= '0' && s[0] <= '9', "bad Content-Length '%s'", s);
        return n;
}

/* Parses the response at *pos, advancing past it. head: it answers HEAD. */
static void parse_response(size_t *pos, bool head, Response *ret) {
        const char *start = h.out + *pos;
        size_t avail = h.out_len - *pos;
        const char *end = memmem(start, avail, "\r\n\r\n", 4);

        check(end, "no complete response head at offset %zu", *pos);
        check(avail >= 13 && memcmp(start, "HTTP/1.1 ", 9) == 0 && start[12] == ' ',
              "bad status line at offset %zu", *pos);
        *ret = (Response) { .status = atoi(start + 9) };

        const char *line = (const char *) memchr(start, '\n', (size_t) (end - start)) + 1;
        while (line < end + 2) {
                const char *eol = memmem(line, (size_t) (end + 2 - line), "\r\n", 2);
                check(ret->n_fields < MAX_FIELDS, "more than %d header fields", MAX_FIELDS);
                parse_field(line, (size_t) (eol - line), &ret->fields[ret->n_fields++]);
                line = eol + 2;
        }

        const char *length = response_field(ret, "Content-Length");
        uint64_t body_len = 0;
        check(length || ret->status == 304, "%d response without Content-Length", ret->status);
        if (length && !head && ret->status != 304)
                body_len = parse_length(length);
        size_t head_len = (size_t) (end + 4 - start);
        check(body_len <= avail - head_len, "body cut short: %zu of %" PRIu64 " bytes", avail - head_len, body_len);
        ret->body = end + 4;
        ret->body_len = (size_t) body_len;
        *pos += head_len + (size_t) body_len;
}

/* ---- checking -------------------------------------------------------- */

static void check_field(const Response *r, unsigned n, const HeaderCheck *k) {
        if (k->match == MATCH_NONE)
                return;
        const char *v = response_field(r, k->name);
        if (k->match == MATCH_ABSENT) {
                check(!v, "response %u: %s: %s, expected none", n, k->name, v);
                return;
        }
        check(v, "response %u: no %s, expected '%s'", n, k->name, k->value);
        if (k->match == MATCH_EQUAL)
                check(strcmp(v, k->value) == 0, "response %u: %s: '%s', expected '%s'", n, k->name, v, k->value);
        else if (k->match == MATCH_PREFIX)
                check(strncmp(v, k->value, strlen(k->value)) == 0, "response %u: %s: '%s', expected '%s...'", n,
                      k->name, v, k->value);
        else
                check(strstr(v, k->value), "response %u: %s: '%s', expected it to hold '%s'", n, k->name, v,
                      k->value);
}

static void check_response(const Response *r, unsigned n, const Expect *e) {
        check(r->status == e->status, "response %u: status %d, expected %d", n, r->status, e->status);
        check(response_field(r, "Date"), "response %u: no Date", n);
        const char *server = response_field(r, "Server");
        check(server && strcmp(server, "webpoold") == 0, "response %u: Server is not webpoold", n);
        for (size_t i = 0; i < MAX_CHECKS; i++)
                check_field(r, n, &e->checks[i]);
        if (e->body)
                check(r->body_len == strlen(e->body) && memcmp(r->body, e->body, r->body_len) == 0,
                      "response %u: body '%.*s', expected '%s'", n, (int) r->body_len, r->body, e->body);
        for (size_t i = 0; i < ELEMENTSOF(e->body_has); i++)
                if (e->body_has[i])
                        check(memmem(r->body, r->body_len, e->body_has[i], strlen(e->body_has[i])),
                              "response %u: body lacks '%s'", n, e->body_has[i]);
}

static const char *verdict_name(ConnVerdict v) {
        static const char *const names[] = {
                [CONN_PARK_READ] = "PARK_READ", [CONN_PARK_WRITE] = "PARK_WRITE", [CONN_REQUEUE] = "REQUEUE",
                [CONN_LINGER] = "LINGER",       [CONN_CLOSE] = "CLOSE",
        };
        return (size_t) v < ELEMENTSOF(names) ? names[v] : "?";
}

static void run_case(const Case *t, bool bytewise) {
        Response r;
        size_t pos = 0;
        const char *connection = NULL;

        print_message("case: %s (%s)\n", t->name, bytewise ? "one byte at a time" : "whole request");
        open_conn();
        ConnVerdict v = run_request(t->request, bytewise);

        for (unsigned n = 0; n < MAX_RESPONSES && t->expect[n].status; n++) {
                parse_response(&pos, t->expect[n].head, &r);
                check_response(&r, n + 1, &t->expect[n]);
                connection = response_field(&r, "Connection");
        }
        check(pos == h.out_len, "%zu bytes after the expected responses", h.out_len - pos);
        check(v == t->verdict, "verdict %s, expected %s", verdict_name(v), verdict_name(t->verdict));
        if (v == CONN_LINGER && !t->closes_after_answer)
                check(connection && strcmp(connection, "close") == 0, "lingering without Connection: close");
        if (v == CONN_PARK_READ)
                check(!connection || strcmp(connection, "close") != 0, "Connection: close but kept open");
        h.conn = conn_free(h.conn);
        h.peer = safe_close(h.peer);
}

static void test_whole(void **state) {
        run_case(*state, false);
}

static void test_bytewise(void **state) {
        run_case(*state, true);
}

int main(void) {
        struct CMUnitTest whole[ELEMENTSOF(cases)], bytewise[ELEMENTSOF(cases)];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                whole[i] = (struct CMUnitTest) cmocka_unit_test_prestate_setup_teardown(
                        test_whole, NULL, teardown_conn, &cases[i]);
                whole[i].name = cases[i].name;
                bytewise[i] = (struct CMUnitTest) cmocka_unit_test_prestate_setup_teardown(
                        test_bytewise, NULL, teardown_conn, &cases[i]);
                bytewise[i].name = cases[i].name;
        }
        int failed = cmocka_run_group_tests_name("serve: whole requests", whole, setup_site, teardown_site);
        failed += cmocka_run_group_tests_name("serve: one byte at a time", bytewise, setup_site, teardown_site);
        return failed;
}
