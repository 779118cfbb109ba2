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
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "serve.h"
#include "util.h"

#define CONN_HEAD_RESERVE 32 /* for conn_head_finish()'s longest ending */
#define CONN_SENDFILE_CHUNK (1U << 20)

Site *serve_context_get_site(ServeContext *ctx) {
        pthread_mutex_lock(&ctx->site_lock);
        Site *site = site_ref(ctx->site);
        pthread_mutex_unlock(&ctx->site_lock);
        return site;
}

void serve_context_set_site(ServeContext *ctx, Site *site) {
        atomic_store(&ctx->max_header_bytes, site->config.max_header_bytes);
        atomic_store(&ctx->max_request_line, site->config.max_request_line);
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
                .bytes = c->body_sent,
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

static void body_reset(Conn *c) {
        c->file_fd = safe_close(c->file_fd);
        c->part_text = mfree(c->part_text);
        c->n_parts = c->part = 0;
        c->part_sent = c->body_sent = 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        if (c->responding)
                record_write(c);
        free(c->record);
        body_reset(c);
        (void) safe_close(c->fd);
        free(c->in);
        free(c);
        return NULL;
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

static void head_put(Conn *c, const char *s, size_t n) {
        size_t room = sizeof(c->head) - CONN_HEAD_RESERVE - c->head_len;

        if (n >= room) {
                c->head_overflow = true;
                return;
        }
        memcpy(c->head + c->head_len, s, n);
        c->head_len += n;
}

void conn_head_add(Conn *c, const char *s) {
        head_put(c, s, strlen(s));
}

void conn_head_add_u64(Conn *c, uint64_t v) {
        char digits[20];
        size_t i = sizeof(digits);

        do {
                digits[--i] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        head_put(c, digits + i, sizeof(digits) - i);
}

void conn_head_append(Conn *c, const char *format, ...) {
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


/* Starting a head discards whatever response was being built, so an error
 * found late (an overflowing head) can replace it. */
void conn_head_start(Conn *c, int status) {
        const char *reason = http_status_reason(status);

        body_reset(c);
        c->head_len = c->head_sent = 0;
        c->head_overflow = false;
        c->status = status;
        c->responding = true;
        conn_head_add(c, "HTTP/1.1 ");
        conn_head_add_u64(c, (uint64_t) status);
        conn_head_add(c, " ");
        conn_head_add(c, reason ? reason : "Unknown");
        conn_head_add(c, "\r\nServer: webpoold\r\nDate: ");
        conn_head_add(c, cached_date());
        conn_head_add(c, "\r\n");
        if (status >= 500)
                atomic_fetch_add_explicit(&c->ctx->n_5xx, 1, memory_order_relaxed);
        else if (status >= 400)
                atomic_fetch_add_explicit(&c->ctx->n_4xx, 1, memory_order_relaxed);
}

bool conn_head_finish(Conn *c) {
        const char *end = c->close_after ? "Connection: close\r\n\r\n"
                          : c->http10    ? "Connection: keep-alive\r\n\r\n"
                                         : "\r\n";
        size_t len = strlen(end);

        if (c->head_overflow)
                return false;
        memcpy(c->head + c->head_len, end, len);
        c->head_len += len;
        return true;
}

static void body_add(Conn *c, BodyPart part) {
        if (c->head_only || part.length == 0 || c->n_parts >= ELEMENTSOF(c->parts))
                return;
        c->parts[c->n_parts++] = part;
}

void conn_body_mem(Conn *c, const char *p, size_t len) {
        body_add(c, (BodyPart) { .mem = p, .length = len });
}

void conn_body_file(Conn *c, uint64_t offset, uint64_t length) {
        body_add(c, (BodyPart) { .offset = offset, .length = length });
}

void conn_send_timeout(Conn *c) {
        char response[256];

        record_request(c, NULL);
        c->status = 408;
        atomic_fetch_add_explicit(&c->ctx->n_4xx, 1, memory_order_relaxed);
        int n = snprintf(response, sizeof(response),
                         "HTTP/1.1 408 Request Timeout\r\nServer: webpoold\r\nDate: %s\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n", cached_date());
        /* Best effort: a client too slow to send a request may be too slow
         * to read this too, and the acceptor must not wait for it. Only
         * when nothing is queued before it, so it goes out whole or not at
         * all, never as half a head after an earlier response. */
        int queued = 0;
        if (ioctl(c->fd, TIOCOUTQ, &queued) == 0 && queued == 0)
                (void) send(c->fd, response, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
        record_write(c);
}

/* True when the client said this request is its last: Connection: close,
 * or HTTP/1.0 without keep-alive. It then sends nothing more (RFC 9112
 * §9.6), so nothing of it can cross our close. */
static bool client_closes(const HttpRequest *req) {
        bool has_close = false, has_keep_alive = false;

        for (size_t i = 0; i < req->n_headers; i++) {
                const HttpHeader *f = &req->headers[i];
                if (!http_header_is(f, "Connection"))
                        continue;
                has_close |= http_list_has_token(f->value, "close");
                has_keep_alive |= http_list_has_token(f->value, "keep-alive");
        }
        return has_close || (req->minor_version == 0 && !has_keep_alive);
}

static bool want_keep_alive(const Conn *c) {
        return !c->client_closes && !atomic_load_explicit(&c->ctx->draining, memory_order_relaxed) &&
               c->site->config.keepalive_timeout_usec > 0;
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

/* Host is "uri-host [ ":" port ]" (RFC 9110 §7.2); an empty value is allowed
 * for targets without an authority. Anything else is an error (400). */
static bool host_valid(Slice v) {
        for (size_t i = 0; i < v.len; i++) {
                unsigned char ch = (unsigned char) v.ptr[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      strchr("-._~!$&'()*+,;=:[]%", ch)))
                        return false;
        }
        return true;
}

static int check_body(Conn *c, const HttpRequest *req) {
        size_t n_length;
        uint64_t length = 0;
        int chunked = http_request_chunked(req);
        const HttpHeader *cl = http_request_header(req, "Content-Length", &n_length);

        /* Both at once is how requests are smuggled (RFC 9112 §6.3). */
        if (chunked != 0 && cl)
                return 400;
        /* A body we cannot find the end of, or could only with a decoder we
         * do not have: the connection cannot go on either way. */
        if (chunked < 0)
                return http_status_for_error(chunked);
        bool te = chunked > 0;
        if (n_length > 1 || (cl && parse_content_length(cl->value, &length) < 0))
                return 400;
        if (length > c->site->config.max_body_bytes)
                return 413;
        /* A client that sent "Expect: 100-continue" waits for us before
         * sending the body, and after our final answer may never send it:
         * the next bytes cannot be trusted to be either. Close instead. */
        if ((te || length > 0) && http_request_header(req, "Expect", NULL)) {
                c->close_after = true;
                return 0;
        }
        c->body_limit = c->site->config.max_body_bytes;
        c->discard_deadline_usec = 0; /* this body's bound, not the last one's */
        if (te) {
                /* HTTP/1.0 has no chunked coding: the framing is suspect
                 * (RFC 9112 §6.1), so the connection ends after this. The
                 * field is judged as in 1.1 all the same: a sender that got
                 * it wrong is no more to be trusted in 1.0. */
                if (req->minor_version == 0)
                        c->close_after = true;
                c->chunked = (HttpChunked) {};
                c->chunked_active = true;
                return 0;
        }
        c->discard_body = length;
        return 0;
}

/* Checks what RFC 9112 requires of a request's framing and Host, and the
 * configured limits, and arranges for a body we do not use to be dropped.
 * Returns 0 or an error status. */
static int check_framing(Conn *c, const HttpRequest *req) {
        const Config *config = &c->site->config;
        size_t n_host;
        const HttpHeader *host = http_request_header(req, "Host", &n_host);

        if (req->n_headers > config->max_header_fields)
                return 431;
        if (n_host > 1 || (req->minor_version >= 1 && n_host == 0) || (host && !host_valid(host->value)))
                return 400;
        return check_body(c, req);
}

static void handle_request(Conn *c, const HttpRequest *req) {
        c->head_only = req->method == HTTP_HEAD;
        c->http10 = req->minor_version == 0;

        atomic_fetch_add_explicit(&c->ctx->n_requests, 1, memory_order_relaxed);
        record_request(c, req);
        c->client_closes = client_closes(req);
        c->close_after = !want_keep_alive(c);

        int status = check_framing(c, req);
        if (status != 0) {
                c->close_after = true; /* the framing is not to be trusted */
                return serve_error(c, status);
        }
        serve_request(c, req);
}

static void buffer_consume(Conn *c, size_t n) {
        if (n == 0)
                return;
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
}

static void reject_request(Conn *c, int status) {
        atomic_fetch_add_explicit(&c->ctx->n_requests, 1, memory_order_relaxed);
        record_request(c, NULL);
        c->head_only = c->http10 = c->client_closes = false;
        c->close_after = true;
        c->in_len = 0;
        serve_error(c, status);
}

/* Judges the head at the start of the buffer as far as it has come. The
 * scanner examines each new byte once; the parser runs only when that can
 * decide something: when the request line is complete (a bad one is turned
 * away without waiting for the rest), when the head is, when the scanner
 * found it bad, and when the buffer is full. So a head costs a few passes
 * over its bytes however slowly it trickles in. Returns 0 with *ret and
 * *ret_len set, -EAGAIN, or the status to refuse the request with. */
static int conn_read_head(Conn *c, HttpRequest *ret, size_t *ret_len) {
        ssize_t n = http_head_scan(&c->scan, c->in, c->in_len, c->line_cap);
        if (n == -EMSGSIZE)
                return 414; /* nothing after an over-long request line can mend it */

        bool line_done = c->scan.state >= HTTP_HEAD_LINE_START;
        bool full = c->in_len == c->in_cap;
        if (n == -EAGAIN && !full && (!line_done || c->line_judged))
                return -EAGAIN;
        c->line_judged = line_done;

        ssize_t r = http_parse_request(c->in, c->in_len, ret);
        if (r > 0) {
                *ret_len = (size_t) r;
                return 0;
        }
        if (r != -EAGAIN)
                return http_status_for_error((int) r);
        if (n == -EAGAIN && !full)
                return -EAGAIN; /* the request line was fine */
        if (n != -EAGAIN)
                return 400; /* the scanner and the parser disagree: trust neither */
        return line_done ? 431 : 414;
}

/* Starts the response to the next buffered request. Returns 1 when a response
 * was started, -EAGAIN when more bytes are needed, another negative errno
 * when a request body we are dropping turns out malformed or too large (the
 * connection can only be closed then). */
static int conn_next_request(Conn *c) {
        HttpRequest req;

        if (c->chunked_active) {
                ssize_t n = http_chunked_skip(&c->chunked, c->in, c->in_len, c->body_limit);
                if (n < 0)
                        return (int) n; /* we answered already; all we can do is close */
                buffer_consume(c, (size_t) n);
                if (c->chunked.state != HTTP_CHUNKED_DONE)
                        return -EAGAIN;
                c->chunked_active = false;
                c->request_started_usec = now_usec();
        }
        if (c->discard_body > 0) {
                size_t n = (size_t) MIN((uint64_t) c->in_len, c->discard_body);
                buffer_consume(c, n);
                c->discard_body -= n;
                if (c->discard_body > 0)
                        return -EAGAIN;
                c->request_started_usec = now_usec();
        }
        if (c->in_len == 0)
                return -EAGAIN;

        size_t len = 0;
        int status = conn_read_head(c, &req, &len);
        if (status == -EAGAIN)
                return -EAGAIN;

        Site *site = serve_context_get_site(c->ctx);
        c->site = site;
        if (status > 0)
                reject_request(c, status);
        else {
                handle_request(c, &req);
                buffer_consume(c, len);
        }
        /* A pipelined head may follow; it is scanned from its start. */
        c->scan = (HttpHeadScan) {};
        c->line_judged = false;
        c->site = site_unref(site);
        return 1;
}

/* Reads what the socket has. Returns 0 after reading, -EAGAIN when nothing is
 * there, another negative errno on EOF (-ECONNRESET) or failure. */
static int conn_fill(Conn *c) {
        if (!c->in) {
                /* A reload changes the limit for buffers allocated after it. */
                c->in_cap = atomic_load(&c->ctx->max_header_bytes);
                c->line_cap = atomic_load(&c->ctx->max_request_line);
                c->in = malloc(c->in_cap);
                if (!c->in)
                        return -ENOMEM;
        }
        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (n > 0) {
                        if (c->in_len == 0 && c->n_requests > 0 && !conn_discarding(c))
                                c->request_started_usec = now_usec();
                        c->in_len += (size_t) n;
                        return 0;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno != EINTR)
                        return -errno;
        }
}

static int send_mem(Conn *c, const char *p, size_t len, uint64_t *sent, bool more) {
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

static int send_file_part(Conn *c, const BodyPart *part, size_t *budget_used) {
        while (c->part_sent < part->length) {
                if (*budget_used >= CONN_MAX_BYTES_PER_TURN)
                        return -EBUSY;
                off_t pos = (off_t) (part->offset + c->part_sent);
                size_t chunk = (size_t) MIN(part->length - c->part_sent, CONN_SENDFILE_CHUNK);
                ssize_t n = sendfile(c->fd, c->file_fd, &pos, chunk);
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
                c->part_sent += (uint64_t) n;
                c->body_sent += (uint64_t) n;
                *budget_used += (size_t) n;
        }
        return 0;
}

static int send_body(Conn *c, size_t *budget_used) {
        for (; c->part < c->n_parts; c->part++, c->part_sent = 0) {
                const BodyPart *part = &c->parts[c->part];
                bool more = c->part + 1 < c->n_parts;
                int r;

                if (part->mem) {
                        uint64_t before = c->part_sent;
                        r = send_mem(c, part->mem, part->length, &c->part_sent, more);
                        c->body_sent += c->part_sent - before;
                } else
                        r = send_file_part(c, part, budget_used);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Returns 0 when the response is out, -EAGAIN when the socket is full,
 * -EBUSY when this turn's budget is spent, another negative errno on failure. */
static int conn_send(Conn *c, size_t *budget_used) {
        uint64_t head_sent = c->head_sent;
        int r = send_mem(c, c->head, c->head_len, &head_sent, c->n_parts > 0);
        c->head_sent = (size_t) head_sent;
        if (r < 0)
                return r;
        return send_body(c, budget_used);
}

static void conn_end_response(Conn *c) {
        record_write(c);
        body_reset(c);
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
                int r = conn_next_request(c);
                if (r > 0)
                        continue;
                if (r != -EAGAIN) /* a bad body after our answer: let it be read */
                        return CONN_LINGER;
                r = conn_fill(c);
                if (r == -EAGAIN) {
                        if (c->in_len == 0 && !conn_discarding(c)) {
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

        if (c->in_len > 0 || c->responding || conn_discarding(c))
                return false;
        ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n <= 0;
}
