/* SPDX-License-Identifier: MIT */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "file.h"
#include "log.h"
#include "precondition.h"
#include "range.h"
#include "util.h"

#define SERVE_MAX_PATH 4096
#define SERVE_MAX_LOCATION 1024 /* longer redirects get 414 */
#define SERVE_ALLOW "Allow: GET, HEAD, OPTIONS\r\n"
#define SERVE_VARY "Vary: Accept-Encoding\r\n"
#define SERVE_BOUNDARY_PREFIX "webpoold-"
#define SERVE_BOUNDARY_BYTES 16 /* random ones, written in hex */
#define SERVE_BOUNDARY_SIZE (sizeof(SERVE_BOUNDARY_PREFIX) + 2 * SERVE_BOUNDARY_BYTES)

#define PAGE(code, reason)                                                      \
        "<!DOCTYPE html>\n<html><head><title>" #code " " reason "</title></head>\n" \
        "<body><h1>" #code " " reason "</h1></body></html>\n"

static const struct {
        int status;
        const char *page;
} builtin_pages[] = {
        { 301, PAGE(301, "Moved Permanently") },
        { 400, PAGE(400, "Bad Request") },
        { 403, PAGE(403, "Forbidden") },
        { 404, PAGE(404, "Not Found") },
        { 405, PAGE(405, "Method Not Allowed") },
        { 411, PAGE(411, "Length Required") },
        { 412, PAGE(412, "Precondition Failed") },
        { 413, PAGE(413, "Content Too Large") },
        { 414, PAGE(414, "URI Too Long") },
        { 416, PAGE(416, "Range Not Satisfiable") },
        { 431, PAGE(431, "Request Header Fields Too Large") },
        { 501, PAGE(501, "Not Implemented") },
        { 503, PAGE(503, "Service Unavailable") },
        { 505, PAGE(505, "HTTP Version Not Supported") },
        { 500, PAGE(500, "Internal Server Error") }, /* last: the fallback */
};

/* The file chosen to answer a request, with what describes it. */
typedef struct Representation {
        int fd;
        struct stat st;
        const char *content_type;
        const char *encoding; /* "br", "gzip", or NULL for the file itself */
        time_t last_modified; /* never later than now (RFC 9110 §8.8.2.1) */
        char etag[64];
} Representation;

static const char *builtin_page(int status) {
        for (size_t i = 0; i < ELEMENTSOF(builtin_pages); i++)
                if (builtin_pages[i].status == status)
                        return builtin_pages[i].page;
        return builtin_pages[ELEMENTSOF(builtin_pages) - 1].page;
}

/* Faults answered with 5xx are logged at err (and ranges answered whole
 * for want of random bytes at warning), refusals caused by file
 * permissions at notice; each through its own limiter, shared by every
 * worker, so that a flood of such requests cannot fill the journal. */
static LogRateLimit fault_log_limit = LOG_RATELIMIT_INIT;
static LogRateLimit denied_log_limit = LOG_RATELIMIT_INIT;

/* Cannot overflow again: no request-supplied value goes into this head. */
static void respond_overflow(Conn *c) {
        (void) log_ratelimited_errno(LOG_ERR, &fault_log_limit, 0,
                                     "Response head does not fit in %zu bytes, answering 500.", sizeof(c->head));
        c->close_after = true;
        conn_head_start(c, 500);
        conn_head_append(c, "Content-Length: 0\r\n");
        (void) conn_head_finish(c);
}

static void respond_builtin(Conn *c, int status, const char *extra_headers) {
        const char *page = builtin_page(status);
        size_t len = strlen(page);

        conn_head_start(c, status);
        conn_head_append(c, "Content-Type: text/html\r\nContent-Length: %zu\r\n%s", len,
                         extra_headers ? extra_headers : "");
        if (!conn_head_finish(c))
                return respond_overflow(c);
        conn_body_mem(c, page, len);
}

/* The custom 404 page is sent as is: no validators or ranges, which would
 * describe the error page rather than the resource asked for. */
static bool respond_error_page(Conn *c, const char *page) {
        struct stat st;
        int fd = file_open_beneath(c->site->root_fd, page, &st);

        if (fd < 0 || !S_ISREG(st.st_mode)) {
                (void) safe_close(fd);
                return false;
        }
        conn_head_start(c, 404);
        c->file_fd = fd;
        conn_head_append(c, "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n",
                         mime_table_lookup(c->ctx->mime, page), (uint64_t) st.st_size);
        if (!conn_head_finish(c)) {
                respond_overflow(c);
                return true;
        }
        conn_body_file(c, 0, (uint64_t) st.st_size);
        return true;
}

void serve_error(Conn *c, int status) {
        const char *page = c->site->config.error_page_404;

        if (status == 404 && page[0] && respond_error_page(c, page))
                return;
        respond_builtin(c, status, status == 405 || status == 501 ? SERVE_ALLOW
                                   : status == 503                 ? "Retry-After: 1\r\n"
                                                                   : NULL);
}

/* A request path as it may appear in the log: bytes that are not printable
 * ASCII (a terminal escape, say) are written as \xHH. */
static const char *printable_path(const char *path, char *out, size_t size) {
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) path; *p && n + 5 < size; p++)
                if (*p >= 0x20 && *p < 0x7f && *p != '\\')
                        out[n++] = (char) *p;
                else
                        n += (size_t) snprintf(out + n, size - n, "\\x%02x", *p);
        out[n] = '\0';
        return out;
}

/* Answers a request whose file could not be opened. */
static void serve_open_failure(Conn *c, const char *path, int error) {
        int status = file_status_for_error(error);
        char shown[512];

        if (status >= 500)
                (void) log_ratelimited_errno(LOG_ERR, &fault_log_limit, error,
                                             "Failed to open %s beneath %s, answering %d: %m",
                                             printable_path(path, shown, sizeof(shown)), c->site->config.root,
                                             status);
        else if (error == -EACCES)
                (void) log_ratelimited_errno(LOG_NOTICE, &denied_log_limit, error,
                                             "Cannot open %s beneath %s, answering 403: %m",
                                             printable_path(path, shown, sizeof(shown)), c->site->config.root);
        serve_error(c, status);
}

static bool is_path_char(unsigned char ch) {
        /* RFC 3986 pchar, minus '%' (which we re-encode) */
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch != '\0' && strchr("-._~!$&'()*+,;=:@/", ch));
}

/* Percent-encodes a normalized path. Returns its length, or -ENAMETOOLONG. */
static ssize_t path_encode(const char *path, char *out, size_t size) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
                if (n + 4 > size)
                        return -ENAMETOOLONG;
                if (is_path_char(*p))
                        out[n++] = (char) *p;
                else {
                        out[n++] = '%';
                        out[n++] = hex[*p >> 4];
                        out[n++] = hex[*p & 15];
                }
        }
        out[n] = '\0';
        return (ssize_t) n;
}

/* The Location is built from the normalized path, never from the raw target:
 * "//evil.example/.." or "/\\evil.example" must not become a redirect to
 * another host. A normalized path starts with exactly one '/'. */
static void respond_redirect_slash(Conn *c, const char *path, Slice query) {
        char encoded[SERVE_MAX_LOCATION];
        char location[SERVE_MAX_LOCATION + 32];

        if (path_encode(path, encoded, sizeof(encoded)) < 0)
                return serve_error(c, 414);
        int n = snprintf(location, sizeof(location), "Location: %s/%s%.*s\r\n", encoded,
                         query.len ? "?" : "", (int) query.len, query.ptr);
        if (n < 0 || (size_t) n >= sizeof(location))
                return serve_error(c, 414);
        respond_builtin(c, 301, location);
}

static void respond_options(Conn *c) {
        conn_head_start(c, 200);
        conn_head_append(c, SERVE_ALLOW "Content-Length: 0\r\n");
        if (!conn_head_finish(c))
                respond_overflow(c);
}

/* Names starting with a dot (.git, .env, .htpasswd) are private by
 * convention; /.well-known/ (RFC 8615) is meant to be public. A normalized
 * path has no "." or ".." segments, so "/." always starts such a name. */
static bool path_has_dotfile(const char *path) {
        for (const char *p = path; (p = strstr(p, "/.")); p++) {
                const char *name = p + 1;
                size_t len = strcspn(name, "/");
                if (!(len == 11 && strncmp(name, ".well-known", 11) == 0))
                        return true;
        }
        return false;
}

/* A qvalue (RFC 9110 §12.4.2) in thousandths; 1000 when absent, -1 when
 * malformed (then the element is ignored). */
static int parse_qvalue(const char *p, const char *end) {
        int q = 0, scale = 1000;

        if (p >= end || (*p != '0' && *p != '1'))
                return -1;
        q = (*p++ - '0') * 1000;
        if (p < end && *p == '.')
                for (p++; p < end && *p >= '0' && *p <= '9' && scale > 1; p++)
                        q += (*p - '0') * (scale /= 10);
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        return p == end && q <= 1000 ? q : -1;
}

/* Splits "token;a=b;q=0.5" into the token and its q (1000 without one). */
static int coding_q(Slice element, Slice *ret_token) {
        const char *end = element.ptr + element.len;
        const char *p = memchr(element.ptr, ';', element.len);
        int q = 1000;

        *ret_token = (Slice) { element.ptr, p ? (size_t) (p - element.ptr) : element.len };
        while (ret_token->len > 0 && (ret_token->ptr[ret_token->len - 1] == ' ' || ret_token->ptr[ret_token->len - 1] == '\t'))
                ret_token->len--;
        while (p && p < end) {
                const char *param = p + 1, *next = memchr(param, ';', (size_t) (end - param));
                const char *param_end = next ? next : end;
                while (param < param_end && (*param == ' ' || *param == '\t'))
                        param++;
                if (param_end - param >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
                        q = parse_qvalue(param + 2, param_end);
                p = next;
        }
        return q;
}

/* The q the client gives a content coding: its own element's, else the
 * "*" element's, else 0 (RFC 9110 §12.5.3). */
static int accepted_q(const HttpRequest *req, const char *coding) {
        int star = 0, own = -1;

        for (size_t i = 0; i < req->n_headers; i++) {
                const HttpHeader *h = &req->headers[i];
                Slice list = h->value, element, token;

                if (!http_header_is(h, "Accept-Encoding"))
                        continue;
                while (http_list_next(&list, &element)) {
                        int q = coding_q(element, &token);
                        if (q < 0)
                                continue;
                        if (http_slice_caseeq(token, coding))
                                own = q;
                        else if (http_slice_caseeq(token, "*"))
                                star = q;
                }
        }
        return own >= 0 ? own : star;
}

/* Swaps in FILE.br or FILE.gz when it exists beside FILE, is a regular file
 * and is not older (a stale variant would serve old content). */
static bool try_variant(Conn *c, const char *path, const char *suffix, const char *encoding,
                        Representation *rep) {
        char name[SERVE_MAX_PATH + 8];
        struct stat st;

        if (str_join(name, sizeof(name), path, suffix) < 0)
                return false;
        int fd = file_open_beneath(c->site->root_fd, name, &st);
        if (fd < 0)
                return false;
        if (!S_ISREG(st.st_mode) || st.st_mtim.tv_sec < rep->st.st_mtim.tv_sec) {
                (void) safe_close(fd);
                return false;
        }
        (void) safe_close(rep->fd);
        rep->fd = fd;
        rep->st = st;
        rep->encoding = encoding;
        return true;
}

/* The client's preference decides between br and gzip; on a tie br wins,
 * being smaller. A variant the client gives q=0 is never sent. */
static void choose_variant(Conn *c, const HttpRequest *req, const char *path, Representation *rep) {
        if (!c->site->config.precompressed)
                return;
        int q_br = accepted_q(req, "br"), q_gzip = accepted_q(req, "gzip");
        bool br_first = q_br >= q_gzip;

        if (br_first && q_br > 0 && try_variant(c, path, ".br", "br", rep))
                return;
        if (q_gzip > 0 && try_variant(c, path, ".gz", "gzip", rep))
                return;
        if (!br_first && q_br > 0)
                (void) try_variant(c, path, ".br", "br", rep);
}

/* Lowercase hex without leading zeros, as "%" PRIx64 writes it. */
static char *put_hex(char *out, uint64_t v) {
        char digits[16];
        size_t n = 0;

        do {
                digits[n++] = "0123456789abcdef"[v & 0xf];
                v >>= 4;
        } while (v > 0);
        while (n > 0)
                *out++ = digits[--n];
        return out;
}

/* "MTIME_NS-SIZE" in hex, with -br or -gz for a variant; formatted by hand,
 * being part of every response. */
static void make_etag(Representation *rep) {
        uint64_t mtime_ns = (uint64_t) rep->st.st_mtim.tv_sec * 1000000000U + (uint64_t) rep->st.st_mtim.tv_nsec;
        const char *suffix = !rep->encoding ? "" : strcmp(rep->encoding, "br") == 0 ? "-br" : "-gz";
        char *p = rep->etag;

        *p++ = '"';
        p = put_hex(p, mtime_ns);
        *p++ = '-';
        p = put_hex(p, (uint64_t) rep->st.st_size);
        p = stpcpy(p, suffix);
        *p++ = '"';
        *p = '\0';
}

/* What 200, 206 and 304 responses share (RFC 9110 §15.4.5). */
static void append_validators(Conn *c, const Representation *rep) {
        char last_modified[30];
        const Config *config = &c->site->config;

        http_format_date(rep->last_modified, last_modified);
        conn_head_add(c, "Last-Modified: ");
        conn_head_add(c, last_modified);
        conn_head_add(c, "\r\nETag: ");
        conn_head_add(c, rep->etag);
        conn_head_add(c, "\r\n");
        if (config->cache_max_age_sec >= 0) {
                conn_head_add(c, "Cache-Control: max-age=");
                conn_head_add_u64(c, (uint64_t) config->cache_max_age_sec);
                conn_head_add(c, "\r\n");
        }
        if (config->precompressed)
                conn_head_add(c, SERVE_VARY);
}

static void append_entity(Conn *c, const Representation *rep, uint64_t length) {
        conn_head_add(c, "Content-Type: ");
        conn_head_add(c, rep->content_type);
        conn_head_add(c, "\r\nContent-Length: ");
        conn_head_add_u64(c, length);
        conn_head_add(c, "\r\nAccept-Ranges: bytes\r\n");
        if (rep->encoding) {
                conn_head_add(c, "Content-Encoding: ");
                conn_head_add(c, rep->encoding);
                conn_head_add(c, "\r\n");
        }
        append_validators(c, rep);
}

static void respond_full(Conn *c, Representation *rep) {
        conn_head_start(c, 200);
        c->file_fd = rep->fd;
        append_entity(c, rep, (uint64_t) rep->st.st_size);
        if (!conn_head_finish(c))
                return respond_overflow(c);
        conn_body_file(c, 0, (uint64_t) rep->st.st_size);
}

static void respond_not_modified(Conn *c, Representation *rep) {
        conn_head_start(c, 304);
        (void) safe_close(rep->fd);
        append_validators(c, rep);
        if (!conn_head_finish(c))
                respond_overflow(c);
}

static void respond_unsatisfiable(Conn *c, Representation *rep) {
        char content_range[128];

        (void) safe_close(rep->fd);
        snprintf(content_range, sizeof(content_range), "Content-Range: bytes */%" PRIu64 "\r\n%s",
                 (uint64_t) rep->st.st_size, c->site->config.precompressed ? SERVE_VARY : "");
        respond_builtin(c, 416, content_range);
}

static void respond_range(Conn *c, Representation *rep, const Range *r) {
        conn_head_start(c, 206);
        c->file_fd = rep->fd;
        append_entity(c, rep, r->last - r->first + 1);
        conn_head_append(c, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", r->first, r->last,
                         (uint64_t) rep->st.st_size);
        if (!conn_head_finish(c))
                return respond_overflow(c);
        conn_body_file(c, r->first, r->last - r->first + 1);
}

/* A boundary must not occur in the parts (RFC 2046 §5.1.1). 128 bits from
 * the kernel's random pool, fresh for every response, make that as good as
 * certain even for a file crafted against us, and say nothing about the
 * process: no address, time or counter goes in. Returns 0, or -errno when
 * the pool cannot give them yet (early at boot) or a filter refuses. */
static int make_boundary(char out[static SERVE_BOUNDARY_SIZE]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t bytes[SERVE_BOUNDARY_BYTES];
        char *p = stpcpy(out, SERVE_BOUNDARY_PREFIX);

        ssize_t n = getrandom(bytes, sizeof(bytes), GRND_NONBLOCK);
        if (n < 0)
                return -errno;
        if ((size_t) n != sizeof(bytes)) /* not for up to 256 bytes, once the pool is ready */
                return -EIO;
        for (size_t i = 0; i < sizeof(bytes); i++) {
                *p++ = hex[bytes[i] >> 4];
                *p++ = hex[bytes[i] & 15];
        }
        *p = '\0';
        return 0;
}

/* Formats every delimiter and part header into one buffer; the body is then
 * delimiter, file span, delimiter, file span, ..., closing delimiter. */
static char *multipart_text(const Representation *rep, const Range *ranges, int n, const char *boundary,
                            size_t lengths[static RANGE_MAX + 1], uint64_t *ret_total) {
        size_t size = (size_t) (n + 1) * (strlen(boundary) + strlen(rep->content_type) + 128);
        char *text = malloc(size);
        size_t used = 0;
        uint64_t total = 0;

        if (!text)
                return NULL;
        for (int i = 0; i < n; i++) {
                int len = snprintf(text + used, size - used,
                                   "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                                   "/%" PRIu64 "\r\n\r\n", i > 0 ? "\r\n" : "", boundary, rep->content_type,
                                   ranges[i].first, ranges[i].last, (uint64_t) rep->st.st_size);
                lengths[i] = (size_t) len;
                used += (size_t) len;
                total += (size_t) len + ranges[i].last - ranges[i].first + 1;
        }
        lengths[n] = (size_t) snprintf(text + used, size - used, "\r\n--%s--\r\n", boundary);
        *ret_total = total + lengths[n];
        return text;
}

/* Without a boundary nobody can guess, the whole file is sent: a server
 * may always ignore Range (RFC 9110 §14.2). */
static void respond_multipart(Conn *c, Representation *rep, const Range *ranges, int n) {
        char boundary[SERVE_BOUNDARY_SIZE];
        size_t lengths[RANGE_MAX + 1];
        uint64_t total;

        int r = make_boundary(boundary);
        if (r < 0) {
                (void) log_ratelimited_errno(LOG_WARNING, &fault_log_limit, r,
                                             "Failed to get random bytes for a multipart boundary, "
                                             "answering a range request with the whole file: %m");
                return respond_full(c, rep);
        }
        char *text = multipart_text(rep, ranges, n, boundary, lengths, &total);
        if (!text) {
                (void) safe_close(rep->fd);
                (void) log_ratelimited_errno(LOG_ERR, &fault_log_limit, ENOMEM,
                                             "Failed to build a multipart/byteranges body, answering 500: %m");
                return serve_error(c, 500);
        }
        conn_head_start(c, 206);
        c->file_fd = rep->fd;
        c->part_text = text;
        conn_head_append(c, "Content-Type: multipart/byteranges; boundary=%s\r\n"
                         "Content-Length: %" PRIu64 "\r\nAccept-Ranges: bytes\r\n", boundary, total);
        append_validators(c, rep);
        if (!conn_head_finish(c))
                return respond_overflow(c);
        for (int i = 0; i < n; i++) {
                conn_body_mem(c, text, lengths[i]);
                text += lengths[i];
                conn_body_file(c, ranges[i].first, ranges[i].last - ranges[i].first + 1);
        }
        conn_body_mem(c, text, lengths[n]);
}

/* Range applies to GET only (RFC 9110 §14.2), and only while If-Range, if
 * any, still matches. An encoded variant is not split into a multipart
 * body, where its Content-Encoding would wrongly cover the delimiters. */
static void respond_representation(Conn *c, const HttpRequest *req, Representation *rep, time_t now) {
        Validators v = { .etag = { rep->etag, strlen(rep->etag) }, .last_modified = rep->last_modified };
        Range ranges[RANGE_MAX];

        int status = precondition_check(req, &v, true, now);
        if (status == 304)
                return respond_not_modified(c, rep);
        if (status != 0) {
                (void) safe_close(rep->fd);
                return respond_builtin(c, status, c->site->config.precompressed ? SERVE_VARY : NULL);
        }
        const HttpHeader *range = http_request_header(req, "Range", NULL);
        if (req->method != HTTP_GET || !range || !precondition_if_range(req, &v))
                return respond_full(c, rep);

        int n = range_parse(range->value, (uint64_t) rep->st.st_size, ranges, RANGE_MAX);
        if (n == -ERANGE)
                return respond_unsatisfiable(c, rep);
        if (n == 1)
                return respond_range(c, rep, &ranges[0]);
        if (n > 1 && !rep->encoding)
                return respond_multipart(c, rep, ranges, n);
        respond_full(c, rep);
}

static void serve_file(Conn *c, const HttpRequest *req, int fd, const struct stat *st, const char *path) {
        Representation rep = {
                .fd = fd,
                .st = *st,
                .content_type = mime_table_lookup(c->ctx->mime, path),
        };

        time_t now = time(NULL);

        choose_variant(c, req, path, &rep);
        make_etag(&rep);
        rep.last_modified = MIN(rep.st.st_mtim.tv_sec, now);
        respond_representation(c, req, &rep, now);
}

/* A directory request ("/dir/") is answered with its index file. A directory
 * without one is 403, as nginx does: it exists, but we do not list it. */
static void serve_directory(Conn *c, const HttpRequest *req, const char *dir_path) {
        char path[SERVE_MAX_PATH + 300];
        struct stat st;

        if (str_join(path, sizeof(path), dir_path, c->site->config.index) < 0)
                return serve_error(c, 414);
        int fd = file_open_beneath(c->site->root_fd, path, &st);
        if (fd == -ENOENT)
                return serve_error(c, 403);
        if (fd < 0)
                return serve_open_failure(c, path, fd);
        if (!S_ISREG(st.st_mode)) {
                (void) safe_close(fd);
                return serve_error(c, 403);
        }
        serve_file(c, req, fd, &st, path);
}

static void serve_target(Conn *c, const HttpRequest *req) {
        char path[SERVE_MAX_PATH];
        Slice raw_path, query;
        struct stat st;

        if (http_target_split(req->target, &raw_path, &query) < 0)
                return serve_error(c, 400);
        ssize_t len = http_path_normalize(raw_path, path, sizeof(path));
        if (len == -ENAMETOOLONG)
                return serve_error(c, 414);
        if (len < 0)
                return serve_error(c, 400);
        if (!c->site->config.allow_dotfiles && path_has_dotfile(path))
                return serve_error(c, 404);

        int fd = file_open_beneath(c->site->root_fd, path, &st);
        if (fd < 0)
                return serve_open_failure(c, path, fd);
        if (S_ISREG(st.st_mode)) {
                if (path[len - 1] == '/') { /* "/file.txt/" names no directory */
                        (void) safe_close(fd);
                        return serve_error(c, 404);
                }
                return serve_file(c, req, fd, &st, path);
        }
        (void) safe_close(fd);
        if (path[len - 1] != '/')
                return respond_redirect_slash(c, path, query);
        serve_directory(c, req, path);
}

void serve_request(Conn *c, const HttpRequest *req) {
        switch (req->method) {
        case HTTP_GET:
        case HTTP_HEAD:
                return serve_target(c, req);
        case HTTP_OPTIONS:
                return respond_options(c);
        case HTTP_METHOD_OTHER:
                return serve_error(c, 501);
        default:
                return serve_error(c, 405);
        }
}
