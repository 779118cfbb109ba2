/* SPDX-License-Identifier: MIT */
#include "range.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "macro.h"

/* The value is read up to three times rather than collected into a scratch
 * array: a first pass checks the syntax, the limit and that something is
 * satisfiable; a second looks for overlaps; only a third writes to ranges.
 * So the caller's array is untouched whenever the answer is not a set of
 * ranges, and nothing here needs more memory than the caller gave. The
 * passes are bounded by max range-specs each, so the whole costs at most
 * max² comparisons. */

/* One range-spec as written (RFC 9110 §14.1.1), before the representation's
 * size is applied. */
typedef struct RangeSpec {
        bool suffix;   /* "-N": the last N bytes, N in last */
        bool has_last; /* "N-M" rather than "N-" */
        uint64_t first, last;
} RangeSpec;

/* Where the next list element starts; the value after "bytes=". */
typedef struct RangeCursor {
        const char *p, *end;
} RangeCursor;

static bool range_is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool range_is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* 1*DIGIT filling all of [p, end). Too large for uint64_t is an error, not
 * a clamp: a client that means "to the end" can say so with "N-". */
static int range_parse_number(const char *p, const char *end, uint64_t *ret) {
        uint64_t v = 0;

        if (p == end)
                return -EINVAL;
        for (; p < end; p++) {
                if (!range_is_digit(*p))
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* range-spec = int-range / suffix-range, filling the whole element. An
 * int-range whose last-pos is below its first-pos is invalid (§14.1.1). */
static int range_parse_spec(const char *p, const char *end, RangeSpec *ret) {
        const char *dash = p;
        RangeSpec s = { .suffix = false };
        int r;

        while (dash < end && *dash != '-')
                dash++;
        if (dash == end)
                return -EINVAL;

        if (dash == p) {
                s.suffix = true;
                r = range_parse_number(dash + 1, end, &s.last);
        } else {
                s.has_last = dash + 1 < end;
                r = range_parse_number(p, dash, &s.first);
                if (r >= 0 && s.has_last)
                        r = range_parse_number(dash + 1, end, &s.last);
                if (r >= 0 && s.has_last && s.last < s.first)
                        r = -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* Takes the next non-empty element of the range-set, OWS around it removed
 * (the recipient form of #list, RFC 9110 §5.6.1). Returns 1 and the spec,
 * 0 at the end, or -EINVAL. */
static int range_next_spec(RangeCursor *c, RangeSpec *ret) {
        for (;;) {
                const char *start = c->p, *stop = c->p;

                if (start == c->end)
                        return 0;
                while (stop < c->end && *stop != ',')
                        stop++;
                c->p = stop < c->end ? stop + 1 : stop;

                const char *e = stop;
                while (start < e && range_is_ows(*start))
                        start++;
                while (e > start && range_is_ows(e[-1]))
                        e--;
                if (start == e)
                        continue;

                int r = range_parse_spec(start, e, ret);
                return r < 0 ? r : 1;
        }
}

/* Applies the representation's size. False when the spec is not
 * satisfiable: a first-pos at or past the end, a zero suffix-length, or
 * any range of an empty representation, which no Content-Range can name. */
static bool range_resolve(const RangeSpec *s, uint64_t size, Range *ret) {
        if (size == 0)
                return false;
        if (s->suffix) {
                if (s->last == 0)
                        return false;
                *ret = (Range) { .first = s->last >= size ? 0 : size - s->last, .last = size - 1 };
                return true;
        }
        if (s->first >= size)
                return false;
        *ret = (Range) { .first = s->first, .last = s->has_last && s->last < size ? s->last : size - 1 };
        return true;
}

/* The next satisfiable range, for a cursor over an already checked value. */
static bool range_next_satisfiable(RangeCursor *c, uint64_t size, Range *ret) {
        RangeSpec s;

        while (range_next_spec(c, &s) > 0)
                if (range_resolve(&s, size, ret))
                        return true;
        return false;
}

/* Pass one. Returns how many ranges are satisfiable, or -EINVAL when the
 * set is malformed, empty, or longer than max. */
static int range_check(RangeCursor c, uint64_t size, size_t max) {
        size_t n_specs = 0, n_satisfiable = 0;
        RangeSpec s;
        Range unused;
        int r;

        while ((r = range_next_spec(&c, &s)) > 0) {
                if (++n_specs > max)
                        return -EINVAL;
                if (range_resolve(&s, size, &unused))
                        n_satisfiable++;
        }
        if (r < 0)
                return r;
        if (n_specs == 0)
                return -EINVAL; /* range-set = 1#range-spec */
        return (int) n_satisfiable;
}

/* Pass two. Adjacent ranges ("0-4,5-9") do not overlap. */
static bool range_any_overlap(RangeCursor c, uint64_t size) {
        Range a, b;

        while (range_next_satisfiable(&c, size, &a)) {
                RangeCursor rest = c;
                while (range_next_satisfiable(&rest, size, &b))
                        if (a.first <= b.last && b.first <= a.last)
                                return true;
        }
        return false;
}

/* The range unit is a token, compared case-insensitively (§14.1). No
 * whitespace is allowed around it or the "=": the field parser already took
 * off the OWS that may surround a whole field value. */
static bool range_skip_unit(Slice value, RangeCursor *ret) {
        static const char unit[] = "bytes=";
        const size_t n = sizeof(unit) - 1;

        if (value.len < n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = value.ptr[i];
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                if (c != unit[i])
                        return false;
        }
        *ret = (RangeCursor) { value.ptr + n, value.ptr + value.len };
        return true;
}

int range_parse(Slice value, uint64_t size, Range *ranges, size_t max) {
        RangeCursor c;

        /* The count must fit the return value. */
        max = MIN(max, (size_t) INT_MAX);
        if (!range_skip_unit(value, &c))
                return 0;

        int n = range_check(c, size, max);
        if (n < 0)
                return 0;
        if (n == 0)
                return -ERANGE;
        if (range_any_overlap(c, size))
                return 0;

        for (int i = 0; i < n; i++)
                (void) range_next_satisfiable(&c, size, &ranges[i]);
        return n;
}
