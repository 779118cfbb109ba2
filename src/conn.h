/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>

#include "accesslog.h"
#include "macro.h"
#include "config.h"
#include "http.h"
#include "mime.h"
#include "site.h"

/* One client connection, and the state machine a worker runs on it.
 *
 * Ownership: a Conn is owned by exactly one party at a time: parked in the
 * acceptor's epoll set, queued in the pool, or running in conn_run() on one
 * worker. conn_run() never blocks: it reads what is there, answers complete
 * requests, and returns a verdict telling the acceptor how to park it. */

#define CONN_HEAD_MAX 2048              /* response head; ours are short */
#define CONN_MAX_REQUESTS_PER_TURN 32   /* pipelined requests before yielding */
#define CONN_MAX_BYTES_PER_TURN (4U << 20) /* body bytes before yielding */
#define CONN_MAX_PARTS 33 /* a multipart body: 16 ranges, their delimiters, the end */

/* Shared by every connection. The site is swapped by a reload (under
 * site_lock); workers take a reference per request with
 * serve_context_get_site(). The acceptor, being the only thread that swaps,
 * reads ctx->site directly. */
typedef struct ServeContext {
        pthread_mutex_t site_lock;
        Site *site;
        atomic_size_t max_header_bytes; /* the current site's, for new buffers */
        atomic_size_t max_request_line;
        MimeTable *mime; /* built at startup, read-only after */
        AccessLog *access_log; /* NULL when off; kept until exit */
        atomic_bool draining;           /* answer with Connection: close */
        atomic_uint_fast64_t n_requests;
        atomic_uint_fast64_t n_4xx;
        atomic_uint_fast64_t n_5xx;
} ServeContext;

typedef enum ConnVerdict {
        CONN_PARK_READ,  /* wait for request bytes (or idle keep-alive) */
        CONN_PARK_WRITE, /* the socket is full mid-response */
        CONN_REQUEUE,    /* more to do at once, but let others have a turn */
        CONN_LINGER,     /* answered and done: close once the client has read it */
        CONN_CLOSE,
} ConnVerdict;

/* What the access log needs of a request once its response is out: copies,
 * since the request's bytes are gone by then. Only allocated when an
 * access log is on. */
#define CONN_LOG_TARGET_MAX 2048
#define CONN_LOG_FIELD_MAX 512

typedef struct ConnRecord {
        char remote_addr[64];
        char method[32];
        char target[CONN_LOG_TARGET_MAX];
        char user_agent[CONN_LOG_FIELD_MAX];
        char referer[CONN_LOG_FIELD_MAX];
        size_t method_len, target_len, user_agent_len, referer_len;
        int minor_version;
        uint64_t started_usec;
        time_t time;
} ConnRecord;

/* One piece of a response body: bytes in memory, or a span of the file. */
typedef struct BodyPart {
        const char *mem; /* NULL: from the file */
        uint64_t offset; /* in the file */
        uint64_t length;
} BodyPart;

typedef struct Conn Conn;

struct Conn {
        int kind; /* first: the acceptor tells event sources apart by it */
        int fd;
        ServeContext *ctx;

        char *in; /* request bytes */
        size_t in_len, in_cap, line_cap;
        const Site *site; /* while a request is being answered */
        uint64_t discard_body; /* request body bytes still to drop */
        bool chunked_active;   /* dropping a chunked request body */
        HttpChunked chunked;
        uint64_t body_limit;   /* max_body_bytes of the request's site */
        unsigned n_requests;
        uint64_t request_started_usec; /* first byte of the pending request */

        HttpHeadScan scan; /* of the pending request head */
        bool line_judged; /* its request line has been parsed and found fine */

        /* The response being sent. */
        char head[CONN_HEAD_MAX];
        size_t head_len, head_sent;
        bool head_overflow;
        BodyPart parts[CONN_MAX_PARTS];
        size_t n_parts, part;
        uint64_t part_sent, body_sent;
        char *part_text; /* multipart delimiters, owned */
        int file_fd;
        bool responding;
        bool close_after;
        bool client_closes; /* the request said it is the last (RFC 9112 §9.6) */
        bool head_only; /* the request was HEAD */
        bool http10;
        int status;
        ConnRecord *record;

        /* Owned by the acceptor while parked or returned. */
        void *owner;
        ConnVerdict verdict;
        Conn *prev, *next;
        Conn *next_returned;
        int list;
        uint64_t deadline_usec;
        uint64_t discard_deadline_usec; /* 0 unless dropping an answered request's body */
};

/* Returns the current site with a reference the caller drops. */
Site *serve_context_get_site(ServeContext *ctx);

/* Installs a new site (taking the caller's reference) and drops the old. */
void serve_context_set_site(ServeContext *ctx, Site *site);

/* Allocates a connection for an accepted socket. NULL on ENOMEM. */
Conn *conn_new(int fd, ServeContext *ctx, uint64_t now);

/* With an access log on, remembers the peer's address for it. */
void conn_record_peer(Conn *c);

/* Closes the socket and any open file, frees. A response cut short is still
 * logged, with the bytes actually sent. Accepts NULL; returns NULL. */
Conn *conn_free(Conn *c);

/* Runs the connection until it would block or must yield. */
ConnVerdict conn_run(Conn *c);

/* Building a response (serve.c). The head is formatted in place; a head
 * that does not fit is never sent cut short: conn_head_finish() then returns
 * false and the caller answers 500 instead. */
void conn_head_start(Conn *c, int status);
void conn_head_append(Conn *c, const char *format, ...) _printf_(2, 3);

/* Append a string as it is, and a number in decimal: what every response
 * sends needs no printf, which costs more than the rest of the head. */
void conn_head_add(Conn *c, const char *s);
void conn_head_add_u64(Conn *c, uint64_t v);
bool conn_head_finish(Conn *c);
/* Appends a body part: bytes that outlive the response (static storage or
 * c->part_text), or a span of c->file_fd. Ignored for HEAD. */
void conn_body_mem(Conn *c, const char *p, size_t len);
void conn_body_file(Conn *c, uint64_t offset, uint64_t length);

/* On a header timeout with part of a request received: a best-effort 408
 * (never blocking), logged like any response. The caller then closes. */
void conn_send_timeout(Conn *c);

/* True when nothing of a next request has arrived (in our buffer or, checked
 * without blocking, in the socket) yet. Bytes may still be on the way, so
 * this only makes it safe to end the connection with a lingering close, or
 * to close it at once when the client said its request was the last. */
bool conn_is_idle(const Conn *c);

/* True when the connection has sent nothing yet on a new request; used to
 * tell idle keep-alive from a slow request head. */
static inline bool conn_discarding(const Conn *c) {
        return c->discard_body > 0 || c->chunked_active;
}

static inline bool conn_waiting_first_byte(const Conn *c) {
        return c->in_len == 0 && !c->responding && !conn_discarding(c);
}
