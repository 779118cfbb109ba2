/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Byte ranges (RFC 9110 §14). Pure: no I/O, no allocation, no logging. */

#define RANGE_MAX 16 /* more ranges than this: the header is ignored */

typedef struct Range {
        uint64_t first, last; /* inclusive, last < size */
} Range;

/* Parses a Range field value for a representation of `size` bytes.
 *
 * Returns the number of satisfiable ranges (>= 1) written to ranges, in the
 * order given, each clamped to the representation ("bytes=0-999999" on a
 * 10-byte file gives 0-9; "bytes=-5" gives the last 5 bytes); ranges that
 * are not satisfiable are dropped when others are. Or:
 *   0        ignore the field and answer 200 with the whole representation:
 *            unparsable, a unit other than "bytes" (case-insensitive), more
 *            than `max` ranges, or satisfiable ranges that overlap;
 *   -ERANGE  no range is satisfiable: 416, with "Content-Range: bytes * / SIZE"
 *            written without the spaces (spelled out, it would end this comment).
 * Whitespace around commas is allowed (OWS), empty list elements are
 * skipped ("bytes=0-1,,2-3"), numbers too large for uint64_t are unparsable.
 *
 * Details a caller may rely on:
 *   - `max` counts every range-spec, satisfiable or not, so the work done
 *     is bounded by the caller and not the client;
 *   - "bytes=" with no range-spec, and "N-M" with M < N, are unparsable (0);
 *   - the value must start with the unit: no whitespace before it or around
 *     the "=" (" bytes=0-1" and "bytes =0-1" give 0);
 *   - nothing is satisfiable in an empty representation, not even "-N"
 *     (a Content-Range cannot name zero bytes), so size 0 gives -ERANGE
 *     for any parsable value;
 *   - ranges[] is written only when the result is positive. */
int range_parse(Slice value, uint64_t size, Range *ranges, size_t max);
