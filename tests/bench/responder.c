/* SPDX-License-Identifier: MIT */
/*
 * responder: the benchmark's limit line. It answers every request on a
 * connection with the same response, a short head and the bytes of one file
 * read at start, so what wrk measures against it is what this machine, this
 * client and loopback TCP can do when a server costs next to nothing.
 *
 * DESIGN: one thread per online CPU, each with its own listening socket
 * (SO_REUSEPORT, so the kernel spreads connections and no thread waits on
 * another) and its own edge-triggered epoll set; a connection stays on the
 * thread that accepted it. A request is whatever ends in an empty line:
 * nothing is parsed but "Connection: close", which wrk's close scenario
 * sends and which must close, or wrk would go on reusing the connection.
 * Pipelined requests are answered in order. Responses are never copied per
 * request: all keep-alive answers are the same bytes, so what is owed is a
 * byte count into a buffer holding many copies of the response. A
 * connection is read only once everything owed to it is sent, which bounds
 * that count by what one read can ask for.
 *
 * SIGTERM ends it at once: it holds nothing that needs tidying.
 *
 * Usage: responder ADDRESS PORT FILE [THREADS]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESPONDER_MAX_BODY 4096
#define RESPONDER_MAX_HEAD 4096  /* a longer request head closes the connection */
#define RESPONDER_MAX_THREADS 256
#define RESPONDER_STREAM_COPIES 64
#define RESPONDER_BACKLOG 4096   /* as webpoold's */

#define MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct Conn {
        int fd;
        size_t in_len;
        size_t scanned;    /* bytes of in[] already searched for the end of a head */
        uint64_t out_left; /* keep-alive response bytes owed */
        size_t out_off;    /* where in the response the next owed byte is */
        size_t close_left; /* bytes of the closing response owed */
        bool closing;
        char in[RESPONDER_MAX_HEAD];
} Conn;

static char *stream;  /* RESPONDER_STREAM_COPIES keep-alive responses back to back */
static size_t resp_len;
static char close_resp[RESPONDER_MAX_BODY + 256];
static size_t close_len;

static int build_responses(const char *path) {
        char body[RESPONDER_MAX_BODY + 1];
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        size_t n = fread(body, 1, sizeof(body), f);
        bool bad = ferror(f) || n > RESPONDER_MAX_BODY;
        fclose(f);
        if (bad)
                return -EFBIG;

        char head[256];
        int h = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                         "Content-Length: %zu\r\n\r\n", n);
        resp_len = (size_t) h + n;
        stream = malloc(resp_len * RESPONDER_STREAM_COPIES);
        if (!stream)
                return -ENOMEM;
        for (size_t i = 0; i < RESPONDER_STREAM_COPIES; i++) {
                memcpy(stream + i * resp_len, head, (size_t) h);
                memcpy(stream + i * resp_len + h, body, n);
        }
        h = snprintf(close_resp, sizeof(close_resp), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", n);
        memcpy(close_resp + h, body, n);
        close_len = (size_t) h + n;
        return 0;
}

/* True if the head [p, p+n) has a Connection field holding "close". */
static bool head_wants_close(const char *p, size_t n) {
        static const char name[] = "\nconnection:";
        const size_t name_len = sizeof(name) - 1;

        for (size_t i = 0; i + name_len <= n; i++) {
                if (p[i] != '\n' || strncasecmp(p + i, name, name_len) != 0)
                        continue;
                size_t j = i + name_len;
                while (j < n && (p[j] == ' ' || p[j] == '\t'))
                        j++;
                if (n - j >= 5 && strncasecmp(p + j, "close", 5) == 0)
                        return true;
        }
        return false;
}

/* Owes a response for every complete head in the buffer; returns -EMSGSIZE
 * when the buffer is full and holds no complete head. */
static int conn_take_requests(Conn *c) {
        size_t start = 0;

        while (!c->closing) {
                size_t from = c->scanned > start + 3 ? c->scanned - 3 : start;
                char *end = memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4);
                if (!end) {
                        c->scanned = c->in_len;
                        break;
                }
                size_t head_end = (size_t) (end - c->in) + 4;
                if (head_wants_close(c->in + start, head_end - start)) {
                        c->closing = true;
                        c->close_left = close_len;
                } else
                        c->out_left += resp_len;
                start = c->scanned = head_end;
        }
        if (c->closing)
                return 0;
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        c->scanned -= start;
        return c->in_len == sizeof(c->in) ? -EMSGSIZE : 0;
}

/* Returns 1 when nothing is owed any more, 0 when the socket is full. */
static int conn_flush(Conn *c) {
        while (c->out_left > 0 || c->close_left > 0) {
                const char *p;
                size_t n;
                if (c->out_left > 0) {
                        p = stream + c->out_off;
                        n = (size_t) MIN(c->out_left, (uint64_t) (resp_len * RESPONDER_STREAM_COPIES - c->out_off));
                } else {
                        p = close_resp + (close_len - c->close_left);
                        n = c->close_left;
                }
                ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
                if (k < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (c->out_left > 0) {
                        c->out_left -= (uint64_t) k;
                        c->out_off = (c->out_off + (size_t) k) % resp_len;
                } else
                        c->close_left -= (size_t) k;
        }
        return 1;
}

/* Runs the connection until the socket would block; returns < 0 once it
 * is to be closed. */
static int conn_run(Conn *c) {
        for (;;) {
                int r = conn_flush(c);
                if (r <= 0)
                        return r;
                if (c->closing)
                        return -ECONNRESET;
                ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                c->in_len += (size_t) n;
                r = conn_take_requests(c);
                if (r < 0)
                        return r;
        }
}

static void accept_all(int epfd, int lfd) {
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                perror("responder: accept4");
                        return;
                }
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                Conn *c = malloc(sizeof(Conn));
                if (!c) {
                        close(fd);
                        continue;
                }
                *c = (Conn) { .fd = fd };
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(c);
                }
        }
}

static void *worker(void *arg) {
        int lfd = (int) (intptr_t) arg;
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

        if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
                perror("responder: epoll");
                exit(EXIT_FAILURE);
        }
        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(epfd, evs, 64, -1);
                for (int i = 0; i < n; i++) {
                        Conn *c = evs[i].data.ptr;
                        if (!c) {
                                accept_all(epfd, lfd);
                                continue;
                        }
                        if (conn_run(c) < 0) {
                                close(c->fd); /* also takes it out of the epoll set */
                                free(c);
                        }
                }
        }
        return NULL;
}

/* Exit status 0, as a server stopped on purpose gives. */
static void on_sigterm(int sig) {
        (void) sig;
        _exit(EXIT_SUCCESS);
}

static int listen_on(const char *addr, unsigned port) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
                return -EINVAL;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0 ||
            listen(fd, RESPONDER_BACKLOG) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int main(int argc, char **argv) {
        if (argc < 4 || argc > 5) {
                fprintf(stderr, "Usage: %s ADDRESS PORT FILE [THREADS]\n", argv[0]);
                return EXIT_FAILURE;
        }
        char *end;
        unsigned long port = strtoul(argv[2], &end, 10);
        long threads = argc == 5 ? strtol(argv[4], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
        if (*end || port == 0 || port > 65535 || threads < 1 || threads > RESPONDER_MAX_THREADS) {
                fprintf(stderr, "responder: bad port or thread count\n");
                return EXIT_FAILURE;
        }
        int r = build_responses(argv[3]);
        if (r < 0) {
                fprintf(stderr, "responder: %s: %s\n", argv[3], strerror(-r));
                return EXIT_FAILURE;
        }

        /* Connections are limited by descriptors only; take all we may. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        (void) signal(SIGPIPE, SIG_IGN);
        (void) signal(SIGTERM, on_sigterm);

        /* Every listener is bound before any thread runs, so a port that is
         * taken fails the start rather than leaving fewer threads serving. */
        int fds[RESPONDER_MAX_THREADS];
        for (long i = 0; i < threads; i++) {
                fds[i] = listen_on(argv[1], (unsigned) port);
                if (fds[i] < 0) {
                        fprintf(stderr, "responder: listen on %s:%lu: %s\n", argv[1], port, strerror(-fds[i]));
                        return EXIT_FAILURE;
                }
        }
        pthread_t tids[RESPONDER_MAX_THREADS];
        for (long i = 0; i < threads; i++) {
                r = pthread_create(&tids[i], NULL, worker, (void *) (intptr_t) fds[i]);
                if (r != 0) {
                        fprintf(stderr, "responder: pthread_create: %s\n", strerror(r));
                        return EXIT_FAILURE;
                }
        }
        fprintf(stderr, "responder: %ld thread(s) on %s:%lu, %zu-byte responses\n", threads, argv[1], port, resp_len);
        for (long i = 0; i < threads; i++)
                (void) pthread_join(tids[i], NULL);
        return EXIT_SUCCESS;
}
