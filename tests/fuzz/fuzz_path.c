/* SPDX-License-Identifier: MIT */
/*
 * The path normaliser on arbitrary bytes, with output buffers of several
 * sizes. Each buffer is allocated to its exact size, so the address
 * sanitizer catches a write past out_size.
 *
 * Checked: the result is absolute, NUL-terminated at the returned length,
 * has no empty, "." or ".." segment, and is what a plain forward walk of
 * RFC 3986 §5.2.4 gives (decoded "%2F" separating segments, empty segments
 * dropped, a trailing slash kept). A buffer one byte too small gives
 * -ENAMETOOLONG; any larger one gives the same result.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define FUZZ_PATH_MAX 8192

static int reference_hex(char c) {
        static const char digits[] = "0123456789abcdef";
        const char *p = c == '\0' ? NULL : strchr(digits, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        return p ? (int) (p - digits) : -1;
}

/* An independent forward walk: decode, split on '/', keep a stack of
 * names. Returns the length written to out, or -EBADMSG. out holds
 * FUZZ_PATH_MAX bytes, and the result is never longer than the input. */
static ssize_t reference_normalize(const char *in, size_t n, char *out) {
        /* Static: on the stack, the sanitizer would poison and unpoison
         * 72 KiB of frame for every input. */
        static char decoded[FUZZ_PATH_MAX];
        static size_t starts[FUZZ_PATH_MAX];
        size_t m = 0, len = 0, depth = 0;
        bool trailing = false;

        if (n == 0 || in[0] != '/' || n > FUZZ_PATH_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if (c == '%') {
                        int hi = n - i < 3 ? -1 : reference_hex(in[i + 1]);
                        int lo = n - i < 3 ? -1 : reference_hex(in[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EBADMSG;
                        c = (char) (hi << 4 | lo);
                        i += 2;
                }
                if (c == '\0')
                        return -EBADMSG;
                decoded[m++] = c;
        }

        for (size_t i = 0; i < m;) {
                size_t s = i + 1, e = s;
                while (e < m && decoded[e] != '/')
                        e++;
                size_t seg = e - s;
                trailing = true;
                if (seg == 2 && decoded[s] == '.' && decoded[s + 1] == '.') {
                        if (depth == 0)
                                return -EBADMSG;
                        len = starts[--depth];
                } else if (seg > 0 && !(seg == 1 && decoded[s] == '.')) {
                        starts[depth++] = len;
                        out[len++] = '/';
                        memcpy(out + len, decoded + s, seg);
                        len += seg;
                        trailing = false;
                }
                i = e;
        }
        if (len == 0 || trailing)
                out[len++] = '/';
        out[len] = '\0';
        return (ssize_t) len;
}

static void fuzz_check_result(const char *out, ssize_t n) {
        fuzz_check(n > 0);
        fuzz_check(strlen(out) == (size_t) n);
        fuzz_check(out[0] == '/');
        fuzz_check(!strstr(out, "//"));
        fuzz_check(!strstr(out, "/./") && !strstr(out, "/../"));
        fuzz_check(!(n >= 2 && strcmp(out + n - 2, "/.") == 0));
        fuzz_check(!(n >= 3 && strcmp(out + n - 3, "/..") == 0));
}

/* Normalises into a heap buffer of exactly out_size bytes. */
static ssize_t fuzz_normalize(Slice path, size_t out_size, char *copy) {
        char *out = malloc(out_size);
        ssize_t r;

        fuzz_check(out);
        r = http_path_normalize(path, out, out_size);
        if (r >= 0) {
                fuzz_check((size_t) r < out_size);
                memcpy(copy, out, (size_t) r + 1);
        }
        free(out);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char expected[FUZZ_PATH_MAX + 2], got[FUZZ_PATH_MAX + 2];
        /* Beside a large buffer, the exact size and one byte short, no
         * buffer at all. Other sizes tell nothing more: the length is known
         * before a byte is written, and trying seven of them made this
         * harness twice as slow. */
        static const size_t sizes[] = { 0 };
        Slice path = { (const char *) data, size };
        ssize_t want, r;

        if (size > FUZZ_PATH_MAX)
                return 0;
        want = reference_normalize(path.ptr, size, expected);

        r = fuzz_normalize(path, FUZZ_PATH_MAX + 2, got);
        fuzz_check(r == want);
        if (r < 0)
                return 0;
        fuzz_check_result(got, r);
        fuzz_check(memcmp(got, expected, (size_t) r + 1) == 0);

        /* Exactly big enough, one byte short, and nothing. */
        fuzz_check(fuzz_normalize(path, (size_t) r + 1, got) == r);
        fuzz_check(memcmp(got, expected, (size_t) r + 1) == 0);
        fuzz_check(fuzz_normalize(path, (size_t) r, got) == -ENAMETOOLONG);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                ssize_t k = fuzz_normalize(path, sizes[i], got);
                fuzz_check(k == ((size_t) r < sizes[i] ? r : -ENAMETOOLONG));
        }

        /* Without '%' left to decode, the result is a fixed point. */
        if (!strchr(expected, '%')) {
                fuzz_check(fuzz_normalize((Slice) { expected, (size_t) r }, (size_t) r + 1, got) == r);
                fuzz_check(strcmp(got, expected) == 0);
        }
        return 0;
}
