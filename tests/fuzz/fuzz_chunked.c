/* SPDX-License-Identifier: MIT */
/*
 * The chunked-body skipper. The first byte picks a limit and a split
 * point; the rest is the body. Checked, from http.h: the answer does not
 * depend on how the bytes are split across calls (a peer decides that, not
 * the body); nothing past the end of a complete body is consumed; the body
 * counted never exceeds the limit; and a complete body ends in CRLF.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

typedef struct Outcome {
        ssize_t result; /* bytes consumed when done or still open, else the error */
        HttpChunked state;
} Outcome;

static Outcome skip_in_pieces(const char *body, size_t len, size_t piece, uint64_t max) {
        Outcome o = { 0 };
        size_t pos = 0;

        while (pos < len && o.state.state != HTTP_CHUNKED_DONE) {
                size_t n = piece == 0 || piece > len - pos ? len - pos : piece;
                ssize_t r = http_chunked_skip(&o.state, body + pos, n, max);
                if (r < 0) {
                        o.result = r;
                        return o;
                }
                fuzz_check((size_t) r <= n);
                fuzz_check((size_t) r == n || o.state.state == HTTP_CHUNKED_DONE);
                pos += (size_t) r;
        }
        o.result = (ssize_t) pos;
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        uint64_t max = data[0] & 0x80 ? UINT64_MAX : (uint64_t) (data[0] & 0x7f) * 16;
        size_t piece = (data[0] & 0x0f) + 1;
        const char *body = (const char *) data + 1;
        size_t len = size - 1;

        Outcome whole = skip_in_pieces(body, len, 0, max);
        Outcome split = skip_in_pieces(body, len, piece, max);
        Outcome bytes = skip_in_pieces(body, len, 1, max);

        fuzz_check(whole.result == split.result && whole.result == bytes.result);
        fuzz_check(whole.state.state == split.state.state && whole.state.state == bytes.state.state);
        fuzz_check(whole.result == -EBADMSG || whole.result == -E2BIG || whole.result >= 0);
        if (whole.result >= 0)
                fuzz_check(whole.state.total <= max);
        if (whole.state.state == HTTP_CHUNKED_DONE) {
                /* every byte of a complete body counted exactly once */
                fuzz_check(whole.state.total == (uint64_t) whole.result);
                fuzz_check(whole.result >= 5); /* "0\r\n\r\n" at least */
                fuzz_check(memcmp(body + whole.result - 2, "\r\n", 2) == 0);
        }
        return 0;
}
