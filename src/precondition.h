/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "http.h"

/* Conditional requests (RFC 9110 §13). Pure: no I/O, no allocation. */

typedef struct Validators {
        Slice etag;           /* the strong entity tag, quotes included: "\"5f-1a\"" */
        time_t last_modified; /* seconds */
} Validators;

/* Evaluates If-Match, If-Unmodified-Since, If-None-Match and
 * If-Modified-Since in the order of RFC 9110 §13.2.2 for a GET or HEAD (or,
 * with is_get_or_head false, any other method) of an existing
 * representation. `now` is the server's current time (an If-Modified-Since
 * date in the future is ignored).
 *
 * Returns 0 to go on (and then consider If-Range), 304 (Not Modified), or
 * 412 (Precondition Failed).
 *   If-Match: strong comparison; "*" matches; a list; fails → 412.
 *   If-Unmodified-Since: only without If-Match; an invalid date is ignored;
 *     last_modified later than the date → 412.
 *   If-None-Match: weak comparison ("W/" prefixes ignored); "*" matches; a
 *     list; matches → 304 for GET/HEAD, 412 otherwise.
 *   If-Modified-Since: only for GET/HEAD and without If-None-Match; invalid
 *     dates ignored; last_modified not later than the date → 304.
 * A malformed entity-tag list is treated as matching nothing: If-Match then
 * fails, and If-None-Match holds but, being present, still rules out
 * If-Modified-Since. A list field sent more than once counts as one list
 * (so "*" must stand alone); a date field sent more than once is a list of
 * dates, which is ignored. An empty or malformed v->etag matches no tag,
 * though "*" still matches. */
int precondition_check(const HttpRequest *req, const Validators *v, bool is_get_or_head, time_t now);

/* True when a Range should be honoured: there is no If-Range, or If-Range
 * holds a strong entity tag equal to v->etag (a weak tag never matches), or
 * an HTTP-date exactly equal to v->last_modified. Anything else, including
 * a value that is neither, an empty one, or If-Range sent twice, gives
 * false: then the Range field must be ignored and the whole representation
 * sent. Whether there is a Range field at all is the caller's concern. */
bool precondition_if_range(const HttpRequest *req, const Validators *v);
