/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* HTTP/1.1 request parsing (RFC 9112) and response helpers.
 *
 * The parser is pure: no I/O, no allocation, no logging. It points slices
 * into the caller's buffer, which must outlive the HttpRequest. */

#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_METHOD_LEN 32
/* Empty lines accepted before a request line. RFC 9112 §2.2 asks a server to
 * ignore at least one (some clients send a CRLF after a body); more than a
 * few are no client's habit, only a way to keep a server busy. */
#define HTTP_MAX_EMPTY_LINES 8

typedef struct Slice {
        const char *ptr;
        size_t len;
} Slice;

typedef enum HttpMethod {
        HTTP_GET,
        HTTP_HEAD,
        HTTP_POST,
        HTTP_PUT,
        HTTP_DELETE,
        HTTP_CONNECT,
        HTTP_OPTIONS,
        HTTP_TRACE,
        HTTP_PATCH,
        HTTP_METHOD_OTHER, /* a syntactically valid token we do not know */
} HttpMethod;

typedef struct HttpHeader {
        Slice name;
        Slice value; /* leading and trailing whitespace removed */
} HttpHeader;

typedef struct HttpRequest {
        HttpMethod method;
        Slice method_name;
        Slice target; /* request-target exactly as sent */
        int minor_version; /* HTTP/1.<minor_version> */
        size_t n_headers;
        HttpHeader headers[HTTP_MAX_HEADERS];
} HttpRequest;

/* Parses one request head (request line and header fields, up to and
 * including the empty line) at the start of buf.
 *
 * Returns the number of bytes consumed (> 0), or:
 *   -EAGAIN           the head is incomplete; call again with more bytes
 *   -EBADMSG          malformed (400)
 *   -E2BIG            more than HTTP_MAX_HEADERS fields (431)
 *   -EPROTONOSUPPORT  an HTTP major version other than 1 (505)
 * The same bytes give the same answer whether fed whole or one at a time.
 * Up to HTTP_MAX_EMPTY_LINES empty lines before the request line are
 * skipped (RFC 9112 §2.2); one more is malformed.
 * Bare LF line endings are accepted; a bare CR, a NUL or another control
 * character, whitespace before a field's colon, and obs-fold are rejected. */
ssize_t http_parse_request(const char *buf, size_t len, HttpRequest *ret);

/* Finding where a request head ends while it arrives, so that it can be
 * parsed once, complete: parsing the whole buffer again whenever bytes come
 * would make a head trickled in small pieces cost quadratic time.
 *
 * Incremental and cheap: each call examines only the bytes added since the
 * last one. Besides the end of the head, it judges only what must be known
 * before the head is complete: the request line's length, the number of
 * empty lines before it, and bytes that no head may hold anywhere (a
 * control character other than HTAB, a CR not followed by LF), so that
 * garbage is turned away at once. */

typedef enum HttpHeadState {
        HTTP_HEAD_EMPTY_LINES,  /* before the request line */
        HTTP_HEAD_REQUEST_LINE,
        HTTP_HEAD_LINE_START,   /* the request line is complete */
        HTTP_HEAD_FIELD_LINE,
        HTTP_HEAD_DONE,
} HttpHeadState;

typedef struct HttpHeadScan {
        HttpHeadState state;
        size_t pos;             /* bytes examined */
        size_t line;            /* bytes of the request line so far */
        unsigned empty_lines;
        bool cr;                /* the last byte examined was a CR */
} HttpHeadScan;

/* Goes on examining buf from where the last call stopped: buf must hold the
 * same bytes as then, and possibly more. Returns the head's length once its
 * final empty line is in, -EAGAIN until then, or:
 *   -EBADMSG   a byte no head may hold, or more than HTTP_MAX_EMPTY_LINES
 *              empty lines before the request line (400)
 *   -EMSGSIZE  a request line longer than max_line, CRLF not counted (414)
 * For the same bytes, http_parse_request() returns the same length or an
 * error, and an error wherever this gives -EBADMSG. After an error the scan
 * is over. Start each head from a zeroed HttpHeadScan. */
ssize_t http_head_scan(HttpHeadScan *s, const char *buf, size_t len, size_t max_line);

/* How Transfer-Encoding frames the request's body (RFC 9112 §6.1), all its
 * Transfer-Encoding field lines read as one list (RFC 9110 §5.3), each
 * element a token with optional ";name=value" parameters. Returns 0 when
 * there is no such field, 1 when the body is chunked, or:
 *   -EBADMSG     not a list of codings, no coding at all, chunked not last
 *                (the body's end cannot be found, RFC 9112 §6.3), chunked
 *                more than once, or chunked with parameters (400)
 *   -EOPNOTSUPP  a coding before chunked, which we do not decode (501) */
int http_request_chunked(const HttpRequest *req);

/* The status code a parse error maps to (400, 431, 501, 505); 400 for
 * anything unexpected. */
int http_status_for_error(int error);

/* The reason phrase for a status code, or NULL for an unknown code. */
const char *http_status_reason(int status);

/* Case-insensitive header lookup. Returns the first field named `name` and
 * stores how many fields have that name in *ret_count (may be NULL). */
const HttpHeader *http_request_header(const HttpRequest *req, const char *name, size_t *ret_count);

/* True when the field is named `name` (case-insensitive). */
bool http_header_is(const HttpHeader *h, const char *name);

/* True when s equals str, ignoring ASCII case. */
bool http_slice_caseeq(Slice s, const char *str);

/* Takes the next element off a comma-separated list (RFC 9110 §5.6.1),
 * with surrounding OWS removed; empty elements are skipped. Returns false
 * when the list is exhausted. */
bool http_list_next(Slice *list, Slice *ret_element);

/* True when the comma-separated list `value` holds `token`
 * (case-insensitive), e.g. "close" in "Connection: keep-alive, close". */
bool http_list_has_token(Slice value, const char *token);

/* Splits an origin-form or absolute-form target into its path (still
 * percent-encoded) and query (without the '?'; empty if none). Returns 0, or
 * -EBADMSG when the target is neither (e.g. "*" or "example.com:80"). */
int http_target_split(Slice target, Slice *ret_path, Slice *ret_query);

/* Percent-decodes a path and removes dot segments (RFC 3986 §5.2.4), writing
 * a NUL-terminated absolute path ("/a/b") to out. Returns its length, or
 * -EBADMSG for a bad escape, an encoded or raw NUL, a path not starting with
 * "/", or dot segments that climb above the root; -ENAMETOOLONG when it does
 * not fit out_size. Empty segments ("//") are collapsed. A trailing slash is
 * kept, since it tells a directory request apart. */
ssize_t http_path_normalize(Slice path, char *out, size_t out_size);

/* Formats an IMF-fixdate (RFC 9110 §5.6.7) into out (at least 30 bytes). */
void http_format_date(time_t t, char out[static 30]);

/* Parses the three date formats of RFC 9110 §5.6.7. Returns 0 or -EINVAL. */
int http_parse_date(Slice value, time_t *ret);

/* Skipping a chunked request body (RFC 9112 §7.1) without keeping it: we
 * serve no resource that takes a body, but must find where the next
 * request starts. Incremental: feed whatever bytes have arrived.
 *
 * Strict on purpose: a proxy in front of us and we must agree on where the
 * body ends, or a request can be smuggled past the proxy. So every line
 * ends in CRLF (no bare LF), whitespace after the size is only allowed
 * before a ';' extension, and trailer lines hold no control characters. */

#define HTTP_CHUNKED_MAX_LINE 4096     /* a chunk-size line with extensions */
#define HTTP_CHUNKED_MAX_TRAILER 8192  /* the whole trailer section */

typedef enum HttpChunkedState {
        HTTP_CHUNKED_SIZE,
        HTTP_CHUNKED_SIZE_BWS,   /* whitespace after the size: ';' must follow */
        HTTP_CHUNKED_EXT,
        HTTP_CHUNKED_SIZE_LF,
        HTTP_CHUNKED_DATA,
        HTTP_CHUNKED_DATA_CR,
        HTTP_CHUNKED_DATA_LF,
        HTTP_CHUNKED_TRAILER_START,
        HTTP_CHUNKED_TRAILER_LINE,
        HTTP_CHUNKED_TRAILER_LINE_LF,
        HTTP_CHUNKED_TRAILER_END_LF,
        HTTP_CHUNKED_DONE,
} HttpChunkedState;

typedef struct HttpChunked {
        HttpChunkedState state;
        uint64_t size;      /* of the chunk being read or skipped */
        unsigned digits;
        uint64_t total;     /* body bytes so far, framing included */
        size_t line;        /* bytes of the current size line */
        size_t trailer;     /* bytes of trailer so far */
} HttpChunked;

/* Consumes body bytes from buf. Returns how many (<= len; fewer only once
 * the body has ended, s->state then being HTTP_CHUNKED_DONE), or -EBADMSG
 * for a malformed body, -E2BIG when the body (framing included, so that
 * extensions cannot smuggle volume past the limit) exceeds max_total or a
 * line or the trailer exceeds its limit. Start from a zeroed HttpChunked. */
ssize_t http_chunked_skip(HttpChunked *s, const char *buf, size_t len, uint64_t max_total);
