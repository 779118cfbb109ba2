/* SPDX-License-Identifier: MIT */
#include "precondition.h"

#include <errno.h>
#include <string.h>

/* An entity-tag (RFC 9110 §8.8.3) taken apart. */
typedef struct EntityTag {
        bool weak;
        Slice opaque; /* with its quotes */
} EntityTag;

/* What one precondition field says about the request. Kept apart from
 * "absent" because the order of evaluation (§13.2.2) depends on which
 * fields are present, not only on what they hold. */
typedef enum Condition {
        CONDITION_ABSENT, /* no field, or one the RFC tells us to ignore */
        CONDITION_TRUE,
        CONDITION_FALSE,
} Condition;

static bool char_is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text: any visible byte but DQUOTE. */
static bool char_is_etagc(char c) {
        unsigned char u = (unsigned char) c;
        return u == 0x21 || (u >= 0x23 && u != 0x7f);
}

/* Field names are case-insensitive. Spelled out rather than taken from
 * strcasecmp(), whose answer may depend on the locale. */
static bool name_is(Slice name, const char *s) {
        size_t n = strlen(s);

        if (name.len != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char a = name.ptr[i], b = s[i];
                if (a >= 'A' && a <= 'Z')
                        a = (char) (a - 'A' + 'a');
                if (b >= 'A' && b <= 'Z')
                        b = (char) (b - 'A' + 'a');
                if (a != b)
                        return false;
        }
        return true;
}

/* entity-tag = [ weak ] opaque-tag, weak = %s"W/" (case-sensitive).
 * Parses one at *p and moves *p past it. */
static int etag_parse_at(const char **p, const char *end, EntityTag *ret) {
        const char *s = *p, *q;
        bool weak = false;

        if (end - s >= 2 && s[0] == 'W' && s[1] == '/') {
                weak = true;
                s += 2;
        }
        if (s == end || *s != '"')
                return -EINVAL;
        for (q = s + 1; q < end && char_is_etagc(*q); q++)
                ;
        if (q == end || *q != '"')
                return -EINVAL;
        q++;

        *ret = (EntityTag) { .weak = weak, .opaque = { s, (size_t) (q - s) } };
        *p = q;
        return 0;
}

/* An entity-tag filling all of value. */
static int etag_parse(Slice value, EntityTag *ret) {
        const char *p = value.ptr, *end = value.ptr + value.len;
        EntityTag t;

        if (etag_parse_at(&p, end, &t) < 0 || p != end)
                return -EINVAL;
        *ret = t;
        return 0;
}

/* Strong comparison (§8.8.3.2) wants both tags strong; weak comparison
 * looks at the opaque-tags alone. */
static bool etag_equal(const EntityTag *a, const EntityTag *b, bool weak) {
        if (!weak && (a->weak || b->weak))
                return false;
        return a->opaque.len == b->opaque.len && memcmp(a->opaque.ptr, b->opaque.ptr, a->opaque.len) == 0;
}

/* #entity-tag in the recipient form of §5.6.1: empty elements and OWS
 * around commas are allowed. Every element is checked even after a match,
 * since a malformed list matches nothing. A comma cannot simply split the
 * list: etagc includes it. Returns 1 on a match, 0 on none, or -EINVAL. */
static int etag_list_match(Slice list, const EntityTag *current, bool weak) {
        const char *p = list.ptr, *end = list.ptr + list.len;
        bool match = false;

        for (;;) {
                EntityTag t;

                while (p < end && (char_is_ows(*p) || *p == ','))
                        p++;
                if (p == end)
                        return match;
                if (etag_parse_at(&p, end, &t) < 0)
                        return -EINVAL;
                if (current && etag_equal(&t, current, weak))
                        match = true;
                while (p < end && char_is_ows(*p))
                        p++;
                if (p < end && *p != ',')
                        return -EINVAL;
        }
}

/* Evaluates If-Match or If-None-Match, each "*" / #entity-tag. A field may
 * be sent more than once, which means the same as one field holding the
 * lists joined by commas (RFC 9110 §5.3); so "*" must then stand alone.
 * Returns 1 when some tag matches (or "*" does: the representation exists),
 * 0 when none does or the value is malformed, -ENOENT without the field. */
static int etag_field_match(const HttpRequest *req, const char *name, const Validators *v, bool weak) {
        size_t count;
        EntityTag current;
        bool match = false;

        if (!http_request_header(req, name, &count))
                return -ENOENT;
        bool have_current = etag_parse(v->etag, &current) >= 0;
        for (size_t i = 0; i < req->n_headers; i++) {
                const HttpHeader *h = &req->headers[i];
                if (!name_is(h->name, name))
                        continue;
                if (h->value.len == 1 && h->value.ptr[0] == '*') {
                        if (count > 1)
                                return 0;
                        match = true;
                        continue;
                }
                int r = etag_list_match(h->value, have_current ? &current : NULL, weak);
                if (r < 0)
                        return 0;
                match = match || r > 0;
        }
        return match;
}

/* The date of a singleton date field. A field sent twice reads as a list
 * of dates, which §13.1.3 and §13.1.4 say to ignore, as an invalid date.
 * Returns 0, -ENOENT without the field, or -EINVAL. */
static int date_field(const HttpRequest *req, const char *name, time_t *ret) {
        size_t count;
        const HttpHeader *h = http_request_header(req, name, &count);

        if (!h)
                return -ENOENT;
        if (count > 1)
                return -EINVAL;
        return http_parse_date(h->value, ret);
}

/* §13.1.1: strong comparison. */
static Condition if_match(const HttpRequest *req, const Validators *v) {
        int r = etag_field_match(req, "If-Match", v, false);
        if (r == -ENOENT)
                return CONDITION_ABSENT;
        return r > 0 ? CONDITION_TRUE : CONDITION_FALSE;
}

/* §13.1.4: false when the representation changed after the date. */
static Condition if_unmodified_since(const HttpRequest *req, const Validators *v) {
        time_t t;
        if (date_field(req, "If-Unmodified-Since", &t) < 0)
                return CONDITION_ABSENT;
        return v->last_modified > t ? CONDITION_FALSE : CONDITION_TRUE;
}

/* §13.1.2: weak comparison; false when a tag matches. A malformed value
 * matches nothing, so it is true, and being present it still keeps
 * If-Modified-Since from being looked at. */
static Condition if_none_match(const HttpRequest *req, const Validators *v) {
        int r = etag_field_match(req, "If-None-Match", v, true);
        if (r == -ENOENT)
                return CONDITION_ABSENT;
        return r > 0 ? CONDITION_FALSE : CONDITION_TRUE;
}

/* §13.1.3: false when the representation has not changed since the date.
 * A date in the future is invalid: no client can have seen it yet. */
static Condition if_modified_since(const HttpRequest *req, const Validators *v, time_t now) {
        time_t t;
        if (date_field(req, "If-Modified-Since", &t) < 0 || t > now)
                return CONDITION_ABSENT;
        return v->last_modified <= t ? CONDITION_FALSE : CONDITION_TRUE;
}

/* The steps of §13.2.2, in order; each later field is looked at only when
 * the RFC says so. */
int precondition_check(const HttpRequest *req, const Validators *v, bool is_get_or_head, time_t now) {
        Condition c = if_match(req, v);
        if (c == CONDITION_FALSE)
                return 412;
        if (c == CONDITION_ABSENT && if_unmodified_since(req, v) == CONDITION_FALSE)
                return 412;

        c = if_none_match(req, v);
        if (c == CONDITION_FALSE)
                return is_get_or_head ? 304 : 412;
        if (c == CONDITION_ABSENT && is_get_or_head && if_modified_since(req, v, now) == CONDITION_FALSE)
                return 304;
        return 0;
}

/* §13.1.5. If-Range = entity-tag / HTTP-date, one of them, once. Whatever
 * does not parse as either cannot be shown to match, and a range of a
 * representation the client may not hold would corrupt its copy, so it
 * says no. */
bool precondition_if_range(const HttpRequest *req, const Validators *v) {
        size_t count;
        const HttpHeader *h = http_request_header(req, "If-Range", &count);
        EntityTag sent, current;
        time_t t;

        if (!h)
                return true;
        if (count > 1)
                return false;
        if (etag_parse(h->value, &sent) >= 0)
                return etag_parse(v->etag, &current) >= 0 && etag_equal(&sent, &current, false);
        return http_parse_date(h->value, &t) >= 0 && t == v->last_modified;
}
