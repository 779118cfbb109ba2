/* SPDX-License-Identifier: MIT */
/*
 * The Range parser. The input is the representation's size (the first 8
 * bytes, little-endian) followed by the field value.
 *
 * Each call gets a ranges array of exactly `max` elements on the heap, so
 * the address sanitizer catches a write past max. Checked, from range.h:
 * the result is -ERANGE, 0 or a count of at most max; every range has
 * first <= last < size; no two ranges overlap; nothing is satisfiable in
 * an empty representation; and a smaller max changes the answer only to 0.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "range.h"

static int fuzz_range_parse(Slice value, uint64_t size, size_t max, Range **ret) {
        Range *ranges = malloc(max * sizeof(Range));
        int r;

        fuzz_check(ranges);
        r = range_parse(value, size, ranges, max);
        fuzz_check(r == -ERANGE || (r >= 0 && (size_t) r <= max));
        for (int i = 0; i < r; i++) {
                fuzz_check(ranges[i].first <= ranges[i].last);
                fuzz_check(ranges[i].last < size);
                for (int j = 0; j < i; j++)
                        fuzz_check(ranges[i].last < ranges[j].first || ranges[j].last < ranges[i].first);
        }
        *ret = ranges;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t maxes[] = { 1, 2, 3 };
        uint64_t rep_size = 0;
        Range *all;
        int r;

        if (size < 8)
                return 0;
        for (size_t i = 0; i < 8; i++)
                rep_size |= (uint64_t) data[i] << (8 * i);
        Slice value = { (const char *) data + 8, size - 8 };

        r = fuzz_range_parse(value, rep_size, RANGE_MAX, &all);
        /* Nothing is satisfiable in an empty representation. */
        if (rep_size == 0)
                fuzz_check(r <= 0);

        /* A smaller max gives the same answer, or 0 when the field holds
         * more than max ranges (satisfiable or not). */
        for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
                Range *some;
                int k = fuzz_range_parse(value, rep_size, maxes[i], &some);

                if (r == 0 || (r > 0 && (size_t) r > maxes[i]))
                        fuzz_check(k == 0);
                else if (r == -ERANGE)
                        fuzz_check(k == -ERANGE || k == 0);
                else if (k != 0)
                        fuzz_check(k == r && memcmp(some, all, (size_t) r * sizeof(Range)) == 0);
                free(some);
        }
        free(all);
        return 0;
}
