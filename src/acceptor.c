/* SPDX-License-Identifier: MIT */
/*
 * DESIGN
 *
 * The acceptor is the main thread. It alone calls epoll_wait() and
 * epoll_ctl(), and it alone touches a connection while the connection is
 * parked, so parked state needs no locks:
 *
 *   accept ──► parked (EPOLLONESHOT) ──event──► pool ──► conn_run() on a worker
 *                 ▲                                             │
 *                 └──── returned list + eventfd ◄── verdict ────┘
 *
 * A worker never re-arms epoll itself: it pushes the connection onto the
 * returned list (under a mutex) and pokes an eventfd when the list was
 * empty. The acceptor then closes, requeues or parks it: idle keep-alive
 * connections on the idle list, partial request heads on the header list,
 * full sockets on the write list. Each list has one timeout, so appending
 * keeps it sorted by deadline and expiry only looks at the heads.
 *
 * Ending a connection: the client may be writing its next request at the
 * very moment we decide to close, and close() with that request unread, or
 * the request reaching a socket already closed, makes the kernel answer
 * with RST, which tells the client nothing safe. So a connection we end on
 * our own (idle at a drain, a keep-alive or empty header timeout, or after
 * a response that said Connection: close unasked) is never close()d at
 * once: linger_begin() sends FIN, then reads and drops whatever crosses it
 * until the client's EOF or a short bound. A request that crossed our FIN
 * sees a clean close before any response byte, the case RFC 9112 §9.3.1
 * lets a client retry. Only a client that said it sends nothing more, and
 * has nothing pending, is closed at once.
 *
 * Stopping: the first SIGTERM/SIGINT closes the listeners, ends idle
 * connections that way and lets the rest finish (responses say
 * Connection: close); a request already waiting in the socket is answered,
 * not ended. When the shutdown timeout passes, or on a second signal,
 * whatever is left (lingering ones too) is cut. The loop returns once no
 * connection is left.
 */
#include "acceptor.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "reload.h"
#include "util.h"

#define ACCEPTOR_MAX_EVENTS 256
#define ACCEPTOR_ACCEPT_BATCH 64
#define ACCEPTOR_PAUSE_USEC (100 * USEC_PER_MSEC) /* after EMFILE and friends */
#define ACCEPTOR_TICK_MSEC 1000
#define ACCEPTOR_LINGER_USEC (2 * USEC_PER_SEC)
/* While stopping, as lighttpd does: what can cross our FIN was sent before
 * the client saw it, so it arrives within a round trip. */
#define ACCEPTOR_DRAIN_LINGER_USEC USEC_PER_SEC
#define ACCEPTOR_DRAIN_GRACE_USEC USEC_PER_SEC
/* Reload commands waiting at once; more are unusual, and any beyond this
 * reload all the same but time out waiting for their answer. */
#define ACCEPTOR_MAX_RELOAD_ASKERS 8
#define ACCEPTOR_STATUS_USEC USEC_PER_SEC     /* STATUS= at most this often */
#define ACCEPTOR_PROGRESS_USEC (5 * USEC_PER_SEC)
#define ACCEPTOR_EXIT_MARGIN_USEC (5 * USEC_PER_SEC)
#define ACCEPTOR_LINGER_READ_MAX (64U * 1024U) /* per wakeup */
/* The body of a request already answered is dropped for at most this long
 * (or [timeouts] header, if shorter), however slowly it comes: nginx's
 * lingering_time. */
#define ACCEPTOR_DISCARD_MAX_USEC (30 * USEC_PER_SEC)
/* Idle connections looked at for one to end when at the limit; ones that
 * turn out to have a request waiting are left for their event. */
#define ACCEPTOR_RECLAIM_TRIES 8
/* A connection that has sent nothing yet may have its first request on the
 * wire: it is only ended for a newcomer once it has been silent this long. */
#define ACCEPTOR_SILENT_GRACE_USEC USEC_PER_SEC

enum {
        SOURCE_LISTENER = 1,
        SOURCE_SIGNAL,
        SOURCE_RETURN,
        SOURCE_CONN, /* a Conn: its first two fields match Source */
};

typedef struct Source {
        int kind;
        int fd;
} Source;

enum {
        LIST_NONE,
        LIST_HEADER, /* waiting for (the rest of) a request head */
        LIST_IDLE,   /* keep-alive, nothing sent yet */
        LIST_WRITE,  /* waiting for the socket to drain */
        LIST_LINGER, /* ended, write side shut, dropping input until the client's EOF */
        _LIST_MAX,
};

/* What STATUS= shows; sent again only when it changed. */
typedef struct StatusSnapshot {
        unsigned n_conns;
        bool draining;
        bool reload_failed;
        size_t queued;
        uint64_t n_requests, n_4xx, n_5xx;
} StatusSnapshot;

typedef struct ConnList {
        Conn *head, *tail;
} ConnList;

struct Acceptor {
        ServeContext *ctx;
        Pool *pool;
        AcceptorOptions options;
        uint64_t next_watchdog_usec;
        bool watchdog_withheld;
        uint64_t next_status_usec;
        uint64_t last_extend_usec;
        StatusSnapshot last_status;
        char reload_failure[SITE_ERROR_MAX]; /* "" after a good reload */
        int epoll_fd;
        Source signal_source;
        Source return_source;
        Source *listeners;
        size_t n_listeners;
        bool listeners_armed;
        uint64_t resume_accept_usec;
        bool accept_failing; /* logged once per episode, not every 100ms */

        pthread_mutex_t return_lock;
        Conn *returned;

        ConnList lists[_LIST_MAX];
        unsigned n_listed[_LIST_MAX];
        unsigned n_conns; /* lingering ones included */
        unsigned n_cut;   /* given up for a newcomer, closed by the next expiry */

        unsigned pending_stops; /* signals read, acted on after the event batch */
        bool pending_reload;
        pid_t reload_askers[ACCEPTOR_MAX_RELOAD_ASKERS]; /* `webpoold -r` waiting for an answer */
        unsigned n_reload_askers;
        bool draining;
        bool cutting;
        uint64_t drain_deadline_usec;
};

/* Only the acceptor swaps the site, so its own reads need no reference. */
static const Config *cfg(const Acceptor *a) {
        return &a->ctx->site->config;
}

/* Keeps each list sorted by deadline, so expiry only looks at the head.
 * Deadlines mostly arrive in order (now + one timeout), so the walk from the
 * tail is short; the exceptions are request heads, whose deadline counts from
 * the request's first byte, and lingering connections parked again. */
static void list_insert(Acceptor *a, int list, Conn *c, uint64_t deadline) {
        ConnList *l = &a->lists[list];
        Conn *after = l->tail;

        /* Closing at the next expiry (deadline 0) goes to the front at once. */
        if (l->head && deadline < l->head->deadline_usec)
                after = NULL;
        while (after && after->deadline_usec > deadline)
                after = after->prev;

        c->list = list;
        c->deadline_usec = deadline;
        a->n_listed[list]++;
        c->prev = after;
        c->next = after ? after->next : l->head;
        if (c->next)
                c->next->prev = c;
        else
                l->tail = c;
        if (after)
                after->next = c;
        else
                l->head = c;
}

static void list_remove(Acceptor *a, Conn *c) {
        ConnList *l = &a->lists[c->list];
        if (c->list == LIST_NONE)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                l->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                l->tail = c->prev;
        c->prev = c->next = NULL;
        a->n_listed[c->list]--;
        c->list = LIST_NONE;
}

static int epoll_update(Acceptor *a, int op, Source *s, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = s };
        return epoll_ctl(a->epoll_fd, op, s->fd, &ev) < 0 ? -errno : 0;
}

static void listeners_arm(Acceptor *a, bool arm) {
        if (a->listeners_armed == arm)
                return;
        for (size_t i = 0; i < a->n_listeners; i++) {
                int r = epoll_update(a, arm ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, &a->listeners[i], EPOLLIN);
                if (r < 0)
                        log_warning_errno(r, "Failed to %s listener, ignoring: %m",
                                          arm ? "resume" : "pause");
        }
        a->listeners_armed = arm;
}

static void conn_close(Acceptor *a, Conn *c) {
        list_remove(a, c);
        conn_free(c);
        a->n_conns--;
}

/* A lingering connection has been answered and only waits for the client's
 * EOF, so it does not count against max_connections; it still holds a
 * descriptor, so it counts against the sockets the descriptor limit allows. */
static unsigned n_active(const Acceptor *a) {
        return a->n_conns - a->n_listed[LIST_LINGER];
}

static unsigned connection_limit(const Acceptor *a) {
        return MIN(cfg(a)->max_connections, a->options.max_sockets);
}

static void worker_job(void *userdata);

static void park(Acceptor *a, Conn *c, int list, uint64_t deadline, uint32_t events);

/* Closing a socket that still holds unread bytes, or that bytes reach
 * after the close, makes the kernel send RST, which can destroy a response
 * before the client has read it (RFC 9112 §9.6) and leaves a client whose
 * request crossed our close unable to tell whether it was processed. So a
 * connection we end, from any list, shuts down our side only, and reads and
 * drops whatever the client still sends until it closes or a short deadline
 * passes (shorter while draining, and a drain's deadline cuts it sooner).
 * This costs no worker: reading into a scratch buffer is cheap and bounded
 * per wakeup. */
static void linger_begin(Acceptor *a, Conn *c, uint64_t now) {
        list_remove(a, c);
        uint64_t bound = a->draining ? ACCEPTOR_DRAIN_LINGER_USEC : ACCEPTOR_LINGER_USEC;
        /* A dead socket is closed by the next expiry, not here: this may run
         * in the middle of an event batch that still holds an event for it. */
        if (shutdown(c->fd, SHUT_WR) < 0)
                bound = 0;
        park(a, c, LIST_LINGER, now + bound, EPOLLIN);
}

static void linger_read(Acceptor *a, Conn *c) {
        static char scratch[16384]; /* contents never read: shared is fine */
        size_t total = 0;
        uint64_t deadline = c->deadline_usec;

        list_remove(a, c);
        while (total < ACCEPTOR_LINGER_READ_MAX) {
                ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (n > 0) {
                        total += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                return conn_close(a, c); /* EOF or error: the client is done */
        }
        park(a, c, LIST_LINGER, deadline, EPOLLIN);
}

/* Hands a connection to the pool. It is not ours again until it returns. */
static void dispatch(Acceptor *a, Conn *c) {
        if (c->list == LIST_LINGER)
                return linger_read(a, c);
        list_remove(a, c);
        int r = pool_submit(a->pool, worker_job, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to queue connection, closing it: %m");
                conn_close(a, c);
        }
}

/* Runs on a worker. */
static void worker_job(void *userdata) {
        Conn *c = userdata;
        Acceptor *a = c->owner;

        c->verdict = conn_run(c);

        pthread_mutex_lock(&a->return_lock);
        bool was_empty = !a->returned;
        c->next_returned = a->returned;
        a->returned = c;
        pthread_mutex_unlock(&a->return_lock);

        if (was_empty) {
                uint64_t one = 1;
                /* Only fails if the counter would overflow, which cannot
                 * happen with the acceptor reading it. */
                (void) !write(a->return_source.fd, &one, sizeof(one));
        }
}

/* On failure the connection is closed by the next expiry rather than at
 * once, for the same reason as in linger_begin(). */
static void park(Acceptor *a, Conn *c, int list, uint64_t deadline, uint32_t events) {
        int r = epoll_update(a, EPOLL_CTL_MOD, (Source *) c, events | EPOLLONESHOT);
        if (r < 0) {
                log_warning_errno(r, "Failed to park connection, closing it: %m");
                return list_insert(a, LIST_LINGER, c, 0);
        }
        list_insert(a, list, c, deadline);
}

/* The body of an answered request gets one bound from when dropping it
 * began, not another timeout for every byte that trickles in. */
static uint64_t discard_deadline(Conn *c, const Config *config, uint64_t now) {
        if (c->discard_deadline_usec == 0)
                c->discard_deadline_usec = now + MIN(config->header_timeout_usec, ACCEPTOR_DISCARD_MAX_USEC);
        return c->discard_deadline_usec;
}

static void take_back(Acceptor *a, Conn *c, uint64_t now) {
        const Config *config = cfg(a);

        if (a->cutting)
                return conn_close(a, c);
        if (!conn_discarding(c))
                c->discard_deadline_usec = 0;

        switch (c->verdict) {
        case CONN_REQUEUE:
                return dispatch(a, c);
        case CONN_PARK_WRITE:
                return park(a, c, LIST_WRITE, now + config->send_timeout_usec, EPOLLOUT);
        case CONN_LINGER:
                /* A client that asked to close and sent nothing more has
                 * nothing in flight that our close could turn into an RST:
                 * close at once, as nginx does. When the close was our idea
                 * (a drain, keep-alive off) its next request may be on the
                 * way; after an error response, or with bytes pending,
                 * linger too. */
                if (c->client_closes && c->status < 400 && conn_is_idle(c))
                        return conn_close(a, c);
                return linger_begin(a, c, now);
        case CONN_PARK_READ:
                if (a->draining && conn_is_idle(c))
                        return linger_begin(a, c, now);
                /* Dropping the body of a request already answered: nobody
                 * waits for it while we drain, and otherwise within a bound. */
                if (conn_discarding(c) && !c->responding)
                        return a->draining ? linger_begin(a, c, now)
                                           : park(a, c, LIST_HEADER, discard_deadline(c, config, now), EPOLLIN);
                if (conn_waiting_first_byte(c) && c->n_requests > 0)
                        return park(a, c, LIST_IDLE, now + config->keepalive_timeout_usec, EPOLLIN);
                return park(a, c, LIST_HEADER, c->request_started_usec + config->header_timeout_usec,
                            EPOLLIN);
        case CONN_CLOSE:
        default:
                return conn_close(a, c);
        }
}

static void take_back_returned(Acceptor *a, uint64_t now) {
        uint64_t counter;

        (void) !read(a->return_source.fd, &counter, sizeof(counter));
        pthread_mutex_lock(&a->return_lock);
        Conn *c = TAKE_PTR(a->returned);
        pthread_mutex_unlock(&a->return_lock);

        while (c) {
                Conn *next = c->next_returned;
                take_back(a, c, now);
                c = next;
        }
}

static bool accept_error_is_transient(int error) {
        /* The connection died before we took it; try the next one. */
        return error == ECONNABORTED || error == EPROTO || error == EPERM || error == EINTR;
}

/* Returns false when the connection could not be taken in (and is closed). */
static bool accept_one(Acceptor *a, int fd, uint64_t now) {
        static const int one = 1;

        /* Responses go out as head plus sendfile with MSG_MORE in between, so
         * Nagle would only delay the last segment. Fails on unix sockets. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        Conn *c = conn_new(fd, a->ctx, now);
        if (!c) {
                log_warning("Out of memory for a new connection, closing it.");
                (void) close(fd);
                return false;
        }
        c->kind = SOURCE_CONN;
        c->owner = a;
        conn_record_peer(c);
        int r = epoll_update(a, EPOLL_CTL_ADD, (Source *) c, EPOLLIN | EPOLLONESHOT);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch new connection, closing it: %m");
                conn_free(c);
                return false;
        }
        a->n_conns++;
        list_insert(a, LIST_HEADER, c, now + cfg(a)->header_timeout_usec);
        return true;
}

/* True for a connection that was accepted a while ago and has sent nothing
 * since: it holds a slot as uselessly as an idle one. */
static bool conn_is_silent(const Conn *c, uint64_t now) {
        return c->n_requests == 0 && c->request_started_usec + ACCEPTOR_SILENT_GRACE_USEC <= now &&
               conn_is_idle(c);
}

/* The first connection of a list, from its oldest, that may be ended for a
 * newcomer. Ones with a request already waiting are not idle, whatever
 * their list says. */
static Conn *first_endable(Acceptor *a, int list, uint64_t now) {
        Conn *c = a->lists[list].head;

        for (int i = 0; c && i < ACCEPTOR_RECLAIM_TRIES; i++, c = c->next)
                if (list == LIST_IDLE ? conn_is_idle(c) : conn_is_silent(c, now))
                        return c;
        return NULL;
}

/* At the limit a new client is worth more than a connection doing nothing,
 * as nginx also judges: one that has been silent since it connected (a
 * slot holder, first), else the one idle in keep-alive longest. It is ended
 * cleanly, lingering, so a request crossing our FIN sees a close the
 * client may retry. */
static Conn *idle_victim(Acceptor *a, uint64_t now) {
        Conn *c = first_endable(a, LIST_HEADER, now);
        return c ? c : first_endable(a, LIST_IDLE, now);
}

/* Closed by the next expiry, after this event batch, which may still hold
 * an event for it. */
static void linger_cut(Acceptor *a, Conn *c) {
        list_remove(a, c);
        list_insert(a, LIST_LINGER, c, 0);
        a->n_cut++;
}

typedef enum Room {
        ROOM_NONE,  /* pause accepting until a connection closes */
        ROOM_LATER, /* a socket given up closes after this batch: try then */
        ROOM_FOUND,
} Room;

/* What accepting one more takes: an active slot (max_connections), which a
 * connection doing nothing can give up, and a socket within the descriptor
 * limit, which a lingering connection can give up by closing at once (or
 * an idle one: lingering ones are the better loss, their answer is out).
 * Only one socket is given up at a time, whatever the listeners. */
static Room find_room(Acceptor *a, uint64_t now, Conn **ret_idle, Conn **ret_socket) {
        Conn *idle = NULL, *socket = NULL;

        if (a->n_conns >= a->options.max_sockets && a->n_cut > 0)
                return ROOM_LATER;
        if (n_active(a) >= connection_limit(a) && !(idle = idle_victim(a, now)))
                return ROOM_NONE;
        if (a->n_conns >= a->options.max_sockets) {
                socket = a->lists[LIST_LINGER].head ? a->lists[LIST_LINGER].head : idle ? idle : idle_victim(a, now);
                if (!socket)
                        return ROOM_NONE;
        }
        *ret_idle = idle;
        *ret_socket = socket;
        return ROOM_FOUND;
}

/* Ends what find_room() chose, once a client has really been taken in. */
static void give_room(Acceptor *a, Conn *idle, Conn *socket, uint64_t now) {
        if (idle) {
                log_debug("At the connection limit: ending a connection doing nothing.");
                linger_begin(a, idle, now);
        }
        if (socket)
                linger_cut(a, socket);
}

/* Resumes accepting once a pause has run out and there is room again. */
static void maybe_resume_accepting(Acceptor *a, uint64_t now) {
        if (a->listeners_armed || a->draining || now < a->resume_accept_usec)
                return;
        Conn *idle = NULL, *socket = NULL;
        if (find_room(a, now, &idle, &socket) == ROOM_FOUND)
                listeners_arm(a, true);
}

/* Accepts a batch from one listener. Returns false when the listener has
 * nothing more (or we must pause), true when it may have more. */
static bool accept_batch(Acceptor *a, int listen_fd, uint64_t now) {
        for (int i = 0; i < ACCEPTOR_ACCEPT_BATCH; i++) {
                Conn *idle = NULL, *socket = NULL;
                Room room = find_room(a, now, &idle, &socket);
                if (room == ROOM_LATER)
                        return false; /* still armed: the next loop comes at once */
                if (room == ROOM_NONE) {
                        listeners_arm(a, false);
                        return false;
                }
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                        if (accept_one(a, fd, now))
                                give_room(a, idle, socket, now);
                        continue;
                }
                if (errno == EAGAIN) {
                        /* The shortage is over only once the backlog it
                         * built up has been taken in: freeing descriptors
                         * one at a time is still the same shortage. */
                        if (a->accept_failing)
                                log_info("Accepting connections again.");
                        a->accept_failing = false;
                        return false;
                }
                if (accept_error_is_transient(errno))
                        continue;
                /* EMFILE, ENFILE, ENOBUFS, ENOMEM: accepting again at once
                 * would spin. Pause, as OpenBSD httpd does. */
                if (!a->accept_failing)
                        log_warning_errno(errno, "Failed to accept connections, pausing for 100ms at a time "
                                          "until it works again: %m");
                a->accept_failing = true;
                listeners_arm(a, false);
                a->resume_accept_usec = now + ACCEPTOR_PAUSE_USEC;
                return false;
        }
        return true;
}

static void close_listeners(Acceptor *a) {
        listeners_arm(a, false);
        for (size_t i = 0; i < a->n_listeners; i++)
                a->listeners[i].fd = safe_close(a->listeners[i].fd);
        a->n_listeners = 0;
}

/* Ends the connections of a list that have nothing of a request pending;
 * those with a request waiting in the socket stay parked, and are answered
 * with Connection: close when it wakes them. A connection opened less than
 * ACCEPTOR_DRAIN_GRACE_USEC before `now` is spared: its first request may
 * still be on the wire, and a client seldom retries on a new connection. */
static void end_idle(Acceptor *a, int list, uint64_t now) {
        Conn *next;
        for (Conn *c = a->lists[list].head; c; c = next) {
                next = c->next;
                bool fresh = c->n_requests == 0 &&
                             c->request_started_usec + ACCEPTOR_DRAIN_GRACE_USEC > now;
                if ((!fresh && conn_is_idle(c)) || (conn_discarding(c) && !c->responding))
                        linger_begin(a, c, now);
        }
}

static void begin_drain(Acceptor *a, uint64_t now) {
        a->draining = true;
        atomic_store(&a->ctx->draining, true);

        /* Our own listeners die with us, and so would the connections in
         * their backlog: take those in and answer them. With socket
         * activation systemd keeps the listeners, and the backlog waits for
         * the next instance instead. */
        if (!a->options.socket_activated)
                for (size_t i = 0; i < a->n_listeners; i++)
                        while (n_active(a) < connection_limit(a) && accept_batch(a, a->listeners[i].fd, now))
                                ;
        close_listeners(a);
        end_idle(a, LIST_IDLE, now);
        end_idle(a, LIST_HEADER, now);

        a->drain_deadline_usec = now + cfg(a)->shutdown_timeout_usec;
        char status[128];
        snprintf(status, sizeof(status), "Stopping: draining %u connection(s)", a->n_conns);
        notify_stopping(status);
        log_info("Stopping: no longer accepting, draining %u connection(s).", a->n_conns);
}

static void cut_remaining(Acceptor *a, const char *why) {
        if (a->cutting)
                return;
        a->cutting = true;
        if (a->n_conns > 0)
                log_warning("%s: cutting %u remaining connection(s).", why, a->n_conns);
        for (int l = LIST_NONE + 1; l < _LIST_MAX; l++)
                while (a->lists[l].head)
                        conn_close(a, a->lists[l].head);
        /* Connections on workers are closed as they come back, which is soon:
         * a worker never waits for a client. */
}

static bool listen_equal(const Config *x, const Config *y) {
        if (x->n_listen != y->n_listen)
                return false;
        for (size_t i = 0; i < x->n_listen; i++)
                if (strcmp(x->listen[i].text, y->listen[i].text) != 0)
                        return false;
        return true;
}

/* Settings that only a restart can change are kept at their running values,
 * and named, rather than half-applied. */
static void keep_restart_only_settings(const Acceptor *a, Config *next) {
        const Config *running = cfg(a);

        if (!a->options.socket_activated && !listen_equal(running, next)) {
                log_warning("Reload: listen= changed; new addresses take effect after a restart, "
                            "still listening on the old ones.");
                memcpy(next->listen, running->listen, sizeof(next->listen));
                next->n_listen = running->n_listen;
        }
        if (strcmp(next->access_log, running->access_log) != 0) {
                log_warning("Reload: [log] access changed; takes effect after a restart.");
                memcpy(next->access_log, running->access_log, sizeof(next->access_log));
        }
        if (next->workers != running->workers) {
                log_warning("Reload: workers= changed from %u to %u; takes effect after a restart.",
                            running->workers, next->workers);
                next->workers = running->workers;
        }
}

static int reload_site(Acceptor *a) {
        Site *site = NULL;
        char error[SITE_ERROR_MAX];

        int r = site_load(a->options.config_path, &site, error);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", error);
                snprintf(a->reload_failure, sizeof(a->reload_failure), "%s", error);
                return r;
        }
        keep_restart_only_settings(a, &site->config);
        serve_context_set_site(a->ctx, site);
        log_set_max_level(site->config.log_level);
        a->reload_failure[0] = '\0';
        log_info("Configuration reloaded from %s.", a->options.config_path);
        return 0;
}

/* However the reload goes, it ends with READY=1: a reload that never
 * answers would hang `systemctl reload`. */
static int reload(Acceptor *a) {
        char status[SITE_ERROR_MAX + 96];

        notify_reloading(now_usec(), "Reloading configuration");
        int r = reload_site(a);
        if (r < 0)
                snprintf(status, sizeof(status), "Reload failed, serving the previous configuration: %s",
                         a->reload_failure);
        else
                snprintf(status, sizeof(status), "Serving; configuration reloaded");
        notify_ready(status);
        a->next_status_usec = 0; /* the counters follow at once */
        return r;
}

static void answer_reload_askers(Acceptor *a, int result) {
        for (unsigned i = 0; i < a->n_reload_askers; i++) {
                int r = reload_answer(a->reload_askers[i], result);
                if (r < 0)
                        log_warning_errno(r, "Failed to tell process %d how the reload went, ignoring: %m",
                                          (int) a->reload_askers[i]);
        }
        a->n_reload_askers = 0;
}

/* SIGUSR1, after logrotate renamed the file. Workers keep writing to the
 * same descriptor number, which now refers to the new file. */
static void reopen_access_log(Acceptor *a) {
        if (!a->ctx->access_log)
                return;
        int r = access_log_reopen(a->ctx->access_log);
        if (r < 0)
                log_error_errno(r, "Failed to reopen the access log, still writing to the old file: %m");
        else
                log_info("Access log reopened.");
}

/* Only records what arrived: acting on it closes connections, and later
 * entries of the same epoll batch may point at them. */
static void read_signals(Acceptor *a) {
        struct signalfd_siginfo si;

        while (read(a->signal_source.fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        a->pending_reload = true;
                        if (reload_is_request(&si) && a->n_reload_askers < ACCEPTOR_MAX_RELOAD_ASKERS)
                                a->reload_askers[a->n_reload_askers++] = (pid_t) si.ssi_pid;
                }
                else if (si.ssi_signo == SIGUSR1)
                        reopen_access_log(a);
                else
                        a->pending_stops++;
        }
}

static void act_on_signals(Acceptor *a, uint64_t now) {
        if (a->pending_reload) {
                a->pending_reload = false;
                int r = -ESHUTDOWN;
                if (a->draining)
                        log_notice("Ignoring SIGHUP: stopping.");
                else
                        r = reload(a);
                answer_reload_askers(a, r);
        }
        for (; a->pending_stops > 0; a->pending_stops--) {
                if (a->draining)
                        cut_remaining(a, "Second stop signal received");
                else
                        begin_drain(a, now);
        }
}

static void expire_list(Acceptor *a, int list, uint64_t now, const char *what) {
        while (a->lists[list].head && a->lists[list].head->deadline_usec <= now) {
                log_debug("Closing connection: %s timed out.", what);
                conn_close(a, a->lists[list].head);
        }
}

static void report_status(Acceptor *a, uint64_t now) {
        StatusSnapshot s;

        /* Compared with memcmp(): padding must be zero too. */
        memset(&s, 0, sizeof(s));
        s.n_conns = a->n_conns;
        s.draining = a->draining;
        s.reload_failed = a->reload_failure[0] != '\0';
        s.queued = pool_queued(a->pool);
        s.n_requests = atomic_load_explicit(&a->ctx->n_requests, memory_order_relaxed);
        s.n_4xx = atomic_load_explicit(&a->ctx->n_4xx, memory_order_relaxed);
        s.n_5xx = atomic_load_explicit(&a->ctx->n_5xx, memory_order_relaxed);

        if (now < a->next_status_usec || memcmp(&s, &a->last_status, sizeof(s)) == 0)
                return;
        a->next_status_usec = now + ACCEPTOR_STATUS_USEC;
        a->last_status = s;
        notify_status("%s%u connection(s), %" PRIu64 " request(s) served (%" PRIu64 " 4xx, %" PRIu64
                      " 5xx), %zu queued%s",
                      s.draining ? "Stopping, draining: " : "Serving: ", s.n_conns, s.n_requests,
                      s.n_4xx, s.n_5xx, s.queued,
                      s.reload_failed ? "; last reload failed, running the previous configuration" : "");
}

/* WATCHDOG=1 proves more than a live main loop: it is withheld while any
 * worker has been stuck in one job for a whole interval, so systemd
 * restarts a wedged pool instead of trusting a loop that still turns. */
static void ping_watchdog(Acceptor *a, uint64_t now) {
        uint64_t interval = a->options.watchdog_usec;

        if (interval == 0 || now < a->next_watchdog_usec)
                return;
        a->next_watchdog_usec = now + interval / 2;
        bool progressing = pool_is_progressing(a->pool, now > interval ? now - interval : 0);
        if (progressing)
                notify_watchdog();
        else if (!a->watchdog_withheld)
                log_error("A worker has been stuck in one job for over %" PRIu64 " ms; withholding the watchdog ping.",
                          interval / USEC_PER_MSEC);
        a->watchdog_withheld = !progressing;
}

/* While the drain makes progress, ask systemd to wait for it (up to our own
 * shutdown timeout plus a margin to join and exit) rather than SIGKILL us
 * when TimeoutStopSec= runs out first. */
static void extend_stop_timeout(Acceptor *a, uint64_t now) {
        if (!a->draining || a->cutting || now < a->last_extend_usec + USEC_PER_SEC)
                return;
        a->last_extend_usec = now;
        if (!pool_is_progressing(a->pool, now > ACCEPTOR_PROGRESS_USEC ? now - ACCEPTOR_PROGRESS_USEC : 0))
                return;
        uint64_t left = a->drain_deadline_usec > now ? a->drain_deadline_usec - now : 0;
        notify_extend_timeout(left + ACCEPTOR_EXIT_MARGIN_USEC);
}

/* A request head that did not arrive in time gets 408 (RFC 9110 §15.5.9)
 * when part of it came; a connection that sent nothing is ended quietly,
 * like an idle keep-alive one. */
static void expire_heads(Acceptor *a, uint64_t now) {
        Conn *c;

        while ((c = a->lists[LIST_HEADER].head) && c->deadline_usec <= now) {
                /* A stalled body belongs to a request we answered already:
                 * a 408 now would be taken as the answer to the next one. */
                if (c->in_len > 0 && !conn_discarding(c)) {
                        log_debug("Request head timed out, answering 408.");
                        conn_send_timeout(c);
                }
                linger_begin(a, c, now);
        }
}

/* The client may be sending its next request right now: end, not close. */
static void expire_idle(Acceptor *a, uint64_t now) {
        Conn *c;

        while ((c = a->lists[LIST_IDLE].head) && c->deadline_usec <= now) {
                log_debug("Ending connection: keep-alive timed out.");
                linger_begin(a, c, now);
        }
}

static void expire(Acceptor *a, uint64_t now) {
        expire_heads(a, now);
        expire_idle(a, now);
        expire_list(a, LIST_WRITE, now, "send");
        expire_list(a, LIST_LINGER, now, "lingering close");
        a->n_cut = 0; /* deadline 0: all closed just now */
        if (a->draining && !a->cutting)
                end_idle(a, LIST_HEADER, now);
        if (a->draining && now >= a->drain_deadline_usec)
                cut_remaining(a, "Shutdown timeout reached");
        maybe_resume_accepting(a, now);
        extend_stop_timeout(a, now);
        ping_watchdog(a, now);
        report_status(a, now);
}

static int next_timeout_msec(const Acceptor *a, uint64_t now) {
        uint64_t next = now + ACCEPTOR_TICK_MSEC * USEC_PER_MSEC;

        for (int l = LIST_NONE + 1; l < _LIST_MAX; l++)
                if (a->lists[l].head)
                        next = MIN(next, a->lists[l].head->deadline_usec);
        if (a->draining && !a->cutting)
                next = MIN(next, a->drain_deadline_usec);
        if (!a->listeners_armed && !a->draining && a->resume_accept_usec > now)
                next = MIN(next, a->resume_accept_usec);
        if (a->options.watchdog_usec > 0)
                next = MIN(next, a->next_watchdog_usec);
        if (next <= now)
                return 0;
        return (int) ((next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static void handle_event(Acceptor *a, const struct epoll_event *ev, uint64_t now) {
        Source *s = ev->data.ptr;

        switch (s->kind) {
        case SOURCE_LISTENER:
                (void) accept_batch(a, s->fd, now);
                break;
        case SOURCE_SIGNAL:
                read_signals(a);
                break;
        case SOURCE_RETURN:
                take_back_returned(a, now);
                break;
        case SOURCE_CONN:
                dispatch(a, (Conn *) s);
                break;
        }
}

int acceptor_run(Acceptor *a) {
        struct epoll_event events[ACCEPTOR_MAX_EVENTS];

        while (!(a->draining && a->n_conns == 0)) {
                int n = epoll_wait(a->epoll_fd, events, ACCEPTOR_MAX_EVENTS,
                                   next_timeout_msec(a, now_usec()));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }
                uint64_t now = now_usec();
                for (int i = 0; i < n; i++)
                        handle_event(a, &events[i], now);
                act_on_signals(a, now);
                expire(a, now);
        }
        return 0;
}

static int acceptor_setup_fds(Acceptor *a) {
        sigset_t mask;

        a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (a->epoll_fd < 0)
                return -errno;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        a->signal_source = (Source) { .kind = SOURCE_SIGNAL, .fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC) };
        if (a->signal_source.fd < 0)
                return -errno;
        a->return_source = (Source) { .kind = SOURCE_RETURN, .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
        if (a->return_source.fd < 0)
                return -errno;

        int r = epoll_update(a, EPOLL_CTL_ADD, &a->signal_source, EPOLLIN);
        if (r < 0)
                return r;
        return epoll_update(a, EPOLL_CTL_ADD, &a->return_source, EPOLLIN);
}

int acceptor_new(ServeContext *ctx, Pool *pool, const int *listen_fds, size_t n_listen,
                 const AcceptorOptions *options, Acceptor **ret) {
        Acceptor *a = calloc(1, sizeof(Acceptor));
        if (!a)
                return -ENOMEM;
        *a = (Acceptor) {
                .ctx = ctx,
                .pool = pool,
                .epoll_fd = -EBADF,
                .signal_source.fd = -EBADF,
                .return_source.fd = -EBADF,
                .options = *options,
        };
        pthread_mutex_init(&a->return_lock, NULL);

        a->listeners = calloc(n_listen, sizeof(Source));
        if (!a->listeners) {
                acceptor_free(a);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_listen; i++)
                a->listeners[a->n_listeners++] = (Source) { .kind = SOURCE_LISTENER, .fd = listen_fds[i] };

        int r = acceptor_setup_fds(a);
        if (r < 0) {
                acceptor_free(a);
                return r;
        }
        listeners_arm(a, true);
        *ret = a;
        return 0;
}

Acceptor *acceptor_free(Acceptor *a) {
        if (!a)
                return NULL;
        close_listeners(a);
        for (int l = LIST_NONE + 1; l < _LIST_MAX; l++)
                while (a->lists[l].head)
                        conn_close(a, a->lists[l].head);
        /* Only non-empty if the loop failed while workers were busy. */
        for (Conn *c = a->returned, *next; c; c = next) {
                next = c->next_returned;
                conn_free(c);
        }
        (void) safe_close(a->signal_source.fd);
        (void) safe_close(a->return_source.fd);
        (void) safe_close(a->epoll_fd);
        pthread_mutex_destroy(&a->return_lock);
        free(a->listeners);
        free(a);
        return NULL;
}
