/* SPDX-License-Identifier: MIT */
/*
 * The request parser on arbitrary bytes, then everything the connection
 * handler does with a parsed head: header lookups, list tokens, the target
 * split and the path normalisation.
 *
 * Beyond "no crash", it checks the parser's contract from http.h: the
 * result is bytes consumed or one of the documented errors, every slice
 * points into the input, and a prefix of the input gives -EAGAIN or the
 * same answer as the whole (the bytes may arrive split up anywhere).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

/* Prefix lengths tried per input: enough to cover small inputs byte by
 * byte, few enough that large ones do not slow the run down. */
#define FUZZ_PREFIX_CHECKS 128

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HttpRequest req;
        ssize_t r = http_parse_request((const char *) data, size, &req);

        fuzz_check(r == -EAGAIN || r == -EBADMSG || r == -E2BIG || r == -EPROTONOSUPPORT ||
                   (r > 0 && (size_t) r <= size));
        if (r < 0 && r != -EAGAIN) {
                int status = http_status_for_error((int) r);
                fuzz_check(status == 400 || status == 431 || status == 505);
        }

        size_t step = size / FUZZ_PREFIX_CHECKS + 1;
        for (size_t k = 0; k < size; k += step)
                fuzz_prefix(data, k, r);
        if (r > 0) {
                fuzz_prefix(data, (size_t) r - 1, r);
                fuzz_prefix(data, (size_t) r, r);
        }
        if (r <= 0)
                return 0;

        fuzz_check_request(&req, data, (size_t) r);
        fuzz_lookups(&req);
        fuzz_target(req.target);
        return 0;
}
