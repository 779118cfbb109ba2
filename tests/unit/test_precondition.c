/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "macro.h"
#include "precondition.h"

/* The representation every case asks about. */
#define ETAG "\"abc\""
#define LAST_MODIFIED 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define NOW 1700000000          /* Tue, 14 Nov 2023 22:13:20 GMT */

/* LAST_MODIFIED in the three formats of RFC 9110 §5.6.7, and neighbours. */
#define LM_IMF "Sun, 06 Nov 1994 08:49:37 GMT"
#define LM_RFC850 "Sunday, 06-Nov-94 08:49:37 GMT"
#define LM_ASCTIME "Sun Nov  6 08:49:37 1994"
#define BEFORE_IMF "Sun, 06 Nov 1994 08:49:36 GMT"
#define BEFORE_RFC850 "Sunday, 06-Nov-94 08:49:36 GMT"
#define BEFORE_ASCTIME "Sun Nov  6 08:49:36 1994"
#define AFTER_IMF "Sun, 06 Nov 1994 08:49:38 GMT"
#define NOW_IMF "Tue, 14 Nov 2023 22:13:20 GMT"
#define PAST_NOW_IMF "Tue, 14 Nov 2023 22:13:21 GMT"
#define FUTURE_IMF "Fri, 01 Jan 2100 00:00:00 GMT"

/* Builds a request from its method and raw field lines (each ending in
 * CRLF) and parses it. The request's slices point into the returned
 * buffer, which the caller frees. */
static char *request_parse(const char *method, const char *fields, HttpRequest *ret) {
        char *buf;
        int n = asprintf(&buf, "%s / HTTP/1.1\r\nHost: h\r\n%s\r\n", method, fields);
        assert_true(n > 0);
        assert_int_equal(http_parse_request(buf, (size_t) n, ret), n);
        return buf;
}

static Validators validators(const char *etag) {
        const char *e = etag ? etag : ETAG;
        return (Validators) { .etag = { e, strlen(e) }, .last_modified = LAST_MODIFIED };
}

/* ---- precondition_check ---- */

typedef struct CheckCase {
        const char *name;
        const char *method;
        const char *fields;
        const char *etag; /* NULL: ETAG */
        int status;
} CheckCase;

static const CheckCase check_cases[] = {
        { "no preconditions", "GET", "", NULL, 0 },

        /* If-Match: strong comparison */
        { "If-Match equal", "GET", "If-Match: \"abc\"\r\n", NULL, 0 },
        { "If-Match different", "GET", "If-Match: \"xyz\"\r\n", NULL, 412 },
        { "If-Match list with the tag", "GET", "If-Match: \"xyz\", \"abc\"\r\n", NULL, 0 },
        { "If-Match list without the tag", "GET", "If-Match: \"x\", \"y\"\r\n", NULL, 412 },
        { "If-Match empty elements", "GET", "If-Match: , \"xyz\" ,, \"abc\" ,\r\n", NULL, 0 },
        { "If-Match star", "GET", "If-Match: *\r\n", NULL, 0 },
        { "If-Match star without an etag", "GET", "If-Match: *\r\n", "", 0 },
        { "If-Match tag without an etag", "GET", "If-Match: \"abc\"\r\n", "", 412 },
        { "If-Match weak tag never matches", "GET", "If-Match: W/\"abc\"\r\n", NULL, 412 },
        { "If-Match against a weak etag", "GET", "If-Match: \"abc\"\r\n", "W/\"abc\"", 412 },
        { "If-Match weak against weak", "GET", "If-Match: W/\"abc\"\r\n", "W/\"abc\"", 412 },
        { "If-Match lowercase w/ is no prefix", "GET", "If-Match: w/\"abc\"\r\n", NULL, 412 },
        { "If-Match unquoted", "GET", "If-Match: abc\r\n", NULL, 412 },
        { "If-Match unterminated", "GET", "If-Match: \"abc\r\n", NULL, 412 },
        { "If-Match match then garbage", "GET", "If-Match: \"abc\", xyz\r\n", NULL, 412 },
        { "If-Match garbage then match", "GET", "If-Match: xyz, \"abc\"\r\n", NULL, 412 },
        { "If-Match missing comma", "GET", "If-Match: \"abc\" \"xyz\"\r\n", NULL, 412 },
        { "If-Match space inside a tag", "GET", "If-Match: \"a bc\"\r\n", NULL, 412 },
        { "If-Match only commas", "GET", "If-Match: ,\r\n", NULL, 412 },
        { "If-Match empty", "GET", "If-Match:\r\n", NULL, 412 },
        { "If-Match star in a list", "GET", "If-Match: *, \"abc\"\r\n", NULL, 412 },
        { "If-Match comma inside the tag", "GET", "If-Match: \"a,b\"\r\n", "\"a,b\"", 0 },
        { "If-Match comma splits other tags", "GET", "If-Match: \"a\", \"b\"\r\n", "\"a,b\"", 412 },
        { "If-Match obs-text tag", "GET", "If-Match: \"caf\xc3\xa9\"\r\n", "\"caf\xc3\xa9\"", 0 },
        { "If-Match empty opaque-tag", "GET", "If-Match: \"\"\r\n", "\"\"", 0 },
        { "If-Match empty opaque-tag differs", "GET", "If-Match: \"\"\r\n", NULL, 412 },
        { "If-Match name case-insensitive", "GET", "if-match: \"xyz\"\r\n", NULL, 412 },
        { "If-Match twice, second matches", "GET", "If-Match: \"x\"\r\nif-match: \"abc\"\r\n", NULL, 0 },
        { "If-Match twice, one malformed", "GET", "If-Match: \"abc\"\r\nIf-Match: junk\r\n", NULL, 412 },
        { "If-Match twice, one star", "GET", "If-Match: *\r\nIf-Match: \"abc\"\r\n", NULL, 412 },

        /* If-Unmodified-Since */
        { "IUS equal", "GET", "If-Unmodified-Since: " LM_IMF "\r\n", NULL, 0 },
        { "IUS after", "GET", "If-Unmodified-Since: " AFTER_IMF "\r\n", NULL, 0 },
        { "IUS before", "GET", "If-Unmodified-Since: " BEFORE_IMF "\r\n", NULL, 412 },
        { "IUS before, RFC 850", "GET", "If-Unmodified-Since: " BEFORE_RFC850 "\r\n", NULL, 412 },
        { "IUS before, asctime", "GET", "If-Unmodified-Since: " BEFORE_ASCTIME "\r\n", NULL, 412 },
        { "IUS equal, RFC 850", "GET", "If-Unmodified-Since: " LM_RFC850 "\r\n", NULL, 0 },
        { "IUS invalid ignored", "GET", "If-Unmodified-Since: yesterday\r\n", NULL, 0 },
        { "IUS list of dates ignored", "GET", "If-Unmodified-Since: " BEFORE_IMF ", " BEFORE_IMF "\r\n", NULL, 0 },
        { "IUS twice ignored", "GET",
          "If-Unmodified-Since: " BEFORE_IMF "\r\nIf-Unmodified-Since: " BEFORE_IMF "\r\n", NULL, 0 },
        { "IUS with If-Match equal", "GET", "If-Match: \"abc\"\r\nIf-Unmodified-Since: " BEFORE_IMF "\r\n", NULL, 0 },
        { "IUS with If-Match star", "GET", "If-Match: *\r\nIf-Unmodified-Since: " BEFORE_IMF "\r\n", NULL, 0 },

        /* If-None-Match: weak comparison */
        { "INM equal", "GET", "If-None-Match: \"abc\"\r\n", NULL, 304 },
        { "INM equal, HEAD", "HEAD", "If-None-Match: \"abc\"\r\n", NULL, 304 },
        { "INM weak tag matches", "GET", "If-None-Match: W/\"abc\"\r\n", NULL, 304 },
        { "INM against a weak etag", "GET", "If-None-Match: \"abc\"\r\n", "W/\"abc\"", 304 },
        { "INM different", "GET", "If-None-Match: \"xyz\"\r\n", NULL, 0 },
        { "INM list with the tag", "GET", "If-None-Match: \"x\", W/\"abc\"\r\n", NULL, 304 },
        { "INM list without the tag", "GET", "If-None-Match: \"x\", W/\"y\"\r\n", NULL, 0 },
        { "INM star", "GET", "If-None-Match: *\r\n", NULL, 304 },
        { "INM unquoted", "GET", "If-None-Match: abc\r\n", NULL, 0 },
        { "INM match then garbage", "GET", "If-None-Match: \"abc\", junk\r\n", NULL, 0 },
        { "INM twice, second matches", "GET", "If-None-Match: \"x\"\r\nIf-None-Match: \"abc\"\r\n", NULL, 304 },
        { "INM name case-insensitive", "GET", "IF-NONE-MATCH: \"abc\"\r\n", NULL, 304 },

        /* If-Modified-Since */
        { "IMS equal", "GET", "If-Modified-Since: " LM_IMF "\r\n", NULL, 304 },
        { "IMS equal, RFC 850", "GET", "If-Modified-Since: " LM_RFC850 "\r\n", NULL, 304 },
        { "IMS equal, asctime", "GET", "If-Modified-Since: " LM_ASCTIME "\r\n", NULL, 304 },
        { "IMS equal, HEAD", "HEAD", "If-Modified-Since: " LM_IMF "\r\n", NULL, 304 },
        { "IMS after", "GET", "If-Modified-Since: " AFTER_IMF "\r\n", NULL, 304 },
        { "IMS now", "GET", "If-Modified-Since: " NOW_IMF "\r\n", NULL, 304 },
        { "IMS before", "GET", "If-Modified-Since: " BEFORE_IMF "\r\n", NULL, 0 },
        { "IMS before, asctime", "GET", "If-Modified-Since: " BEFORE_ASCTIME "\r\n", NULL, 0 },
        { "IMS a second in the future ignored", "GET", "If-Modified-Since: " PAST_NOW_IMF "\r\n", NULL, 0 },
        { "IMS far future ignored", "GET", "If-Modified-Since: " FUTURE_IMF "\r\n", NULL, 0 },
        { "IMS invalid ignored", "GET", "If-Modified-Since: yesterday\r\n", NULL, 0 },
        { "IMS empty ignored", "GET", "If-Modified-Since:\r\n", NULL, 0 },
        { "IMS list of dates ignored", "GET", "If-Modified-Since: " LM_IMF ", " LM_IMF "\r\n", NULL, 0 },
        { "IMS twice ignored", "GET", "If-Modified-Since: " LM_IMF "\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL, 0 },

        /* precedence (RFC 9110 §13.2.2) */
        { "If-Match fails before INM", "GET", "If-Match: \"xyz\"\r\nIf-None-Match: \"abc\"\r\n", NULL, 412 },
        { "If-Match fails before IMS", "GET", "If-Match: \"xyz\"\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL, 412 },
        { "malformed If-Match fails before INM", "GET", "If-Match: abc\r\nIf-None-Match: \"xyz\"\r\n", NULL, 412 },
        { "If-Match holds, INM matches", "GET", "If-Match: \"abc\"\r\nIf-None-Match: \"abc\"\r\n", NULL, 304 },
        { "IUS fails before INM", "GET", "If-Unmodified-Since: " BEFORE_IMF "\r\nIf-None-Match: \"abc\"\r\n", NULL, 412 },
        { "invalid IUS, INM matches", "GET", "If-Unmodified-Since: soon\r\nIf-None-Match: \"abc\"\r\n", NULL, 304 },
        { "IUS holds, IMS equal", "GET", "If-Unmodified-Since: " LM_IMF "\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL,
          304 },
        { "INM no match beats IMS", "GET", "If-None-Match: \"xyz\"\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL, 0 },
        { "INM match beats IMS", "GET", "If-None-Match: \"abc\"\r\nIf-Modified-Since: " BEFORE_IMF "\r\n", NULL, 304 },
        { "malformed INM still beats IMS", "GET", "If-None-Match: abc\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL, 0 },

        /* other methods: INM answers 412, IMS does not apply */
        { "PUT INM match", "PUT", "If-None-Match: \"abc\"\r\n", NULL, 412 },
        { "PUT INM star", "PUT", "If-None-Match: *\r\n", NULL, 412 },
        { "DELETE INM weak match", "DELETE", "If-None-Match: W/\"abc\"\r\n", NULL, 412 },
        { "POST INM no match", "POST", "If-None-Match: \"xyz\"\r\n", NULL, 0 },
        { "unknown method INM match", "PROPFIND", "If-None-Match: \"abc\"\r\n", NULL, 412 },
        { "PUT IMS equal ignored", "PUT", "If-Modified-Since: " LM_IMF "\r\n", NULL, 0 },
        { "PUT IMS before ignored", "PUT", "If-Modified-Since: " BEFORE_IMF "\r\n", NULL, 0 },
        { "PUT If-Match different", "PUT", "If-Match: \"xyz\"\r\n", NULL, 412 },
        { "PUT If-Match equal", "PUT", "If-Match: \"abc\"\r\n", NULL, 0 },
        { "DELETE IUS before", "DELETE", "If-Unmodified-Since: " BEFORE_IMF "\r\n", NULL, 412 },
        { "POST INM no match, IMS equal", "POST", "If-None-Match: \"xyz\"\r\nIf-Modified-Since: " LM_IMF "\r\n", NULL,
          0 },
};

static void test_check(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(check_cases); i++) {
                const CheckCase *c = &check_cases[i];
                HttpRequest req;
                Validators v = validators(c->etag);

                print_message("check: %s\n", c->name);
                char *buf = request_parse(c->method, c->fields, &req);
                bool get_or_head = req.method == HTTP_GET || req.method == HTTP_HEAD;
                assert_int_equal(precondition_check(&req, &v, get_or_head, NOW), c->status);
                free(buf);
        }
}

/* ---- precondition_if_range ---- */

typedef struct IfRangeCase {
        const char *name;
        const char *fields;
        const char *etag; /* NULL: ETAG */
        bool honour;
} IfRangeCase;

static const IfRangeCase if_range_cases[] = {
        { "no If-Range", "", NULL, true },
        { "strong tag equal", "If-Range: \"abc\"\r\n", NULL, true },
        { "name case-insensitive", "if-range: \"abc\"\r\n", NULL, true },
        { "strong tag different", "If-Range: \"xyz\"\r\n", NULL, false },
        { "weak tag", "If-Range: W/\"abc\"\r\n", NULL, false },
        { "against a weak etag", "If-Range: \"abc\"\r\n", "W/\"abc\"", false },
        { "tag without an etag", "If-Range: \"abc\"\r\n", "", false },
        { "date equal", "If-Range: " LM_IMF "\r\n", NULL, true },
        { "date equal, RFC 850", "If-Range: " LM_RFC850 "\r\n", NULL, true },
        { "date equal, asctime", "If-Range: " LM_ASCTIME "\r\n", NULL, true },
        { "date before", "If-Range: " BEFORE_IMF "\r\n", NULL, false },
        { "date after", "If-Range: " AFTER_IMF "\r\n", NULL, false },
        { "garbage", "If-Range: abc\r\n", NULL, false },
        { "empty", "If-Range:\r\n", NULL, false },
        { "star", "If-Range: *\r\n", NULL, false },
        { "tag with trailing junk", "If-Range: \"abc\"x\r\n", NULL, false },
        { "list of tags", "If-Range: \"abc\", \"abc\"\r\n", NULL, false },
        { "sent twice", "If-Range: \"abc\"\r\nIf-Range: \"abc\"\r\n", NULL, false },
        { "date with trailing junk", "If-Range: " LM_IMF " x\r\n", NULL, false },
};

static void test_if_range(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(if_range_cases); i++) {
                const IfRangeCase *c = &if_range_cases[i];
                HttpRequest req;
                Validators v = validators(c->etag);

                print_message("if-range: %s\n", c->name);
                char *buf = request_parse("GET", c->fields, &req);
                assert_int_equal(precondition_if_range(&req, &v), c->honour);
                free(buf);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check),
                cmocka_unit_test(test_if_range),
        };
        return cmocka_run_group_tests_name("precondition", tests, NULL, NULL);
}
