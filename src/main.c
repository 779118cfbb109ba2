/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "acceptor.h"
#include "config.h"
#include "conn.h"
#include "listen.h"
#include "log.h"
#include "mime.h"
#include "pool.h"
#include "site.h"

#define EXIT_USAGE 64  /* EX_USAGE */
#define EXIT_CONFIG 78 /* EX_CONFIG */

typedef struct Options {
        const char *config_path;
        bool test_only;
} Options;

static void help(void) {
        printf("Usage: webpoold [-c FILE] [-t] [-h] [-V]\n"
               "Serve static files over HTTP/1.1.\n\n"
               "  -c FILE  configuration file (default %s)\n"
               "  -t       check the configuration and exit (0 valid, 78 invalid)\n"
               "  -h       show this help\n"
               "  -V       show the version\n",
               CONFIG_DEFAULT_PATH);
}

/* Returns 1 to go on, 0 to exit successfully, or a negative errno. */
static int parse_argv(int argc, char *argv[], Options *ret) {
        Options o = { .config_path = CONFIG_DEFAULT_PATH };
        int opt;

        while ((opt = getopt(argc, argv, "c:thV")) >= 0)
                switch (opt) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case 't':
                        o.test_only = true;
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

/* Each connection takes a descriptor, and one more for the file it is being
 * sent (also while parked on a slow reader). Say so if the limit caps the
 * setting. */
static void check_nofile_limit(const Config *c) {
        struct rlimit rl;
        uint64_t wanted = (uint64_t) c->max_connections * 2U + 64U;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted)
                log_warning("max_connections=%u needs about %" PRIu64 " file descriptors but the limit is %llu; "
                            "raise LimitNOFILE= or expect accepting to pause near the limit.",
                            c->max_connections, wanted, (unsigned long long) rl.rlim_cur);
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

static void log_startup(const Config *c, const int *fds, size_t n, const MimeTable *mime) {
        char addresses[1024] = "";
        size_t len = 0;

        for (size_t i = 0; i < n && len < sizeof(addresses); i++) {
                char one[160];
                listen_describe(fds[i], one, sizeof(one));
                len += (size_t) snprintf(addresses + len, sizeof(addresses) - len, "%s%s",
                                         i > 0 ? ", " : "", one);
        }
        log_info("webpoold %s serving %s on %s with %u worker thread(s), %u MIME types.",
                 WEBPOOLD_VERSION, c->root, addresses, c->workers, mime_table_size(mime));
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

        int r = open_listeners(c, fds, &n_fds, &options.socket_activated);
        if (r < 0)
                return r;
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
        log_startup(c, fds, n_fds, ctx->mime);

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
        serve_context_set_site(&ctx, site);
        const Config *config = &site->config; /* the startup one; reloads swap ctx.site */

        log_set_max_level(config->log_level);
        raise_nofile_limit();
        check_nofile_limit(config);
        setup_signals();

        int r = load_mime(&ctx);
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
