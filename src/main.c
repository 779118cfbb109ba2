/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "acceptor.h"
#include "config.h"
#include "conn.h"
#include "file.h"
#include "listen.h"
#include "log.h"
#include "mime.h"
#include "pool.h"
#include "reload.h"
#include "site.h"

#define EXIT_USAGE 64  /* EX_USAGE */
#define EXIT_CONFIG 78 /* EX_CONFIG */

typedef struct Options {
        const char *config_path;
        bool test_only;
        pid_t reload_pid; /* -r: check the file, then have this daemon reload it */
} Options;

static void help(void) {
        printf("Usage: webpoold [-c FILE] [-t | -r PID] [-h] [-V]\n"
               "Serve static files over HTTP/1.1.\n\n"
               "  -c FILE  configuration file (default %s)\n"
               "  -t       check the configuration and exit (0 valid, 78 invalid)\n"
               "  -r PID   check the configuration, then have the daemon PID reload it\n"
               "           and wait for it (0 reloaded, 78 invalid, 1 refused or no answer)\n"
               "  -h       show this help\n"
               "  -V       show the version\n",
               CONFIG_DEFAULT_PATH);
}

static int parse_pid(const char *s, pid_t *ret) {
        char *end;

        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v <= 1 || v > INT32_MAX)
                return -EINVAL;
        *ret = (pid_t) v;
        return 0;
}

/* Returns 1 to go on, 0 to exit successfully, or a negative errno. */
static int parse_argv(int argc, char *argv[], Options *ret) {
        Options o = { .config_path = CONFIG_DEFAULT_PATH };
        int opt;

        while ((opt = getopt(argc, argv, "c:tr:hV")) >= 0)
                switch (opt) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case 't':
                        o.test_only = true;
                        break;
                case 'r':
                        if (parse_pid(optarg, &o.reload_pid) < 0) {
                                fprintf(stderr, "webpoold: -r needs a process ID, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("webpoold %s\n", WEBPOOLD_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "webpoold: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        *ret = o;
        return 1;
}

/* systemd starts services with a soft limit of 1024 descriptors; the hard
 * limit is what the administrator granted (LimitNOFILE=). */
static void raise_nofile_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(errno, "Failed to raise the open file limit, ignoring: %m");
}

/* Descriptors besides the clients': standard streams, epoll, signalfd,
 * eventfd, the root (two during a reload), the access log, the notify
 * socket, and the files a reload reads; the listeners come on top. */
#define NOFILE_RESERVE 16U

/* A connection holds its socket and, while it is sent one, a file. Few
 * connections send at once compared with those that wait, so a quarter of
 * what is left is kept for files and the rest bounds the sockets: past it
 * an established client would get a 500 for every file for want of one. */
static unsigned sockets_allowed(size_t n_listeners, uint64_t *ret_limit) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
                *ret_limit = UINT64_MAX;
                return UINT_MAX;
        }
        uint64_t reserve = NOFILE_RESERVE + n_listeners;
        uint64_t left = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 0;
        *ret_limit = rl.rlim_cur;
        return (unsigned) MAX(UINT64_C(1), MIN(left - left / 4, (uint64_t) UINT_MAX));
}

static int open_listeners(const Config *c, int fds[static LISTEN_MAX_FDS], size_t *ret_n,
                          bool *ret_activated) {
        int bad_fd = -1;
        int n = listen_from_systemd(fds, &bad_fd);

        if (n == -EINVAL)
                return log_error_errno(n, "Passed file descriptor %d is not a listening stream socket.", bad_fd);
        if (n < 0)
                return log_error_errno(n, "Failed to take sockets from systemd: %m");
        if (n > 0) {
                log_info("Socket-activated with %d socket(s); the listen= settings are not used.", n);
                *ret_n = (size_t) n;
                *ret_activated = true;
                return 0;
        }
        for (size_t i = 0; i < c->n_listen; i++) {
                int fd = listen_bind(&c->listen[i]);
                if (fd < 0) {
                        while (i > 0)
                                (void) safe_close(fds[--i]);
                        return log_error_errno(fd, "Failed to listen on %s: %m", c->listen[i].text);
                }
                fds[i] = fd;
        }
        *ret_n = c->n_listen;
        *ret_activated = false;
        return 0;
}

/* Chosen once, before the workers start; a reload keeps the choice. */
static int resolver_error;

static void choose_resolver(int root_fd) {
        file_set_resolver(file_probe_resolver(root_fd, &resolver_error));
}

/* Without /proc every file would be answered 500; better not to start. */
static int check_reopen(int root_fd) {
        int r = file_probe_reopen(root_fd);

        if (r < 0)
                return log_error_errno(r, "Cannot open files through /proc/self/fd, which serving needs "
                                          "(is /proc mounted?): %m");
        return 0;
}

static void describe_resolver(char *out, size_t size) {
        FileResolver r = file_get_resolver();

        if (r == FILE_RESOLVE_OPENAT2)
                snprintf(out, size, "%s", file_resolver_to_string(r));
        else
                snprintf(out, size, "%s (openat2: %s)", file_resolver_to_string(r), strerror(resolver_error));
}

/* Said once, at start: a reload to a larger max_connections is capped the
 * same way without a word, the limit being the same. */
static void describe_connection_limit(const Config *c, unsigned max_sockets, uint64_t nofile,
                                      char *buf, size_t size) {
        if (c->max_connections <= max_sockets)
                snprintf(buf, size, "at most %u connections", c->max_connections);
        else
                snprintf(buf, size, "at most %u connections (max_connections=%u, capped by the open-file "
                         "limit of %" PRIu64 "; raise LimitNOFILE= to lift it)",
                         max_sockets, c->max_connections, nofile);
}

static void log_startup(const Config *c, const int *fds, size_t n, const MimeTable *mime,
                        unsigned max_sockets, uint64_t nofile) {
        char resolver[160], limit[192];
        char addresses[1024] = "";
        size_t len = 0;

        for (size_t i = 0; i < n && len < sizeof(addresses); i++) {
                char one[160];
                listen_describe(fds[i], one, sizeof(one));
                len += (size_t) snprintf(addresses + len, sizeof(addresses) - len, "%s%s",
                                         i > 0 ? ", " : "", one);
        }
        describe_resolver(resolver, sizeof(resolver));
        describe_connection_limit(c, max_sockets, nofile, limit, sizeof(limit));
        (void) log_full_errno(c->max_connections <= max_sockets ? LOG_INFO : LOG_NOTICE, 0,
                 "webpoold %s serving %s on %s with %u worker thread(s), %s, %u MIME types; paths resolved by %s.",
                 WEBPOOLD_VERSION, c->root, addresses, c->workers, limit, mime_table_size(mime), resolver);
        (void) sd_notifyf(0, "READY=1\nSTATUS=Serving %s on %s with %u worker thread(s)",
                          c->root, addresses, c->workers);
}

/* Blocked in every thread (workers inherit the mask): the acceptor reads
 * them from a signalfd. SIGPIPE is ignored: a client that goes away must
 * cost an EPIPE, not the process. */
static void setup_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        (void) pthread_sigmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
}

static int serve(const Options *o, const Config *c, ServeContext *ctx) {
        int fds[LISTEN_MAX_FDS];
        size_t n_fds = 0;
        Pool *pool = NULL;
        Acceptor *acceptor = NULL;
        AcceptorOptions options = { .config_path = o->config_path };

        uint64_t nofile;
        int r = open_listeners(c, fds, &n_fds, &options.socket_activated);
        if (r < 0)
                return r;
        options.max_sockets = sockets_allowed(n_fds, &nofile);
        /* Unset, so nothing we might start inherits it. */
        if (sd_watchdog_enabled(/* unset_environment= */ 1, &options.watchdog_usec) <= 0)
                options.watchdog_usec = 0;

        r = pool_new(c->workers, &pool);
        if (r < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        (void) safe_close(fds[i]);
                return log_error_errno(r, "Failed to start %u worker threads: %m", c->workers);
        }
        r = acceptor_new(ctx, pool, fds, n_fds, &options, &acceptor);
        if (r < 0) {
                pool_free(pool);
                return log_error_errno(r, "Failed to set up the event loop: %m");
        }
        log_startup(c, fds, n_fds, ctx->mime, options.max_sockets, nofile);

        r = acceptor_run(acceptor);
        pool_shutdown(pool);
        log_info("All %u worker thread(s) joined; %" PRIuFAST64 " request(s) served. Exiting.",
                 pool_threads(pool), atomic_load(&ctx->n_requests));
        acceptor_free(acceptor);
        pool_free(pool);
        return r;
}

static int load_mime(ServeContext *ctx) {
        MimeTable *mime = NULL;
        int error = 0;

        if (mime_table_new(NULL, &mime, &error) < 0)
                return log_error_errno(ENOMEM, "Failed to build the MIME table: %m");
        if (error < 0)
                log_warning_errno(error, "Failed to read %s, using built-in MIME types: %m", MIME_SYSTEM_FILE);
        ctx->mime = mime;
        return 0;
}

static int open_access_log(ServeContext *ctx, const Config *config) {
        AccessLog *log = NULL;

        if (strcmp(config->access_log, "off") == 0)
                return 0;
        int r = access_log_open(config->access_log, &log);
        if (r < 0)
                return log_error_errno(r, "Failed to open the access log %s: %m", config->access_log);
        ctx->access_log = log;
        return 0;
}

/* The file was checked here first, so a refusal now means it changed in
 * between, or the daemon could not open what it names. */
static int ask_reload(const Options *o) {
        char proc[32];
        struct stat st;

        /* The answer comes back as a signal, which only the same user may
         * send: ExecReload= runs as the service's user, as it must. */
        snprintf(proc, sizeof(proc), "/proc/%d", (int) o->reload_pid);
        if (stat(proc, &st) == 0 && st.st_uid != geteuid()) {
                log_error("Process %d runs as uid %u: run webpoold -r as that user (ExecReload= does).",
                          (int) o->reload_pid, (unsigned) st.st_uid);
                return EXIT_FAILURE;
        }
        int r = reload_request(o->reload_pid);

        if (r == -ETIMEDOUT)
                log_error("Process %d did not answer the reload request within %d s.", (int) o->reload_pid,
                          RELOAD_ANSWER_TIMEOUT_SEC);
        else if (r < 0)
                log_error_errno(r, "Process %d did not reload %s (%m); its log says why.", (int) o->reload_pid,
                                o->config_path);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int run(const Options *o) {
        ServeContext ctx = { .site_lock = PTHREAD_MUTEX_INITIALIZER };
        char error[SITE_ERROR_MAX];
        Site *site = NULL;

        if (site_load(o->config_path, &site, error) < 0) {
                log_error("%s", error);
                return EXIT_CONFIG;
        }
        if (o->test_only) {
                site_unref(site);
                printf("webpoold: configuration file %s is valid\n", o->config_path);
                return EXIT_SUCCESS;
        }
        if (o->reload_pid > 0) {
                site_unref(site);
                return ask_reload(o);
        }
        serve_context_set_site(&ctx, site);
        const Config *config = &site->config; /* the startup one; reloads swap ctx.site */

        log_set_max_level(config->log_level);
        choose_resolver(site->root_fd);
        raise_nofile_limit();
        setup_signals();

        int r = check_reopen(site->root_fd);
        if (r >= 0)
                r = load_mime(&ctx);
        if (r >= 0)
                r = open_access_log(&ctx, config);
        if (r >= 0)
                r = serve(o, config, &ctx);

        access_log_free(ctx.access_log);
        site_unref(ctx.site);
        mime_table_free(ctx.mime);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        Options options;

        log_open();
        int r = parse_argv(argc, argv, &options);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : EXIT_USAGE;
        return run(&options);
}
