/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "macro.h"

/* Character classes. Written out rather than taken from <ctype.h>, whose
 * answers depend on the locale; HTTP's grammar does not. */

static bool ascii_is_digit(char c) {
        return c >= '0' && c <= '9';
}

static char ascii_tolower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
}

static bool ascii_caseeq(const char *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (ascii_tolower(a[i]) != ascii_tolower(b[i]))
                        return false;
        return true;
}

bool http_slice_caseeq(Slice s, const char *str) {
        return strlen(str) == s.len && ascii_caseeq(s.ptr, str, s.len);
}

/* tchar (RFC 9110 §5.6.2): what methods and field names are made of. */
static bool char_is_tchar(char c) {
        if (ascii_is_digit(c) || (ascii_tolower(c) >= 'a' && ascii_tolower(c) <= 'z'))
                return true;
        return c != '\0' && strchr("!#$%&'*+-.^_`|~", c);
}

/* VCHAR, the only bytes a request-target may hold. */
static bool char_is_vchar(char c) {
        return (unsigned char) c > 0x20 && (unsigned char) c < 0x7f;
}

/* field-vchar plus the SP and HTAB allowed inside a field value; obs-text
 * (0x80-0xFF) is allowed because RFC 9110 §5.5 still lets it through. */
static bool char_is_field_content(char c) {
        unsigned char u = (unsigned char) c;
        return u == '\t' || (u >= 0x20 && u != 0x7f);
}

static bool char_is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* Request parsing.
 *
 * The head is cut into lines first and each complete line is judged in
 * order, so the first bad line decides the answer however the bytes were
 * split up on the wire. */

static const struct {
        const char *name;
        HttpMethod method;
} http_methods[] = {
        { "GET", HTTP_GET },         { "HEAD", HTTP_HEAD },       { "POST", HTTP_POST },
        { "PUT", HTTP_PUT },         { "DELETE", HTTP_DELETE },   { "CONNECT", HTTP_CONNECT },
        { "OPTIONS", HTTP_OPTIONS }, { "TRACE", HTTP_TRACE },     { "PATCH", HTTP_PATCH },
};

/* Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. */
static HttpMethod http_method_from_name(Slice name) {
        for (size_t i = 0; i < ELEMENTSOF(http_methods); i++)
                if (strlen(http_methods[i].name) == name.len &&
                    memcmp(http_methods[i].name, name.ptr, name.len) == 0)
                        return http_methods[i].method;
        return HTTP_METHOD_OTHER;
}

typedef enum HeadByte {
        HEAD_BYTE_TEXT, /* anything a line may hold, as far as finding its end goes */
        HEAD_BYTE_CR,
        HEAD_BYTE_LF,
        HEAD_BYTE_BAD,  /* in no head anywhere */
} HeadByte;

/* A table rather than comparisons: every byte of every head is looked up. */
static const uint8_t head_bytes[256] = {
        [0x00 ... 0x08] = HEAD_BYTE_BAD, /* HTAB (0x09) is text */
        ['\n'] = HEAD_BYTE_LF,
        [0x0b ... 0x0c] = HEAD_BYTE_BAD,
        ['\r'] = HEAD_BYTE_CR,
        [0x0e ... 0x1f] = HEAD_BYTE_BAD,
        [0x7f] = HEAD_BYTE_BAD,
};

static HeadByte head_byte(char c) {
        return (HeadByte) head_bytes[(unsigned char) c];
}

/* The unterminated rest of the buffer normally just means "wait for more".
 * A byte that no request head may contain anywhere (a control character
 * other than HTAB, or a CR not followed by LF) is rejected right away, so
 * binary garbage such as a TLS handshake is turned away without waiting for
 * the buffer to fill. This cannot change the final answer: once its line is
 * complete, the line parsers reject the same byte with the same error. */
static ssize_t http_check_tail(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                HeadByte b = head_byte(p[i]);
                if (b == HEAD_BYTE_BAD || (b == HEAD_BYTE_CR && i + 1 < n))
                        return -EBADMSG;
        }
        return -EAGAIN;
}

/* Finds the line starting at pos and stores it without its LF or CRLF.
 * Returns the offset just past the LF. A CR elsewhere stays in the line,
 * where the line parsers reject it. */
static ssize_t http_line_at(const char *buf, size_t len, size_t pos, Slice *ret_line) {
        const char *start = buf + pos;
        const char *lf = memchr(start, '\n', len - pos);
        if (!lf)
                return http_check_tail(start, len - pos);

        size_t n = (size_t) (lf - start);
        if (n > 0 && start[n - 1] == '\r')
                n--;
        *ret_line = (Slice) { start, n };
        return lf - buf + 1;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. Well-formed but
 * not 1.x means a protocol we do not speak rather than a bad message. */
static int http_parse_version(const char *p, size_t n, int *ret_minor) {
        if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !ascii_is_digit(p[5]) || p[6] != '.' ||
            !ascii_is_digit(p[7]))
                return -EBADMSG;
        if (p[5] != '1')
                return -EPROTONOSUPPORT;
        *ret_minor = p[7] - '0';
        return 0;
}

/* request-line = method SP request-target SP HTTP-version, with exactly one
 * SP each (RFC 9112 §3): anything looser invites request smuggling. */
static int http_parse_request_line(Slice line, HttpRequest *req) {
        const char *p = line.ptr, *end = line.ptr + line.len;

        while (p < end && char_is_tchar(*p))
                p++;
        req->method_name = (Slice) { line.ptr, (size_t) (p - line.ptr) };
        if (req->method_name.len == 0 || req->method_name.len > HTTP_MAX_METHOD_LEN ||
            p == end || *p != ' ')
                return -EBADMSG;
        req->method = http_method_from_name(req->method_name);

        const char *target = ++p;
        while (p < end && char_is_vchar(*p))
                p++;
        req->target = (Slice) { target, (size_t) (p - target) };
        if (req->target.len == 0 || p == end || *p != ' ')
                return -EBADMSG;

        p++;
        return http_parse_version(p, (size_t) (end - p), &req->minor_version);
}

/* field-line = field-name ":" OWS field-value OWS. A line starting with
 * whitespace (obs-fold, or whitespace before the first field) and
 * whitespace before the colon both end the name early and are rejected,
 * as RFC 9112 §5.1 and §5.2 ask of a server. */
static int http_parse_field_line(Slice line, HttpHeader *ret) {
        const char *p = line.ptr, *end = line.ptr + line.len;

        while (p < end && char_is_tchar(*p))
                p++;
        if (p == line.ptr || p == end || *p != ':')
                return -EBADMSG;
        Slice name = { line.ptr, (size_t) (p - line.ptr) };

        p++;
        while (p < end && char_is_ows(*p))
                p++;
        while (end > p && char_is_ows(end[-1]))
                end--;
        for (const char *q = p; q < end; q++)
                if (!char_is_field_content(*q))
                        return -EBADMSG;

        *ret = (HttpHeader) { .name = name, .value = { p, (size_t) (end - p) } };
        return 0;
}

ssize_t http_parse_request(const char *buf, size_t len, HttpRequest *ret) {
        HttpRequest req = { .n_headers = 0 };
        size_t pos = 0;
        ssize_t next;
        Slice line;
        int r;

        /* Skip empty lines left over from a previous message (RFC 9112 §2.2),
         * but only a few: more are no client's habit. */
        for (unsigned empty = 0;; empty++) {
                next = http_line_at(buf, len, pos, &line);
                if (next < 0)
                        return next;
                pos = (size_t) next;
                if (line.len > 0)
                        break;
                if (empty >= HTTP_MAX_EMPTY_LINES)
                        return -EBADMSG;
        }
        r = http_parse_request_line(line, &req);
        if (r < 0)
                return r;

        for (;;) {
                next = http_line_at(buf, len, pos, &line);
                if (next < 0)
                        return next;
                pos = (size_t) next;
                if (line.len == 0)
                        break;

                HttpHeader h;
                r = http_parse_field_line(line, &h);
                if (r < 0)
                        return r;
                if (req.n_headers >= HTTP_MAX_HEADERS)
                        return -E2BIG;
                req.headers[req.n_headers++] = h;
        }

        *ret = req;
        return (ssize_t) pos;
}

/* Finding the end of a head as it trickles in. Each byte is looked at once,
 * in order, so the first thing found wrong decides however the bytes were
 * split up; and what is rejected here, http_parse_request() rejects too. */

/* A line ends: returns the head's length when that was the empty line ending
 * it, -EAGAIN to go on, or -EBADMSG for one empty line too many. */
static ssize_t head_scan_line_end(HttpHeadScan *s) {
        switch (s->state) {
        case HTTP_HEAD_EMPTY_LINES:
                return ++s->empty_lines > HTTP_MAX_EMPTY_LINES ? -EBADMSG : -EAGAIN;
        case HTTP_HEAD_LINE_START:
                s->state = HTTP_HEAD_DONE;
                return (ssize_t) s->pos;
        default:
                s->state = HTTP_HEAD_LINE_START;
                return -EAGAIN;
        }
}

/* A run of text at s->pos, up to the next CR, LF or bad byte: the line
 * being read is not empty. Looked at in a tight loop, since that is where
 * the bytes of a head are. */
static ssize_t head_scan_text(HttpHeadScan *s, const char *buf, size_t len, size_t max_line) {
        size_t start = s->pos, end = start;

        while (end < len && head_byte(buf[end]) == HEAD_BYTE_TEXT)
                end++;
        if (s->state == HTTP_HEAD_EMPTY_LINES)
                s->state = HTTP_HEAD_REQUEST_LINE;
        else if (s->state == HTTP_HEAD_LINE_START)
                s->state = HTTP_HEAD_FIELD_LINE;
        if (s->state == HTTP_HEAD_REQUEST_LINE && end - start > max_line - s->line) {
                s->pos = start + (max_line - s->line) + 1; /* just past the byte too many */
                return -EMSGSIZE;
        }
        if (s->state == HTTP_HEAD_REQUEST_LINE)
                s->line += end - start;
        s->pos = end;
        return -EAGAIN;
}

ssize_t http_head_scan(HttpHeadScan *s, const char *buf, size_t len, size_t max_line) {
        if (s->state == HTTP_HEAD_DONE)
                return (ssize_t) s->pos;

        while (s->pos < len) {
                HeadByte b = head_byte(buf[s->pos]);
                ssize_t r = -EAGAIN;

                /* A CR ends a line only just before its LF. */
                if (b == HEAD_BYTE_BAD || (s->cr && b != HEAD_BYTE_LF)) {
                        s->pos++;
                        return -EBADMSG;
                }
                if (b == HEAD_BYTE_TEXT)
                        r = head_scan_text(s, buf, len, max_line);
                else {
                        s->pos++;
                        s->cr = b == HEAD_BYTE_CR;
                        if (!s->cr)
                                r = head_scan_line_end(s);
                }
                if (r != -EAGAIN)
                        return r;
        }
        return -EAGAIN;
}

/* Transfer codings (RFC 9112 §6.1, §7).
 *
 * transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
 *
 * Parameters are read for their syntax only: we decode no coding that has
 * any. Commas inside a quoted parameter are not separators, which is why
 * the list is walked here rather than split with http_list_next(). */

typedef struct Codings {
        unsigned n, n_chunked;
        bool last_chunked;
        bool chunked_params;
} Codings;

static const char *ows_skip(const char *p, const char *end) {
        while (p < end && char_is_ows(*p))
                p++;
        return p;
}

static const char *token_skip(const char *p, const char *end) {
        while (p < end && char_is_tchar(*p))
                p++;
        return p;
}

/* quoted-string (RFC 9110 §5.6.4) at p: returns its end, or NULL. */
static const char *quoted_skip(const char *p, const char *end) {
        if (p == end || *p != '"')
                return NULL;
        for (p++; p < end; p++) {
                if (*p == '"')
                        return p + 1;
                if (*p == '\\' && ++p == end)
                        return NULL;
                if (!char_is_field_content(*p))
                        return NULL;
        }
        return NULL;
}

/* ";" OWS token BWS "=" BWS ( token / quoted-string ), p at the ';'.
 * Returns its end, or NULL. */
static const char *parameter_skip(const char *p, const char *end) {
        const char *name = ows_skip(p + 1, end), *q = token_skip(name, end);

        if (q == name)
                return NULL;
        p = ows_skip(q, end);
        if (p == end || *p != '=')
                return NULL;
        p = ows_skip(p + 1, end);
        q = p < end && *p == '"' ? quoted_skip(p, end) : token_skip(p, end);
        return q == p ? NULL : q;
}

/* One transfer-coding at p, added to *codings. Returns its end, or NULL. */
static const char *coding_take(const char *p, const char *end, Codings *codings) {
        const char *q = token_skip(p, end);
        bool params = false;

        if (q == p)
                return NULL;
        bool chunked = http_slice_caseeq((Slice) { p, (size_t) (q - p) }, "chunked");
        for (p = ows_skip(q, end); p < end && *p == ';'; p = ows_skip(q, end)) {
                q = parameter_skip(p, end);
                if (!q)
                        return NULL;
                params = true;
        }
        codings->n++;
        codings->n_chunked += chunked;
        codings->last_chunked = chunked;
        codings->chunked_params |= chunked && params;
        return p;
}

/* #transfer-coding (RFC 9110 §5.6.1): empty elements are allowed and
 * skipped, anything but OWS and a comma between two codings is not. */
static int codings_take(Slice value, Codings *codings) {
        const char *p = value.ptr, *end = value.ptr + value.len;

        for (;;) {
                p = ows_skip(p, end);
                if (p == end)
                        return 0;
                if (*p == ',') {
                        p++;
                        continue;
                }
                p = coding_take(p, end, codings);
                if (!p || (p < end && *p != ','))
                        return -EBADMSG;
        }
}

int http_request_chunked(const HttpRequest *req) {
        Codings codings = { .n = 0 };
        bool present = false;

        for (size_t i = 0; i < req->n_headers; i++) {
                if (!http_header_is(&req->headers[i], "Transfer-Encoding"))
                        continue;
                present = true;
                if (codings_take(req->headers[i].value, &codings) < 0)
                        return -EBADMSG;
        }
        if (!present)
                return 0;
        /* Without chunked last, the body's end cannot be found (RFC 9112
         * §6.3): that MUST be a 400, before the SHOULD of a 501. */
        if (codings.n == 0 || !codings.last_chunked)
                return -EBADMSG;
        /* Chunked only once (§6.1), and it defines no parameters (§7). */
        if (codings.n_chunked > 1 || codings.chunked_params)
                return -EBADMSG;
        return codings.n > 1 ? -EOPNOTSUPP : 1;
}

int http_status_for_error(int error) {
        switch (error) {
        case -E2BIG:
                return 431;
        case -EPROTONOSUPPORT:
                return 505;
        case -EOPNOTSUPP:
                return 501;
        default:
                return 400;
        }
}

/* RFC 9110 §15, plus 428, 429 and 431 from RFC 6585. */
static const struct {
        int status;
        const char *reason;
} http_reasons[] = {
        { 100, "Continue" },
        { 101, "Switching Protocols" },
        { 200, "OK" },
        { 201, "Created" },
        { 202, "Accepted" },
        { 203, "Non-Authoritative Information" },
        { 204, "No Content" },
        { 205, "Reset Content" },
        { 206, "Partial Content" },
        { 300, "Multiple Choices" },
        { 301, "Moved Permanently" },
        { 302, "Found" },
        { 303, "See Other" },
        { 304, "Not Modified" },
        { 305, "Use Proxy" },
        { 307, "Temporary Redirect" },
        { 308, "Permanent Redirect" },
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 402, "Payment Required" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 406, "Not Acceptable" },
        { 407, "Proxy Authentication Required" },
        { 408, "Request Timeout" },
        { 409, "Conflict" },
        { 410, "Gone" },
        { 411, "Length Required" },
        { 412, "Precondition Failed" },
        { 413, "Content Too Large" },
        { 414, "URI Too Long" },
        { 415, "Unsupported Media Type" },
        { 416, "Range Not Satisfiable" },
        { 417, "Expectation Failed" },
        { 421, "Misdirected Request" },
        { 422, "Unprocessable Content" },
        { 426, "Upgrade Required" },
        { 428, "Precondition Required" },
        { 429, "Too Many Requests" },
        { 431, "Request Header Fields Too Large" },
        { 500, "Internal Server Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
        { 505, "HTTP Version Not Supported" },
};

const char *http_status_reason(int status) {
        for (size_t i = 0; i < ELEMENTSOF(http_reasons); i++)
                if (http_reasons[i].status == status)
                        return http_reasons[i].reason;
        return NULL;
}

const HttpHeader *http_request_header(const HttpRequest *req, const char *name, size_t *ret_count) {
        const HttpHeader *first = NULL;
        size_t n = 0, len = strlen(name);

        /* A dozen lookups per request over every field: compare lengths
         * before bytes. */
        for (size_t i = 0; i < req->n_headers; i++) {
                Slice f = req->headers[i].name;
                if (f.len != len || !ascii_caseeq(f.ptr, name, len))
                        continue;
                if (!first)
                        first = &req->headers[i];
                n++;
        }
        if (ret_count)
                *ret_count = n;
        return first;
}

bool http_header_is(const HttpHeader *h, const char *name) {
        return http_slice_caseeq(h->name, name);
}

/* #element lists (RFC 9110 §5.6.1): empty elements are allowed and skipped. */
bool http_list_next(Slice *list, Slice *ret_element) {
        while (list->len > 0) {
                const char *comma = memchr(list->ptr, ',', list->len);
                size_t n = comma ? (size_t) (comma - list->ptr) : list->len;
                Slice e = { list->ptr, n };

                list->ptr += comma ? n + 1 : n;
                list->len -= comma ? n + 1 : n;
                while (e.len > 0 && char_is_ows(e.ptr[0])) {
                        e.ptr++;
                        e.len--;
                }
                while (e.len > 0 && char_is_ows(e.ptr[e.len - 1]))
                        e.len--;
                if (e.len > 0) {
                        *ret_element = e;
                        return true;
                }
        }
        return false;
}

bool http_list_has_token(Slice value, const char *token) {
        Slice element;

        while (http_list_next(&value, &element))
                if (http_slice_caseeq(element, token))
                        return true;
        return false;
}

/* absolute-form (RFC 9112 §3.2.2), as a proxy would send it. Only http and
 * https make sense to a web server. Userinfo is refused, as RFC 9110 §4.2.4
 * suggests, since "http://trusted@evil/" exists only to mislead. Returns
 * what follows the authority: "/...", "?..." or nothing. */
static int http_target_skip_authority(Slice target, Slice *ret_rest) {
        static const char *const schemes[] = { "http://", "https://" };

        for (size_t i = 0; i < ELEMENTSOF(schemes); i++) {
                size_t n = strlen(schemes[i]);
                if (target.len < n || !ascii_caseeq(target.ptr, schemes[i], n))
                        continue;

                const char *host = target.ptr + n, *end = target.ptr + target.len, *p = host;
                while (p < end && *p != '/' && *p != '?') {
                        if (*p == '@')
                                return -EBADMSG;
                        p++;
                }
                if (p == host)
                        return -EBADMSG;
                *ret_rest = (Slice) { p, (size_t) (end - p) };
                return 0;
        }
        return -EBADMSG;
}

int http_target_split(Slice target, Slice *ret_path, Slice *ret_query) {
        Slice rest = target;
        int r;

        /* Fragments stay with the client (RFC 9110 §4.2.5); one here is bogus. */
        if (target.len == 0 || memchr(target.ptr, '#', target.len))
                return -EBADMSG;
        if (target.ptr[0] != '/') {
                r = http_target_skip_authority(target, &rest);
                if (r < 0)
                        return r;
        }

        const char *q = memchr(rest.ptr, '?', rest.len);
        Slice path = { rest.ptr, q ? (size_t) (q - rest.ptr) : rest.len };
        Slice query = q ? (Slice) { q + 1, rest.len - path.len - 1 } : (Slice) { rest.ptr + rest.len, 0 };
        /* "http://host" and "http://host?q" ask for the root (RFC 9112 §3.2.1). */
        if (path.len == 0)
                path = (Slice) { "/", 1 };

        *ret_path = path;
        *ret_query = query;
        return 0;
}

/* Path normalisation.
 *
 * A decoded "%2F" separates segments just like "/": the path is only ever
 * used to open a file, where both mean the same, and the real guard against
 * escaping the root is openat2()'s RESOLVE_BENEATH, not this function.
 *
 * Dot segments are resolved walking from the last segment to the first:
 * each ".." cancels the nearest name to its left. That gives the same result
 * as the forward walk of RFC 3986 §5.2.4, but tells the exact output length
 * before a byte is written, so a path that only grows long on the way
 * ("/aaaa.../../b") still fits. Empty segments are dropped rather than
 * counted, which is how the kernel treats "a//..". */

typedef enum PathSegmentKind {
        PATH_SEGMENT_EMPTY,
        PATH_SEGMENT_DOT,
        PATH_SEGMENT_DOTDOT,
        PATH_SEGMENT_NAME,
} PathSegmentKind;

static int hex_value(char c) {
        if (ascii_is_digit(c))
                return c - '0';
        c = ascii_tolower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Checks every escape up front. Afterwards each '%' is known to start a
 * valid escape, which the later passes rely on to decode without checks and
 * to recognise an encoded separator from its last byte. */
static int path_validate(Slice path) {
        if (path.len == 0 || path.ptr[0] != '/')
                return -EBADMSG;

        for (size_t i = 0; i < path.len; i++) {
                if (path.ptr[i] == '\0')
                        return -EBADMSG;
                if (path.ptr[i] != '%')
                        continue;
                if (path.len - i < 3)
                        return -EBADMSG;
                int hi = hex_value(path.ptr[i + 1]), lo = hex_value(path.ptr[i + 2]);
                /* An encoded NUL would cut the path short in any C API. */
                if (hi < 0 || lo < 0 || (hi | lo) == 0)
                        return -EBADMSG;
                i += 2;
        }
        return 0;
}

/* Decodes a validated segment into out (if non-NULL); returns its length. */
static size_t path_decode(Slice raw, char *out) {
        size_t n = 0;

        for (size_t i = 0; i < raw.len; i++, n++) {
                char c = raw.ptr[i];
                if (c == '%') {
                        c = (char) (hex_value(raw.ptr[i + 1]) << 4 | hex_value(raw.ptr[i + 2]));
                        i += 2;
                }
                if (out)
                        out[n] = c;
        }
        return n;
}

/* Classifies a segment after decoding, so "%2e%2e" is "..". */
static PathSegmentKind path_segment_kind(Slice raw, size_t *ret_len) {
        char head[2];
        size_t n = path_decode(raw, NULL);

        *ret_len = n;
        if (n == 0)
                return PATH_SEGMENT_EMPTY;
        if (n > 2)
                return PATH_SEGMENT_NAME;
        (void) path_decode(raw, head);
        if (head[0] != '.' || (n == 2 && head[1] != '.'))
                return PATH_SEGMENT_NAME;
        return n == 1 ? PATH_SEGMENT_DOT : PATH_SEGMENT_DOTDOT;
}

/* Finds the segment ending at end and returns where the separator in front
 * of it starts. Terminates because a validated path starts with '/'. */
static size_t path_segment_before(Slice path, size_t end, Slice *ret_raw) {
        const char *p = path.ptr;
        size_t i = end;

        for (;;) {
                i--;
                if (p[i] == '/') {
                        *ret_raw = (Slice) { p + i + 1, end - i - 1 };
                        return i;
                }
                if (i >= 2 && p[i - 2] == '%' && p[i - 1] == '2' && ascii_tolower(p[i]) == 'f') {
                        *ret_raw = (Slice) { p + i + 1, end - i - 1 };
                        return i - 2;
                }
        }
}

/* Returns the total length of the kept "/name" pieces, or -EBADMSG when a
 * ".." is left with no name to cancel. With out, writes the pieces so that
 * they end at out + out_end. ret_trailing (may be NULL) tells whether the
 * last segment asks for a trailing slash (empty, "." or ".."). */
static ssize_t path_walk(Slice path, char *out, size_t out_end, bool *ret_trailing) {
        size_t pos = path.len, skip = 0, total = 0;

        while (pos > 0) {
                Slice raw;
                size_t n;
                bool last = pos == path.len;

                pos = path_segment_before(path, pos, &raw);
                PathSegmentKind kind = path_segment_kind(raw, &n);
                if (last && ret_trailing)
                        *ret_trailing = kind != PATH_SEGMENT_NAME;

                if (kind == PATH_SEGMENT_DOTDOT)
                        skip++;
                if (kind != PATH_SEGMENT_NAME)
                        continue;
                if (skip > 0) {
                        skip--;
                        continue;
                }
                total += 1 + n;
                if (out) {
                        char *piece = out + out_end - total;
                        piece[0] = '/';
                        (void) path_decode(raw, piece + 1);
                }
        }
        return skip > 0 ? -EBADMSG : (ssize_t) total;
}

ssize_t http_path_normalize(Slice path, char *out, size_t out_size) {
        bool trailing = false;
        ssize_t body;
        int r;

        r = path_validate(path);
        if (r < 0)
                return r;
        body = path_walk(path, NULL, 0, &trailing);
        if (body < 0)
                return body;

        size_t len = body == 0 ? 1 : (size_t) body + trailing;
        if (len >= out_size)
                return -ENAMETOOLONG;

        (void) path_walk(path, out, (size_t) body, NULL);
        if (body == 0 || trailing)
                out[len - 1] = '/';
        out[len] = '\0';
        return (ssize_t) len;
}

/* Dates (RFC 9110 §5.6.7). Names come from our own tables: strftime's %a
 * and %b follow the locale, and HTTP dates are always English. */

static const char *const date_days[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const date_days_long[7] = {
        "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char *const date_months[12] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years IMF-fixdate's
 * four digits can hold. */
#define DATE_MIN_SEC INT64_C(-62167219200)
#define DATE_MAX_SEC INT64_C(253402300799)

static char *date_put(char *p, const char *s) {
        size_t n = strlen(s);
        memcpy(p, s, n);
        return p + n;
}

static char *date_put_digits(char *p, int v, size_t width) {
        for (size_t i = width; i > 0; i--) {
                p[i - 1] = (char) ('0' + v % 10);
                v /= 10;
        }
        return p + width;
}

void http_format_date(time_t t, char out[static 30]) {
        /* Clamped so the result is always exactly 29 characters. */
        int64_t s = MIN(MAX((int64_t) t, DATE_MIN_SEC), DATE_MAX_SEC);
        time_t clamped = (time_t) s;
        struct tm tm;
        char *p = out;

        if (!gmtime_r(&clamped, &tm))
                tm = (struct tm) { .tm_mday = 1, .tm_year = 70, .tm_wday = 4 };

        p = date_put(p, date_days[tm.tm_wday]);
        p = date_put(p, ", ");
        p = date_put_digits(p, tm.tm_mday, 2);
        p = date_put(p, " ");
        p = date_put(p, date_months[tm.tm_mon]);
        p = date_put(p, " ");
        p = date_put_digits(p, tm.tm_year + 1900, 4);
        p = date_put(p, " ");
        p = date_put_digits(p, tm.tm_hour, 2);
        p = date_put(p, ":");
        p = date_put_digits(p, tm.tm_min, 2);
        p = date_put(p, ":");
        p = date_put_digits(p, tm.tm_sec, 2);
        p = date_put(p, " GMT");
        *p = '\0';
}

typedef struct DateParts {
        int day, month, year, hour, minute, second;
        bool two_digit_year;
} DateParts;

/* Matches one of names at p; returns its length and index, or -EINVAL. */
static ssize_t date_name(const char *const *names, size_t n_names, const char *p, size_t n, int *ret_index) {
        for (size_t i = 0; i < n_names; i++) {
                size_t l = strlen(names[i]);
                if (l <= n && memcmp(p, names[i], l) == 0) {
                        if (ret_index)
                                *ret_index = (int) i;
                        return (ssize_t) l;
                }
        }
        return -EINVAL;
}

static ssize_t date_digits(const char *p, size_t n, size_t width, int *ret) {
        int v = 0;

        if (n < width)
                return -EINVAL;
        for (size_t i = 0; i < width; i++) {
                if (!ascii_is_digit(p[i]))
                        return -EINVAL;
                v = v * 10 + (p[i] - '0');
        }
        *ret = v;
        return (ssize_t) width;
}

/* One strptime-like directive. %e is asctime's day: SP DIGIT or 2DIGIT. */
static ssize_t date_field(char directive, const char *p, size_t n, DateParts *d) {
        switch (directive) {
        case 'a':
                return date_name(date_days, ELEMENTSOF(date_days), p, n, NULL);
        case 'A':
                return date_name(date_days_long, ELEMENTSOF(date_days_long), p, n, NULL);
        case 'b':
                return date_name(date_months, ELEMENTSOF(date_months), p, n, &d->month);
        case 'd':
                return date_digits(p, n, 2, &d->day);
        case 'e':
                if (n > 0 && p[0] == ' ') {
                        ssize_t r = date_digits(p + 1, n - 1, 1, &d->day);
                        return r < 0 ? r : r + 1;
                }
                return date_digits(p, n, 2, &d->day);
        case 'Y':
                return date_digits(p, n, 4, &d->year);
        case 'y':
                d->two_digit_year = true;
                return date_digits(p, n, 2, &d->year);
        case 'H':
                return date_digits(p, n, 2, &d->hour);
        case 'M':
                return date_digits(p, n, 2, &d->minute);
        case 'S':
                return date_digits(p, n, 2, &d->second);
        default:
                return -EINVAL;
        }
}

/* Matches the whole of value against fmt; other characters are literal. */
static int date_scan(const char *fmt, Slice value, DateParts *ret) {
        const char *p = value.ptr, *end = value.ptr + value.len;
        DateParts d = { .day = 0 };

        for (; *fmt; fmt++) {
                if (*fmt != '%') {
                        if (p == end || *p != *fmt)
                                return -EINVAL;
                        p++;
                        continue;
                }
                ssize_t n = date_field(*++fmt, p, (size_t) (end - p), &d);
                if (n < 0)
                        return (int) n;
                p += n;
        }
        if (p != end)
                return -EINVAL;
        *ret = d;
        return 0;
}

/* RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
 * the future belongs to the previous century. Judged by year, not to the
 * second: nobody sends RFC 850 dates near that edge. */
static int date_full_year(int yy) {
        time_t now = time(NULL);
        struct tm tm;
        int year = 1970;

        if (gmtime_r(&now, &tm))
                year = tm.tm_year + 1900;
        int full = year - year % 100 + yy;
        return full > year + 50 ? full - 100 : full;
}

static bool date_is_leap(int year) {
        return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

static int date_to_time(DateParts d, time_t *ret) {
        static const int month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        if (d.two_digit_year)
                d.year = date_full_year(d.year);
        int dim = month_days[d.month] + (d.month == 1 && date_is_leap(d.year));
        /* Second 60 is a leap second, which the grammar allows; timegm()
         * folds it into the next minute. */
        if (d.day < 1 || d.day > dim || d.hour > 23 || d.minute > 59 || d.second > 60)
                return -EINVAL;

        struct tm tm = {
                .tm_year = d.year - 1900,
                .tm_mon = d.month,
                .tm_mday = d.day,
                .tm_hour = d.hour,
                .tm_min = d.minute,
                .tm_sec = d.second,
        };
        *ret = timegm(&tm);
        return 0;
}

/* The day name is checked for spelling but not against the date: RFC 9110
 * does not ask for it, and a wrong one is harmless. HTTP-date is
 * case-sensitive, so "sun, 06 nov 1994 ..." is rejected. */
int http_parse_date(Slice value, time_t *ret) {
        static const char *const formats[] = {
                "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
                "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
                "%a %b %e %H:%M:%S %Y",      /* asctime() */
        };
        DateParts d;

        for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                if (date_scan(formats[i], value, &d) >= 0)
                        return date_to_time(d, ret);
        return -EINVAL;
}

static int chunked_hex(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

static bool chunked_ctl(char ch) {
        return ((unsigned char) ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* The end of a chunk-size line: a last chunk starts the trailer. */
static int chunked_size_done(HttpChunked *s, uint64_t max_total) {
        s->line = 0;
        if (s->size == 0) {
                s->state = HTTP_CHUNKED_TRAILER_START;
                return 0;
        }
        if (s->size > max_total - s->total)
                return -E2BIG;
        s->total += s->size;
        s->state = HTTP_CHUNKED_DATA;
        return 0;
}

static int chunked_size_byte(HttpChunked *s, char ch) {
        int d = chunked_hex(ch);

        if (s->state == HTTP_CHUNKED_SIZE && d >= 0) {
                if (++s->digits > 16) /* 16 hex digits fill 64 bits */
                        return -E2BIG;
                s->size = s->size * 16 + (uint64_t) d;
                return 0;
        }
        if (s->digits == 0)
                return -EBADMSG;
        if (ch == '\r' && s->state != HTTP_CHUNKED_SIZE_BWS) {
                s->state = HTTP_CHUNKED_SIZE_LF;
                return 0;
        }
        if (s->state == HTTP_CHUNKED_EXT)
                return chunked_ctl(ch) ? -EBADMSG : 0;
        if (ch == ' ' || ch == '\t') {
                s->state = HTTP_CHUNKED_SIZE_BWS;
                return 0;
        }
        if (ch != ';')
                return -EBADMSG;
        s->state = HTTP_CHUNKED_EXT;
        return 0;
}

static int chunked_trailer_byte(HttpChunked *s, char ch) {
        if (++s->trailer > HTTP_CHUNKED_MAX_TRAILER)
                return -E2BIG;
        switch (s->state) {
        case HTTP_CHUNKED_TRAILER_START:
                if (ch == '\r')
                        s->state = HTTP_CHUNKED_TRAILER_END_LF;
                else if (chunked_ctl(ch) || ch == ' ' || ch == '\t') /* no obs-fold either */
                        return -EBADMSG;
                else
                        s->state = HTTP_CHUNKED_TRAILER_LINE;
                return 0;
        case HTTP_CHUNKED_TRAILER_LINE:
                if (ch == '\r')
                        s->state = HTTP_CHUNKED_TRAILER_LINE_LF;
                else if (chunked_ctl(ch))
                        return -EBADMSG;
                return 0;
        case HTTP_CHUNKED_TRAILER_LINE_LF:
                if (ch != '\n')
                        return -EBADMSG;
                s->state = HTTP_CHUNKED_TRAILER_START;
                return 0;
        default: /* HTTP_CHUNKED_TRAILER_END_LF */
                if (ch != '\n')
                        return -EBADMSG;
                s->state = HTTP_CHUNKED_DONE;
                return 0;
        }
}

static int chunked_expect(HttpChunked *s, char ch, char expected, HttpChunkedState next) {
        if (ch != expected)
                return -EBADMSG;
        s->state = next;
        return 0;
}

/* One byte outside chunk data. Returns 0 or a negative errno. */
static int chunked_byte(HttpChunked *s, char ch, uint64_t max_total) {
        if (s->total >= max_total)
                return -E2BIG;
        s->total++;

        switch (s->state) {
        case HTTP_CHUNKED_SIZE:
        case HTTP_CHUNKED_SIZE_BWS:
        case HTTP_CHUNKED_EXT:
                if (++s->line > HTTP_CHUNKED_MAX_LINE)
                        return -E2BIG;
                return chunked_size_byte(s, ch);
        case HTTP_CHUNKED_SIZE_LF:
                return ch == '\n' ? chunked_size_done(s, max_total) : -EBADMSG;
        case HTTP_CHUNKED_DATA_CR:
                return chunked_expect(s, ch, '\r', HTTP_CHUNKED_DATA_LF);
        case HTTP_CHUNKED_DATA_LF:
                s->size = 0;
                s->digits = 0;
                return chunked_expect(s, ch, '\n', HTTP_CHUNKED_SIZE);
        default:
                return chunked_trailer_byte(s, ch);
        }
}

ssize_t http_chunked_skip(HttpChunked *s, const char *buf, size_t len, uint64_t max_total) {
        size_t i = 0;

        while (i < len && s->state != HTTP_CHUNKED_DONE) {
                if (s->state == HTTP_CHUNKED_DATA) {
                        size_t n = (size_t) MIN((uint64_t) (len - i), s->size);
                        i += n;
                        s->size -= n;
                        if (s->size == 0)
                                s->state = HTTP_CHUNKED_DATA_CR;
                        continue;
                }
                int r = chunked_byte(s, buf[i++], max_total);
                if (r < 0)
                        return r;
        }
        return (ssize_t) i;
}
