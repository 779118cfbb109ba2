/* SPDX-License-Identifier: MIT */
/*
 * DESIGN
 *
 * conn_run() is the whole life of a connection on a worker, one turn at a
 * time. A turn alternates between two steps until the socket would block:
 *
 *   responding:  push the response head, then the body (a built-in page from
 *                static storage, or the file with sendfile);
 *   reading:     parse the next request from the buffer, reading more bytes
 *                when the head is incomplete.
 *
 * Requests are answered strictly in order, so pipelining needs no queue: a
 * pipelined request simply waits in the buffer until the previous response
 * is out. A turn also ends after CONN_MAX_REQUESTS_PER_TURN responses or
 * CONN_MAX_BYTES_PER_TURN body bytes, so one fast client cannot keep a worker
 * from everybody else.
 *
 * The response head is formatted with copies of everything it needs before
 * the request's bytes are dropped from the buffer, because the parsed request
 * points into that buffer.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define CONN_MAX_PATH 4096
#define CONN_MAX_LOCATION 1024 /* longer redirects get 414 */
#define CONN_HEAD_RESERVE 32   /* for head_finish()'s longest ending */
#define CONN_SENDFILE_CHUNK (1U << 20)

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
        { 413, PAGE(413, "Content Too Large") },
        { 414, PAGE(414, "URI Too Long") },
        { 431, PAGE(431, "Request Header Fields Too Large") },
        { 500, PAGE(500, "Internal Server Error") },
        { 501, PAGE(501, "Not Implemented") },
        { 505, PAGE(505, "HTTP Version Not Supported") },
};

/* What the current request asked for that shapes its response. */
typedef struct ResponseInfo {
        bool head_only;
        bool http10;
} ResponseInfo;

Site *serve_context_get_site(ServeContext *ctx) {
        pthread_mutex_lock(&ctx->site_lock);
        Site *site = site_ref(ctx->site);
        pthread_mutex_unlock(&ctx->site_lock);
        return site;
}

void serve_context_set_site(ServeContext *ctx, Site *site) {
        atomic_store(&ctx->max_header_bytes, site->config.max_header_bytes);
        pthread_mutex_lock(&ctx->site_lock);
        Site *old = ctx->site;
        ctx->site = site;
        pthread_mutex_unlock(&ctx->site_lock);
        site_unref(old);
}

Conn *conn_new(int fd, ServeContext *ctx, uint64_t now) {
        Conn *c = malloc(sizeof(Conn));
        if (!c)
                return NULL;
        *c = (Conn) {
                .fd = fd,
                .ctx = ctx,
                .file_fd = -EBADF,
                .request_started_usec = now,
        };
        return c;
}

static size_t copy_field(char *dst, size_t size, const char *src, size_t len) {
        len = MIN(len, size);
        memcpy(dst, src, len);
        return len;
}

static void record_header(const HttpRequest *req, const char *name, char *dst, size_t size, size_t *ret_len) {
        const HttpHeader *h = http_request_header(req, name, NULL);
        *ret_len = h ? copy_field(dst, size, h->value.ptr, h->value.len) : 0;
}

/* Copies what the access log line needs before the request bytes go. */
static void record_request(Conn *c, const HttpRequest *req) {
        ConnRecord *r = c->record;

        if (!r)
                return;
        r->started_usec = now_usec();
        r->time = time(NULL);
        r->method_len = r->target_len = r->user_agent_len = r->referer_len = 0;
        if (!req) /* unparsable: logged as "-" */
                return;
        r->method_len = copy_field(r->method, sizeof(r->method), req->method_name.ptr, req->method_name.len);
        r->target_len = copy_field(r->target, sizeof(r->target), req->target.ptr, req->target.len);
        r->minor_version = req->minor_version;
        record_header(req, "User-Agent", r->user_agent, sizeof(r->user_agent), &r->user_agent_len);
        record_header(req, "Referer", r->referer, sizeof(r->referer), &r->referer_len);
}

static void record_write(Conn *c) {
        const ConnRecord *r = c->record;

        if (!r)
                return;
        AccessLogEntry e = {
                .remote_addr = r->remote_addr,
                .method = r->method_len ? r->method : NULL,
                .method_len = r->method_len,
                .target = r->target,
                .target_len = r->target_len,
                .minor_version = r->minor_version,
                .status = c->status,
                .bytes = c->body_mem ? c->body_mem_sent : c->file_fd >= 0 ? (uint64_t) c->file_pos : 0,
                .duration_usec = now_usec() - r->started_usec,
                .referer = r->referer_len ? r->referer : NULL,
                .referer_len = r->referer_len,
                .user_agent = r->user_agent_len ? r->user_agent : NULL,
                .user_agent_len = r->user_agent_len,
                .time = r->time,
        };
        /* A full disk must not cost a log line per request: the log's own
         * failure is not logged here. */
        (void) access_log_write(c->ctx->access_log, &e);
}

void conn_record_peer(Conn *c) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (!c->ctx->access_log)
                return;
        c->record = calloc(1, sizeof(ConnRecord));
        if (!c->record)
                return; /* the line is lost, the request is not */
        if (getpeername(c->fd, (struct sockaddr *) &ss, &len) < 0)
                snprintf(c->record->remote_addr, sizeof(c->record->remote_addr), "-");
        else if (ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, c->record->remote_addr,
                          sizeof(c->record->remote_addr));
        else if (ss.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, c->record->remote_addr,
                          sizeof(c->record->remote_addr));
        else
                snprintf(c->record->remote_addr, sizeof(c->record->remote_addr), "unix");
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        if (c->responding)
                record_write(c);
        free(c->record);
        (void) safe_close(c->file_fd);
        (void) safe_close(c->fd);
        free(c->in);
        free(c);
        return NULL;
}

static const char *builtin_page(int status) {
        for (size_t i = 0; i < ELEMENTSOF(builtin_pages); i++)
                if (builtin_pages[i].status == status)
                        return builtin_pages[i].page;
        return builtin_pages[ELEMENTSOF(builtin_pages) - 1].page;
}

/* The Date header changes once a second; format it once per second per
 * thread instead of once per response. */
static const char *cached_date(void) {
        static __thread time_t cached_at = -1;
        static __thread char text[30];
        time_t t = time(NULL);

        if (t != cached_at) {
                http_format_date(t, text);
                cached_at = t;
        }
        return text;
}

/* Appends to the response head. A head that does not fit is never sent cut
 * short (that would break the framing): the overflow is remembered, and the
 * caller answers 500 instead. */
_printf_(2, 3) static void head_append(Conn *c, const char *format, ...) {
        va_list ap;
        size_t room = sizeof(c->head) - CONN_HEAD_RESERVE - c->head_len;

        va_start(ap, format);
        int n = vsnprintf(c->head + c->head_len, room, format, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= room) {
                c->head_overflow = true;
                return;
        }
        c->head_len += (size_t) n;
}

static void head_start(Conn *c, int status) {
        const char *reason = http_status_reason(status);

        c->head_len = c->head_sent = 0;
        c->head_overflow = false;
        c->status = status;
        c->responding = true;
        head_append(c, "HTTP/1.1 %d %s\r\nServer: webpoold\r\nDate: %s\r\n",
                    status, reason ? reason : "Unknown", cached_date());
        if (status >= 500)
                atomic_fetch_add_explicit(&c->ctx->n_5xx, 1, memory_order_relaxed);
        else if (status >= 400)
                atomic_fetch_add_explicit(&c->ctx->n_4xx, 1, memory_order_relaxed);
}

/* Ends the head; the reserve kept by head_append() guarantees it fits.
 * Returns false if the head overflowed before. */
static bool head_finish(Conn *c, const ResponseInfo *info) {
        const char *end = c->close_after ? "Connection: close\r\n\r\n"
                          : info->http10 ? "Connection: keep-alive\r\n\r\n"
                                         : "\r\n";
        size_t len = strlen(end);

        if (c->head_overflow)
                return false;
        memcpy(c->head + c->head_len, end, len);
        c->head_len += len;
        return true;
}

static void respond_head_overflow(Conn *c, const ResponseInfo *info);

static void respond_builtin(Conn *c, int status, const ResponseInfo *info, const char *extra) {
        const char *page = builtin_page(status);
        size_t len = strlen(page);

        head_start(c, status);
        head_append(c, "Content-Type: text/html\r\nContent-Length: %zu\r\n%s", len, extra ? extra : "");
        if (!head_finish(c, info))
                return respond_head_overflow(c, info);
        if (!info->head_only) {
                c->body_mem = page;
                c->body_mem_len = len;
                c->body_mem_sent = 0;
        }
}

static void respond_file(Conn *c, int status, int fd, const struct stat *st,
                         const char *name, const ResponseInfo *info) {
        char last_modified[30];

        head_start(c, status);
        head_append(c, "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n",
                    mime_table_lookup(c->ctx->mime, name), (uint64_t) st->st_size);
        /* Validators describe the resource asked for; an error page's own
         * would mislead caches, so only a 200 carries them. */
        if (status == 200) {
                http_format_date(st->st_mtim.tv_sec, last_modified);
                head_append(c, "Last-Modified: %s\r\nETag: \"%" PRIx64 "-%" PRIx64 "\"\r\n",
                            last_modified,
                            (uint64_t) st->st_mtim.tv_sec * 1000000000U + (uint64_t) st->st_mtim.tv_nsec,
                            (uint64_t) st->st_size);
        }
        if (!head_finish(c, info)) {
                (void) safe_close(fd);
                return respond_head_overflow(c, info);
        }
        if (info->head_only || st->st_size == 0) {
                (void) safe_close(fd);
                return;
        }
        c->file_fd = fd;
        c->file_pos = 0;
        c->file_end = st->st_size;
}

/* Cannot overflow again: no caller-supplied value goes into this head. */
static void respond_head_overflow(Conn *c, const ResponseInfo *info) {
        log_warning("Response head does not fit in %zu bytes, answering 500.", sizeof(c->head));
        c->close_after = true;
        respond_builtin(c, 500, info, NULL);
}

static void respond_error(Conn *c, int status, const ResponseInfo *info) {
        const char *page = c->site->config.error_page_404;

        if (status == 404 && page[0]) {
                struct stat st;
                int fd = file_open_beneath(c->site->root_fd, page, &st);
                if (fd >= 0 && S_ISREG(st.st_mode))
                        return respond_file(c, 404, fd, &st, page, info);
                (void) safe_close(fd);
        }
        if (status == 405 || status == 501)
                return respond_builtin(c, status, info, "Allow: GET, HEAD\r\n");
        respond_builtin(c, status, info, NULL);
}

static bool is_path_char(unsigned char ch) {
        /* RFC 3986 pchar, minus '%' (which we re-encode) */
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               strchr("-._~!$&'()*+,;=:@/", ch);
}

/* Percent-encodes a normalized path. Returns its length, or -ENAMETOOLONG. */
static ssize_t path_encode(const char *path, char *out, size_t size) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
                if (n + 4 > size)
                        return -ENAMETOOLONG;
                if (*p != '\0' && is_path_char(*p))
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
static void respond_redirect_slash(Conn *c, const char *path, Slice query, const ResponseInfo *info) {
        char encoded[CONN_MAX_LOCATION];
        char location[CONN_MAX_LOCATION + 32];

        if (path_encode(path, encoded, sizeof(encoded)) < 0)
                return respond_error(c, 414, info);
        int n = snprintf(location, sizeof(location), "Location: %s/%s%.*s\r\n", encoded,
                         query.len ? "?" : "", (int) query.len, query.ptr);
        if (n < 0 || (size_t) n >= sizeof(location))
                return respond_error(c, 414, info);
        respond_builtin(c, 301, info, location);
}

/* A directory request ("/dir/") is answered with its index file. A directory
 * without one is 403, as nginx does: it exists, but we do not list it. */
static void serve_directory(Conn *c, const char *dir_path, const ResponseInfo *info) {
        char path[CONN_MAX_PATH + 300];
        struct stat st;
        const char *index = c->site->config.index;

        int n = snprintf(path, sizeof(path), "%s%s", dir_path, index);
        if (n < 0 || (size_t) n >= sizeof(path))
                return respond_error(c, 414, info);

        int fd = file_open_beneath(c->site->root_fd, path, &st);
        if (fd == -ENOENT)
                return respond_error(c, 403, info);
        if (fd < 0)
                return respond_error(c, file_status_for_error(fd), info);
        if (!S_ISREG(st.st_mode)) {
                (void) safe_close(fd);
                return respond_error(c, 403, info);
        }
        respond_file(c, 200, fd, &st, path, info);
}

static void serve_target(Conn *c, Slice target, const ResponseInfo *info) {
        char path[CONN_MAX_PATH];
        Slice raw_path, query;
        struct stat st;

        if (http_target_split(target, &raw_path, &query) < 0)
                return respond_error(c, 400, info);
        ssize_t len = http_path_normalize(raw_path, path, sizeof(path));
        if (len == -ENAMETOOLONG)
                return respond_error(c, 414, info);
        if (len < 0)
                return respond_error(c, 400, info);

        int fd = file_open_beneath(c->site->root_fd, path, &st);
        if (fd < 0)
                return respond_error(c, file_status_for_error(fd), info);
        if (S_ISREG(st.st_mode)) {
                if (path[len - 1] == '/') { /* "/file.txt/" names no directory */
                        (void) safe_close(fd);
                        return respond_error(c, 404, info);
                }
                return respond_file(c, 200, fd, &st, path, info);
        }
        (void) safe_close(fd);
        if (path[len - 1] != '/')
                return respond_redirect_slash(c, path, query, info);
        serve_directory(c, path, info);
}

static bool want_keep_alive(const Conn *c, const HttpRequest *req) {
        bool has_close = false, has_keep_alive = false;

        for (size_t i = 0; i < req->n_headers; i++) {
                const HttpHeader *f = &req->headers[i];
                if (f->name.len != 10 || strncasecmp(f->name.ptr, "Connection", 10) != 0)
                        continue;
                has_close |= http_list_has_token(f->value, "close");
                has_keep_alive |= http_list_has_token(f->value, "keep-alive");
        }
        if (has_close || atomic_load_explicit(&c->ctx->draining, memory_order_relaxed) ||
            c->site->config.keepalive_timeout_usec == 0)
                return false;
        return req->minor_version >= 1 || has_keep_alive;
}

static int parse_content_length(Slice v, uint64_t *ret) {
        uint64_t n = 0;

        if (v.len == 0 || v.len > 19)
                return -EBADMSG;
        for (size_t i = 0; i < v.len; i++) {
                if (v.ptr[i] < '0' || v.ptr[i] > '9')
                        return -EBADMSG;
                n = n * 10 + (uint64_t) (v.ptr[i] - '0');
        }
        *ret = n;
        return 0;
}

/* Checks what RFC 9112 requires of a request's framing and Host, and arranges
 * for a body we do not use to be dropped. Returns 0 or an error status. */
static int check_framing(Conn *c, const HttpRequest *req) {
        size_t n_host, n_length;
        uint64_t length = 0;

        (void) http_request_header(req, "Host", &n_host);
        if (n_host > 1 || (req->minor_version >= 1 && n_host == 0))
                return 400;
        if (http_request_header(req, "Transfer-Encoding", NULL))
                return 501;

        const HttpHeader *cl = http_request_header(req, "Content-Length", &n_length);
        if (n_length > 1)
                return 400;
        if (cl && parse_content_length(cl->value, &length) < 0)
                return 400;
        if (length > CONN_MAX_DISCARD_BODY)
                return 413;
        /* A client that sent "Expect: 100-continue" waits for us before
         * sending the body, and after our final answer may never send it:
         * the next bytes cannot be trusted to be either. Close instead. */
        if (length > 0 && http_request_header(req, "Expect", NULL)) {
                c->close_after = true;
                return 0;
        }
        c->discard_body = length;
        return 0;
}

static void handle_request(Conn *c, const HttpRequest *req) {
        ResponseInfo info = {
                .head_only = req->method == HTTP_HEAD,
                .http10 = req->minor_version == 0,
        };

        atomic_fetch_add_explicit(&c->ctx->n_requests, 1, memory_order_relaxed);
        record_request(c, req);
        c->close_after = !want_keep_alive(c, req);

        int status = check_framing(c, req);
        if (status != 0) {
                c->close_after = true; /* the framing is not to be trusted */
                return respond_error(c, status, &info);
        }
        if (req->method == HTTP_METHOD_OTHER)
                return respond_error(c, 501, &info);
        if (req->method != HTTP_GET && req->method != HTTP_HEAD)
                return respond_error(c, 405, &info);
        serve_target(c, req->target, &info);
}

static void buffer_consume(Conn *c, size_t n) {
        if (n == 0)
                return;
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
}

static void reject_request(Conn *c, ssize_t error) {
        ResponseInfo info = {};
        /* Still in the request line when the buffer filled: 414. */
        int status = error == -EAGAIN ? (memchr(c->in, '\n', c->in_len) ? 431 : 414)
                                      : http_status_for_error((int) error);

        atomic_fetch_add_explicit(&c->ctx->n_requests, 1, memory_order_relaxed);
        record_request(c, NULL);
        c->close_after = true;
        c->in_len = 0;
        respond_error(c, status, &info);
}

/* Starts the response to the next buffered request. Returns 1 when a response
 * was started, -EAGAIN when more bytes are needed. */
static int conn_next_request(Conn *c) {
        HttpRequest req;

        if (c->discard_body > 0) {
                size_t n = (size_t) MIN((uint64_t) c->in_len, c->discard_body);
                buffer_consume(c, n);
                c->discard_body -= n;
                if (c->discard_body > 0)
                        return -EAGAIN;
                c->request_started_usec = now_usec();
                c->parse_ready = true;
        }
        if (c->in_len == 0)
                return -EAGAIN;
        bool full = c->in_len >= c->in_cap;
        if (!c->parse_ready && !full)
                return -EAGAIN;
        c->parse_ready = false;

        ssize_t r = http_parse_request(c->in, c->in_len, &req);
        if (r == -EAGAIN && !full)
                return -EAGAIN;

        Site *site = serve_context_get_site(c->ctx);
        c->site = site;
        if (r < 0)
                reject_request(c, r);
        else {
                handle_request(c, &req);
                buffer_consume(c, (size_t) r);
                c->parse_ready = true; /* a pipelined head may follow */
        }
        c->site = site_unref(site);
        return 1;
}

/* True if the n bytes just read at buf + old_len may complete a head: they
 * hold, with up to 3 bytes before them, an empty line. */
static bool may_end_head(const char *buf, size_t old_len, size_t n) {
        size_t from = old_len >= 3 ? old_len - 3 : 0;
        for (size_t i = from; i + 1 < old_len + n; i++)
                if (buf[i] == '\n' && (buf[i + 1] == '\n' ||
                                        (buf[i + 1] == '\r' && i + 2 < old_len + n && buf[i + 2] == '\n')))
                        return true;
        return false;
}

/* Reads what the socket has. Returns 0 after reading, -EAGAIN when nothing is
 * there, another negative errno on EOF (-ECONNRESET) or failure. */
static int conn_fill(Conn *c) {
        if (!c->in) {
                /* A reload changes the limit for buffers allocated after it. */
                c->in_cap = atomic_load(&c->ctx->max_header_bytes);
                c->in = malloc(c->in_cap);
                if (!c->in)
                        return -ENOMEM;
        }
        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (n > 0) {
                        if (c->in_len == 0 && c->n_requests > 0 && c->discard_body == 0)
                                c->request_started_usec = now_usec();
                        /* Parsing again only pays when a head may have ended,
                         * or to reject garbage early on the first segment;
                         * re-parsing on every segment would be quadratic. */
                        c->parse_ready |= c->in_len == 0 || may_end_head(c->in, c->in_len, (size_t) n);
                        c->in_len += (size_t) n;
                        return 0;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno != EINTR)
                        return -errno;
        }
}

static int send_mem(Conn *c, const char *p, size_t len, size_t *sent, bool more) {
        while (*sent < len) {
                ssize_t n = send(c->fd, p + *sent, len - *sent, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                *sent += (size_t) n;
        }
        return 0;
}

static int send_file(Conn *c, size_t *budget_used) {
        while (c->file_pos < c->file_end) {
                if (*budget_used >= CONN_MAX_BYTES_PER_TURN)
                        return -EBUSY;
                size_t chunk = (size_t) MIN((uint64_t) (c->file_end - c->file_pos), CONN_SENDFILE_CHUNK);
                ssize_t n = sendfile(c->fd, c->file_fd, &c->file_pos, chunk);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0) {
                        /* The file shrank under us. Closing is the only way to
                         * tell the client the body is short. */
                        log_warning("File shrank while being sent, closing connection.");
                        return -EIO;
                }
                *budget_used += (size_t) n;
        }
        return 0;
}

/* Returns 0 when the response is out, -EAGAIN when the socket is full,
 * -EBUSY when this turn's budget is spent, another negative errno on failure. */
static int conn_send(Conn *c, size_t *budget_used) {
        bool has_body = c->body_mem || c->file_fd >= 0;
        int r = send_mem(c, c->head, c->head_len, &c->head_sent, has_body);
        if (r < 0)
                return r;
        if (c->body_mem) {
                r = send_mem(c, c->body_mem, c->body_mem_len, &c->body_mem_sent, false);
                if (r < 0)
                        return r;
        }
        if (c->file_fd >= 0)
                return send_file(c, budget_used);
        return 0;
}

static void conn_end_response(Conn *c) {
        record_write(c);
        c->file_fd = safe_close(c->file_fd);
        c->body_mem = NULL;
        c->responding = false;
        c->n_requests++;
        /* A pipelined head already in the buffer has its time start now,
         * not when it arrived behind a long download. */
        c->request_started_usec = now_usec();
}

ConnVerdict conn_run(Conn *c) {
        size_t budget_used = 0;
        unsigned responses = 0;

        for (;;) {
                if (c->responding) {
                        int r = conn_send(c, &budget_used);
                        if (r == -EAGAIN)
                                return CONN_PARK_WRITE;
                        if (r == -EBUSY)
                                return CONN_REQUEUE;
                        if (r < 0)
                                return CONN_CLOSE;
                        conn_end_response(c);
                        if (c->close_after)
                                return CONN_LINGER;
                        if (++responses >= CONN_MAX_REQUESTS_PER_TURN)
                                return CONN_REQUEUE;
                }
                if (conn_next_request(c) > 0)
                        continue;
                int r = conn_fill(c);
                if (r == -EAGAIN) {
                        if (c->in_len == 0 && c->discard_body == 0) {
                                /* Idle connections keep no buffer: thousands of
                                 * them should cost as little as possible. */
                                free(c->in);
                                c->in = NULL;
                        }
                        return CONN_PARK_READ;
                }
                if (r < 0)
                        return CONN_CLOSE;
        }
}

bool conn_is_idle(const Conn *c) {
        char byte;

        if (c->in_len > 0 || c->responding || c->discard_body > 0)
                return false;
        ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n <= 0;
}
