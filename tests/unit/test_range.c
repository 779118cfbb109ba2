/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "range.h"

#define KB10 UINT64_C(10000)

/* RANGE_MAX ranges, then one more. */
#define SIXTEEN_RANGES \
        "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30"
#define SIXTEEN_RESULTS                                                                                     \
        { { 0, 0 }, { 2, 2 }, { 4, 4 }, { 6, 6 }, { 8, 8 }, { 10, 10 }, { 12, 12 }, { 14, 14 }, { 16, 16 }, \
          { 18, 18 }, { 20, 20 }, { 22, 22 }, { 24, 24 }, { 26, 26 }, { 28, 28 }, { 30, 30 } }

typedef struct RangeCase {
        const char *name;
        const char *value;
        uint64_t size;
        size_t max; /* 0: RANGE_MAX */
        int result;
        Range ranges[RANGE_MAX];
} RangeCase;

static const RangeCase cases[] = {
        /* single ranges */
        { "first byte", "bytes=0-0", KB10, 0, 1, { { 0, 0 } } },
        { "first 500 bytes", "bytes=0-499", KB10, 0, 1, { { 0, 499 } } },
        { "from 500 on", "bytes=500-", KB10, 0, 1, { { 500, 9999 } } },
        { "last 500 bytes", "bytes=-500", KB10, 0, 1, { { 9500, 9999 } } },
        { "open-ended near the end", "bytes=9500-", KB10, 0, 1, { { 9500, 9999 } } },
        { "last byte by position", "bytes=9999-", KB10, 0, 1, { { 9999, 9999 } } },
        { "last byte by suffix", "bytes=-1", KB10, 0, 1, { { 9999, 9999 } } },
        { "whole of a 1-byte file", "bytes=0-", 1, 0, 1, { { 0, 0 } } },
        { "leading zeros", "bytes=007-009", KB10, 0, 1, { { 7, 9 } } },
        { "last-pos clamped", "bytes=0-999999", 10, 0, 1, { { 0, 9 } } },
        { "suffix longer than the file", "bytes=-500", 100, 0, 1, { { 0, 99 } } },
        { "uint64 max last-pos clamped", "bytes=0-18446744073709551615", 10, 0, 1, { { 0, 9 } } },
        { "uint64 max suffix", "bytes=-18446744073709551615", 10, 0, 1, { { 0, 9 } } },
        { "last byte of the largest file", "bytes=-1", UINT64_MAX, 0, 1, { { UINT64_MAX - 1, UINT64_MAX - 1 } } },

        /* unsatisfiable */
        { "zero suffix", "bytes=-0", KB10, 0, -ERANGE, { { 0 } } },
        { "first at size", "bytes=10000-", KB10, 0, -ERANGE, { { 0 } } },
        { "first beyond size, closed", "bytes=10000-10005", KB10, 0, -ERANGE, { { 0 } } },
        { "uint64 max first", "bytes=18446744073709551615-", 10, 0, -ERANGE, { { 0 } } },
        { "none of several", "bytes=10000-,-0,20000-30000", KB10, 0, -ERANGE, { { 0 } } },
        { "empty file, int-range", "bytes=0-0", 0, 0, -ERANGE, { { 0 } } },
        { "empty file, open int-range", "bytes=0-", 0, 0, -ERANGE, { { 0 } } },
        { "empty file, suffix", "bytes=-5", 0, 0, -ERANGE, { { 0 } } },
        { "empty file, zero suffix", "bytes=-0", 0, 0, -ERANGE, { { 0 } } },

        /* several ranges */
        { "unsatisfiable first dropped", "bytes=10000-,0-1", KB10, 0, 1, { { 0, 1 } } },
        { "unsatisfiable ones dropped in between", "bytes=0-1,20000-20001,-0,5-6", KB10, 0, 2, { { 0, 1 }, { 5, 6 } } },
        { "two ranges", "bytes=0-1,3-4", KB10, 0, 2, { { 0, 1 }, { 3, 4 } } },
        { "order kept", "bytes=5-6,0-1", KB10, 0, 2, { { 5, 6 }, { 0, 1 } } },
        { "adjacent ranges do not overlap", "bytes=0-4,5-9", KB10, 0, 2, { { 0, 4 }, { 5, 9 } } },
        { "int-range and suffix", "bytes=0-0,-1", KB10, 0, 2, { { 0, 0 }, { 9999, 9999 } } },
        { "overlap checked among satisfiable only", "bytes=0-5,20000-,6-7", KB10, 0, 2, { { 0, 5 }, { 6, 7 } } },
        { "RANGE_MAX ranges", SIXTEEN_RANGES, KB10, 0, RANGE_MAX, SIXTEEN_RESULTS },

        /* whitespace and empty elements */
        { "OWS around a comma", "bytes=0-1 , 3-4", KB10, 0, 2, { { 0, 1 }, { 3, 4 } } },
        { "OWS at the set's edges", "bytes= 0-1\t,\t3-4 ", KB10, 0, 2, { { 0, 1 }, { 3, 4 } } },
        { "empty elements skipped", "bytes=,0-1,,2-3,", KB10, 0, 2, { { 0, 1 }, { 2, 3 } } },
        { "unit is case-insensitive", "Bytes=0-1", KB10, 0, 1, { { 0, 1 } } },
        { "unit in capitals", "BYTES=0-1", KB10, 0, 1, { { 0, 1 } } },

        /* ignored: answer 200 */
        { "overlapping", "bytes=0-5,3-8", KB10, 0, 0, { { 0 } } },
        { "same range twice", "bytes=0-0,0-0", KB10, 0, 0, { { 0 } } },
        { "one inside another", "bytes=0-99,10-20", KB10, 0, 0, { { 0 } } },
        { "overlapping once clamped", "bytes=-500,9000-", KB10, 0, 0, { { 0 } } },
        { "more than RANGE_MAX", SIXTEEN_RANGES ",32-32", KB10, 0, 0, { { 0 } } },
        { "more than a small max", "bytes=0-1,3-4,6-7", KB10, 2, 0, { { 0 } } },
        { "unsatisfiable ones count toward max", "bytes=0-1,20000-,30000-", KB10, 2, 0, { { 0 } } },
        { "other unit", "items=0-1", KB10, 0, 0, { { 0 } } },
        { "unit with a suffix", "bytesx=0-1", KB10, 0, 0, { { 0 } } },
        { "unit cut short", "byte=0-1", KB10, 0, 0, { { 0 } } },
        { "no equals sign", "bytes 0-1", KB10, 0, 0, { { 0 } } },
        { "leading space", " bytes=0-1", KB10, 0, 0, { { 0 } } },
        { "space before equals", "bytes =0-1", KB10, 0, 0, { { 0 } } },
        { "last before first", "bytes=5-1", KB10, 0, 0, { { 0 } } },
        { "last before first beside a good one", "bytes=0-1,5-1", KB10, 0, 0, { { 0 } } },
        { "invalid even when unsatisfiable", "bytes=20000-10000", KB10, 0, 0, { { 0 } } },
        { "empty set", "bytes=", KB10, 0, 0, { { 0 } } },
        { "only commas and spaces", "bytes=, ,", KB10, 0, 0, { { 0 } } },
        { "letters", "bytes=a-b", KB10, 0, 0, { { 0 } } },
        { "no dash", "bytes=5", KB10, 0, 0, { { 0 } } },
        { "bare dash", "bytes=-", KB10, 0, 0, { { 0 } } },
        { "two dashes", "bytes=1-2-3", KB10, 0, 0, { { 0 } } },
        { "negative suffix", "bytes=--1", KB10, 0, 0, { { 0 } } },
        { "plus sign", "bytes=+1-2", KB10, 0, 0, { { 0 } } },
        { "space inside a spec", "bytes=0 -1", KB10, 0, 0, { { 0 } } },
        { "semicolon separator", "bytes=0-1;3-4", KB10, 0, 0, { { 0 } } },
        { "non-ASCII after a number", "bytes=0-1\xc3\xa9", KB10, 0, 0, { { 0 } } },
        { "last-pos overflows", "bytes=0-99999999999999999999", KB10, 0, 0, { { 0 } } },
        { "last-pos one past uint64", "bytes=0-18446744073709551616", 10, 0, 0, { { 0 } } },
        { "first-pos overflows", "bytes=18446744073709551616-", 10, 0, 0, { { 0 } } },
        { "suffix overflows", "bytes=-18446744073709551616", 10, 0, 0, { { 0 } } },
        { "empty file, unparsable", "bytes=a", 0, 0, 0, { { 0 } } },
        { "empty file, other unit", "items=0-0", 0, 0, 0, { { 0 } } },
};

static const Range sentinel = { 0xdead, 0xbeef };

/* Copies value into a buffer of exactly its length, so the address
 * sanitizer catches a read past the end of the field. */
static int parse_exact(const char *value, size_t len, uint64_t size, Range *ranges, size_t max) {
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, value, len);
        int r = range_parse((Slice) { buf, len }, size, ranges, max);
        free(buf);
        return r;
}

static void test_parse(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const RangeCase *c = &cases[i];
                size_t max = c->max ? c->max : RANGE_MAX;
                Range out[RANGE_MAX + 1];

                print_message("range: %s: \"%s\"\n", c->name, c->value);
                for (size_t j = 0; j < ELEMENTSOF(out); j++)
                        out[j] = sentinel;
                assert_int_equal(parse_exact(c->value, strlen(c->value), c->size, out, max), c->result);

                /* Written only when positive, and never past the count. */
                size_t n = c->result > 0 ? (size_t) c->result : 0;
                for (size_t j = 0; j < ELEMENTSOF(out); j++) {
                        const Range *want = j < n ? &c->ranges[j] : &sentinel;
                        assert_int_equal(out[j].first, want->first);
                        assert_int_equal(out[j].last, want->last);
                }
        }
}

/* Every prefix of every case, cut short in a buffer of exactly that length:
 * an answer from the contract's range and no read past the end. */
static void test_parse_prefixes(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const RangeCase *c = &cases[i];
                for (size_t n = 0; n <= strlen(c->value); n++) {
                        Range out[RANGE_MAX];
                        int r = parse_exact(c->value, n, c->size, out, RANGE_MAX);
                        assert_true(r == -ERANGE || (r >= 0 && r <= RANGE_MAX));
                }
        }
}

/* With room for nothing, any range is too many, and ranges is not touched. */
static void test_parse_max_zero(void **state) {
        (void) state;
        assert_int_equal(parse_exact("bytes=0-1", 9, 10, NULL, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_prefixes),
                cmocka_unit_test(test_parse_max_zero),
        };
        return cmocka_run_group_tests_name("range", tests, NULL, NULL);
}
