/* SPDX-License-Identifier: MIT */
/*
 * The request parser on arbitrary bytes, the head scanner beside it, then
 * everything the connection handler does with a parsed head: header
 * lookups, list tokens, the transfer codings, the target split and the
 * path normalisation.
 *
 * Beyond "no crash", it checks the contracts from http.h: the result is
 * bytes consumed or one of the documented errors, every slice points into
 * the input, and a prefix of the input gives -EAGAIN or the same answer as
 * the whole (the bytes may arrive split up anywhere). The scanner gives the
 * same answer fed whole or split up anywhere, and agrees with the
 * parser: the same head length or a parse error, a parse error wherever it
 * found a bad byte, and -EMSGSIZE exactly when the request line is longer
 * than its limit. The transfer codings are checked against a plain split
 * on commas where that is enough to tell the answer.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "macro.h"

/* Prefixes parsed per input besides the ones where the answer changes.
 * Each costs a parse: a few, spread evenly, are enough over millions of
 * inputs, and 128 of them made this the slowest harness by far. */
#define FUZZ_PREFIX_CHECKS 4

static const char *const fuzz_headers[] = {
        "Host", "Connection", "Range", "If-Range", "If-None-Match", "If-Modified-Since",
        "Content-Length", "Transfer-Encoding", "Expect", "X-Absent",
};

static const char *const fuzz_tokens[] = { "close", "keep-alive", "chunked", "100-continue", "" };

static void fuzz_slice_within(Slice s, const uint8_t *data, size_t size) {
        fuzz_check(fuzz_within(s.ptr, s.len, data, size));
}

static void fuzz_check_request(const HttpRequest *req, const uint8_t *data, size_t consumed) {
        fuzz_check(req->n_headers <= HTTP_MAX_HEADERS);
        fuzz_check(req->method_name.len > 0 && req->method_name.len <= HTTP_MAX_METHOD_LEN);
        fuzz_check(req->method >= HTTP_GET && req->method <= HTTP_METHOD_OTHER);
        fuzz_check(req->minor_version >= 0 && req->minor_version <= 9);
        fuzz_check(req->target.len > 0);
        fuzz_slice_within(req->method_name, data, consumed);
        fuzz_slice_within(req->target, data, consumed);
        for (size_t i = 0; i < req->n_headers; i++) {
                fuzz_check(req->headers[i].name.len > 0);
                fuzz_slice_within(req->headers[i].name, data, consumed);
                fuzz_slice_within(req->headers[i].value, data, consumed);
        }
}

static void fuzz_lookups(const HttpRequest *req) {
        for (size_t i = 0; i < sizeof(fuzz_headers) / sizeof(fuzz_headers[0]); i++) {
                size_t count = SIZE_MAX;
                const HttpHeader *h = http_request_header(req, fuzz_headers[i], &count);

                fuzz_check(count <= req->n_headers);
                fuzz_check((h != NULL) == (count > 0));
                fuzz_check(!h || (h >= req->headers && h < req->headers + req->n_headers));
                (void) http_request_header(req, fuzz_headers[i], NULL);
        }
        for (size_t i = 0; i < req->n_headers; i++)
                for (size_t j = 0; j < sizeof(fuzz_tokens) / sizeof(fuzz_tokens[0]); j++)
                        (void) http_list_has_token(req->headers[i].value, fuzz_tokens[j]);
}

/* All Transfer-Encoding lines split on commas: how many elements, and
 * whether the last is "chunked". Quoted commas split wrongly here, but
 * only inside a coding that is not last, which changes neither. */
static void fuzz_coding_elements(const HttpRequest *req, size_t *ret_n, bool *ret_last_chunked) {
        size_t n = 0;
        bool last_chunked = false;

        for (size_t i = 0; i < req->n_headers; i++) {
                Slice list = req->headers[i].value, e;
                if (!http_header_is(&req->headers[i], "Transfer-Encoding"))
                        continue;
                while (http_list_next(&list, &e)) {
                        n++;
                        last_chunked = http_slice_caseeq(e, "chunked");
                }
        }
        *ret_n = n;
        *ret_last_chunked = last_chunked;
}

static void fuzz_codings(const HttpRequest *req) {
        size_t n_te, n;
        bool last_chunked;
        int r = http_request_chunked(req);

        (void) http_request_header(req, "Transfer-Encoding", &n_te);
        fuzz_coding_elements(req, &n, &last_chunked);
        fuzz_check(r == 0 || r == 1 || r == -EBADMSG || r == -EOPNOTSUPP);
        fuzz_check((r == 0) == (n_te == 0));
        /* "chunked" alone, however many empty elements around it. */
        fuzz_check((r == 1) == (n == 1 && last_chunked));
        if (r == -EOPNOTSUPP)
                fuzz_check(n >= 2 && last_chunked);
        if (r < 0)
                fuzz_check(http_status_for_error(r) == (r == -EOPNOTSUPP ? 501 : 400));
}

static void fuzz_target(Slice target) {
        char out[256];
        Slice path, query;

        if (http_target_split(target, &path, &query) < 0)
                return;
        /* The path is in the target, or the literal "/" for "http://host". */
        fuzz_check(fuzz_within(path.ptr, path.len, target.ptr, target.len) ||
                   (path.len == 1 && path.ptr[0] == '/'));
        fuzz_check(path.len > 0);
        fuzz_check(fuzz_within(query.ptr, query.len, target.ptr, target.len));

        ssize_t n = http_path_normalize(path, out, sizeof(out));
        fuzz_check(n == -EBADMSG || n == -ENAMETOOLONG || (n > 0 && (size_t) n < sizeof(out)));
        if (n > 0)
                fuzz_check(out[0] == '/' && strlen(out) == (size_t) n);
}

/* A prefix of the input is a moment on the wire: -EAGAIN, or (once the
 * bad line or the whole head is in) exactly the final answer. */
static void fuzz_prefix(const uint8_t *data, size_t k, ssize_t whole) {
        HttpRequest req;
        ssize_t r = http_parse_request((const char *) data, k, &req);

        if (whole > 0 && k < (size_t) whole)
                fuzz_check(r == -EAGAIN);
        else
                fuzz_check(r == -EAGAIN || r == whole);
}

/* Feeds the scanner all at once, or split up: in pieces of 1 to 8 bytes,
 * the input's own bytes choosing where, so that over many inputs a call
 * boundary falls everywhere. Returns its answer, and in *ret_pos how far
 * it looked. */
static ssize_t fuzz_scan(const uint8_t *data, size_t size, bool split, size_t max_line, size_t *ret_pos) {
        HttpHeadScan s = { .pos = 0 };
        size_t len = 0;
        ssize_t r;

        do {
                len = split && len < size ? MIN(len + 1 + data[len] % 8, size) : size;
                r = http_head_scan(&s, (const char *) data, len, max_line);
                fuzz_check(s.pos <= len);
                fuzz_check(r != -EAGAIN || s.pos == len); /* it looked at every byte given */
        } while (r == -EAGAIN && len < size);
        *ret_pos = s.pos;
        return r;
}

/* The scanner's answer against the parser's, whole is what the parser said. */
static void fuzz_scan_agrees(const uint8_t *data, size_t size, ssize_t whole, size_t *ret_stop) {
        size_t pos, pos_split;
        ssize_t r = fuzz_scan(data, size, false, SIZE_MAX, &pos);

        fuzz_check(r == -EAGAIN || r == -EBADMSG || (r > 0 && (size_t) r <= size));
        fuzz_check(fuzz_scan(data, size, true, SIZE_MAX, &pos_split) == r);
        fuzz_check(pos_split == pos);

        if (whole > 0)
                fuzz_check(r == whole);
        if (r > 0 || r == -EBADMSG)
                fuzz_check(whole == r || (whole < 0 && whole != -EAGAIN));
        if (r == -EAGAIN)
                fuzz_check(whole < 0);
        *ret_stop = pos;
}

/* With a limit on the request line: -EMSGSIZE exactly when the parsed
 * line is longer, otherwise the same answer. */
static void fuzz_scan_line_limit(const uint8_t *data, size_t size, const HttpRequest *req, ssize_t whole) {
        size_t pos, line = (size_t) (req->target.ptr + req->target.len + 9 - req->method_name.ptr);
        size_t limit = size > 1 ? data[1] % 64 : 0;

        ssize_t r = fuzz_scan(data, size, false, limit, &pos);
        fuzz_check(r == (line > limit ? -EMSGSIZE : whole));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HttpRequest req;
        ssize_t r = http_parse_request((const char *) data, size, &req);
        size_t stop;

        fuzz_check(r == -EAGAIN || r == -EBADMSG || r == -E2BIG || r == -EPROTONOSUPPORT ||
                   (r > 0 && (size_t) r <= size));
        if (r < 0 && r != -EAGAIN) {
                int status = http_status_for_error((int) r);
                fuzz_check(status == 400 || status == 431 || status == 505);
        }
        fuzz_scan_agrees(data, size, r, &stop);

        /* Where the connection handler parses a head that is still
         * arriving: where the scanner stopped, just before, and evenly
         * spread points in between. */
        size_t step = size / FUZZ_PREFIX_CHECKS + 1;
        for (size_t k = 0; k < size; k += step)
                fuzz_prefix(data, k, r);
        if (stop > 0)
                fuzz_prefix(data, stop - 1, r);
        fuzz_prefix(data, stop, r);
        if (r <= 0)
                return 0;

        fuzz_check_request(&req, data, (size_t) r);
        fuzz_scan_line_limit(data, size, &req, r);
        fuzz_lookups(&req);
        fuzz_codings(&req);
        fuzz_target(req.target);
        return 0;
}
