/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"

/* Every test parses with base_dir = tmp, which holds a directory "site" and
 * a regular file "plain", so "root = site" is a valid root. */
static char tmp[PATH_MAX];
static char site[PATH_MAX];

static void path_in_tmp(char *buf, size_t size, const char *name) {
        int n = snprintf(buf, size, "%s/%s", tmp, name);
        assert_true(n > 0 && (size_t) n < size);
}

static void write_file(const char *path, const char *data, size_t size) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static int setup_tmp(void **state) {
        char dir[] = "/tmp/test-config-XXXXXX", plain[PATH_MAX];
        (void) state;
        if (!mkdtemp(dir) || !realpath(dir, tmp))
                return -1;
        path_in_tmp(site, sizeof(site), "site");
        path_in_tmp(plain, sizeof(plain), "plain");
        if (mkdir(site, 0755) < 0)
                return -1;
        write_file(plain, "x", 1);
        return 0;
}

static int teardown_tmp(void **state) {
        char plain[PATH_MAX];
        (void) state;
        path_in_tmp(plain, sizeof(plain), "plain");
        (void) unlink(plain);
        (void) rmdir(site);
        return rmdir(tmp) < 0 ? -1 : 0;
}

static int parse(const char *text, Config *c, ConfigError *e) {
        return config_parse_string(text, tmp, c, e);
}

/* Reads a file of the source tree; the tests run from its top directory
 * unless WEBPOOLD_SRCDIR says otherwise. */
static char *source_path(const char *name) {
        const char *top = getenv("WEBPOOLD_SRCDIR");
        char *path;
        assert_true(asprintf(&path, "%s/%s", top ?: ".", name) > 0);
        return path;
}

static char *read_source(const char *name) {
        _cleanup_free_ char *path = source_path(name);
        char *text = calloc(1, 65536);
        FILE *f = fopen(path, "re");
        assert_non_null(text);
        assert_non_null(f);
        assert_true(fread(text, 1, 65535, f) < 65535);
        assert_int_equal(fclose(f), 0);
        return text;
}

static void test_full_config(void **state) {
        static const char text[] =
                "; every key\n"
                "[server]\n"
                "listen = 127.0.0.1:8080 [::1]:8081\n"
                "listen = *:8082\n"
                "         8083\n"
                "listen = unix:web.sock /run/webpoold.sock\n"
                "root = site ; inline comment\n"
                "index = start.htm\n"
                "error_page_404 = /errors/404.html\n"
                "workers = 3\n"
                "max_connections = 500\n"
                "max_header_bytes = 16384\n"
                "\n"
                "[timeouts]\n"
                "header = 500ms\n"
                "keepalive = 0\n"
                "send = 2min\n"
                "shutdown = 1h\n"
                "[log]\n"
                "level = debug\n"
                "access = access.log\n";
        char sock[PATH_MAX], access_log[PATH_MAX];
        Config c;
        ConfigError e;
        (void) state;

        assert_int_equal(parse(text, &c, &e), 0);
        assert_int_equal(c.n_listen, 6);
        assert_int_equal(c.listen[0].kind, LISTEN_INET);
        assert_string_equal(c.listen[0].host, "127.0.0.1");
        assert_int_equal(c.listen[0].port, 8080);
        assert_int_equal(c.listen[1].kind, LISTEN_INET6);
        assert_string_equal(c.listen[1].host, "::1");
        assert_int_equal(c.listen[1].port, 8081);
        assert_string_equal(c.listen[2].host, "");
        assert_int_equal(c.listen[3].port, 8083);
        path_in_tmp(sock, sizeof(sock), "web.sock");
        assert_int_equal(c.listen[4].kind, LISTEN_UNIX);
        assert_string_equal(c.listen[4].path, sock);
        assert_string_equal(c.listen[4].text, "unix:web.sock");
        assert_string_equal(c.listen[5].path, "/run/webpoold.sock");
        assert_string_equal(c.root, site);
        assert_string_equal(c.index, "start.htm");
        assert_string_equal(c.error_page_404, "/errors/404.html");
        assert_int_equal(c.workers, 3);
        assert_int_equal(c.max_connections, 500);
        assert_int_equal(c.max_header_bytes, 16384);
        assert_int_equal(c.header_timeout_usec, 500000);
        assert_int_equal(c.keepalive_timeout_usec, 0);
        assert_int_equal(c.send_timeout_usec, UINT64_C(120000000));
        assert_int_equal(c.shutdown_timeout_usec, UINT64_C(3600000000));
        assert_int_equal(c.log_level, LOG_DEBUG);
        path_in_tmp(access_log, sizeof(access_log), "access.log");
        assert_string_equal(c.access_log, access_log);
}

static void assert_defaults(const Config *c) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        assert_int_equal(c->n_listen, 2);
        assert_int_equal(c->listen[0].kind, LISTEN_INET);
        assert_string_equal(c->listen[0].host, "");
        assert_int_equal(c->listen[0].port, 80);
        assert_int_equal(c->listen[1].kind, LISTEN_INET6);
        assert_string_equal(c->listen[1].host, "");
        assert_int_equal(c->listen[1].port, 80);
        assert_string_equal(c->index, "index.html");
        assert_string_equal(c->error_page_404, "");
        assert_int_equal(c->workers, cpus < 1 ? 1 : MIN(cpus, CONFIG_MAX_WORKERS));
        assert_int_equal(c->max_connections, 10000);
        assert_int_equal(c->max_header_bytes, 8192);
        assert_int_equal(c->header_timeout_usec, UINT64_C(60000000));
        assert_int_equal(c->keepalive_timeout_usec, UINT64_C(75000000));
        assert_int_equal(c->send_timeout_usec, UINT64_C(60000000));
        assert_int_equal(c->shutdown_timeout_usec, UINT64_C(30000000));
        assert_int_equal(c->log_level, LOG_INFO);
        assert_string_equal(c->access_log, "off");
}

static void test_init_defaults(void **state) {
        Config c;
        (void) state;

        config_init_defaults(&c);
        assert_string_equal(c.root, "/var/www/html");
        assert_int_equal(c.workers, 0);
        assert_string_equal(c.listen[0].text, "*:80");
        assert_string_equal(c.listen[1].text, "[::]:80");
}

static void test_defaults(void **state) {
        Config c;
        ConfigError e;
        (void) state;

        assert_int_equal(parse("[server]\nroot = site\n", &c, &e), 0);
        assert_string_equal(c.root, site);
        assert_defaults(&c);
}

/* The default root is only there on a machine with a web server. */
static void test_empty_text(void **state) {
        Config c;
        ConfigError e;
        int r;
        (void) state;

        r = parse("", &c, &e);
        if (access("/var/www/html/.", F_OK) == 0) {
                assert_int_equal(r, 0);
                assert_defaults(&c);
                return;
        }
        assert_int_equal(r, -EINVAL);
        assert_int_equal(e.line, 0);
        assert_string_equal(e.key, "server.root");
        assert_non_null(strstr(e.message, "/var/www/html"));
}

static void test_relative_root(void **state) {
        Config c;
        ConfigError e;
        (void) state;

        assert_int_equal(parse("[server]\nroot = ./site/../site/\n", &c, &e), 0);
        assert_string_equal(c.root, site);
        assert_int_equal(config_parse_string("[server]\nroot = .\n", site, &c, &e), 0);
        assert_string_equal(c.root, site);
        assert_int_equal(parse("[server]\nroot = /\n", &c, &e), 0);
        assert_string_equal(c.root, "/");
}

static void test_listen_replaces_defaults(void **state) {
        Config c;
        ConfigError e;
        (void) state;

        assert_int_equal(parse("[server]\nroot = site\nlisten = [::]:80\nlisten = *:80 *:81\n", &c, &e), 0);
        assert_int_equal(c.n_listen, 3);
        assert_int_equal(c.listen[0].kind, LISTEN_INET6);
        assert_int_equal(c.listen[2].port, 81);
}

typedef struct ErrorCase {
        const char *text;
        unsigned line;
        const char *key;
        const char *message; /* a part of it */
} ErrorCase;

static const ErrorCase error_cases[] = {
        { "[server]\nroot = site\n[bogus]\nx = 1\n", 3, "", "unknown section [bogus]" },
        { "[server]\nroot = site\n[bogus]\n", 3, "", "unknown section [bogus]" },
        { "[server]\n  [bogus]\nx = 1\n", 3, "", "unknown section [bogus]" },
        { "x = 1\n", 1, "", "outside of any section" },
        { "[server]\nrooot = site\n", 2, "server.rooot", "unknown key 'rooot' in section [server]" },
        { "[log]\nroot = site\n", 2, "log.root", "unknown key 'root'" },
        { "[server]\nworkers = abc\n", 2, "server.workers",
          "invalid value 'abc': expected a whole number between 0 and 1024" },
        { "[server]\nworkers = 4x\n", 2, "server.workers", "invalid value '4x'" },
        { "[server]\nworkers = +4\n", 2, "server.workers", "invalid value '+4'" },
        { "[server]\nworkers = -1\n", 2, "server.workers", "invalid value '-1'" },
        { "[server]\nworkers = 1025\n", 2, "server.workers", "between 0 and 1024" },
        { "[server]\r\n\r\nworkers = 1 2\r\n", 3, "server.workers", "invalid value '1 2'" },
        { "[server]\nmax_connections = 0\n", 2, "server.max_connections", "between 1 and 1000000" },
        { "[server]\nmax_connections = 99999999999999999999999\n", 2, "server.max_connections", "between 1" },
        { "[server]\nmax_header_bytes = 1023\n", 2, "server.max_header_bytes", "between 1024 and 1048576" },
        { "[server]\nmax_header_bytes = 1048577\n", 2, "server.max_header_bytes", "between 1024" },
        { "[timeouts]\nheader = 10x\n", 2, "timeouts.header", "invalid value '10x': expected a duration" },
        { "[timeouts]\nheader = 0\n", 2, "timeouts.header", "from 1ms to 24h" },
        { "[timeouts]\nsend = 1.5s\n", 2, "timeouts.send", "invalid value '1.5s'" },
        { "[timeouts]\nshutdown = 0ms\n", 2, "timeouts.shutdown", "from 1ms" },
        { "[timeouts]\nkeepalive = 25h\n", 2, "timeouts.keepalive", "from 0 (off) to 24h" },
        { "[server]\nlisten = 1.2.3:80\n", 2, "server.listen", "invalid listen address '1.2.3:80'" },
        { "[server]\nlisten = 8080 127.0.0.1:0\n", 2, "server.listen", "invalid listen address '127.0.0.1:0'" },
        { "[server]\nlisten = [::1:80\n", 2, "server.listen", "invalid listen address '[::1:80'" },
        { "[server]\nlisten = 8080\n  [::1]:8080 bad\n", 3, "server.listen", "invalid listen address 'bad'" },
        { "[server]\nlisten = 8001 8002 8003 8004 8005 8006 8007 8008 8009 8010 8011 8012 8013 8014 8015 "
          "8016 8017\n", 2, "server.listen", "too many listen addresses: at most 16" },
        { "[server]\nlisten = 8080\n\nlisten = 0.0.0.0:8080\n", 4, "server.listen",
          "duplicate listen address '0.0.0.0:8080' (also on line 2)" },
        { "[server]\nlisten = [::1]:1 [0::1]:1\n", 2, "server.listen", "duplicate listen address '[0::1]:1'" },
        { "[server]\nroot = site\nindex = a.html\nroot = site\n", 4, "server.root", "set twice (first on line 2)" },
        { "[server]\nworkers = 1 ; a comment\nworkers = 2\n", 3, "server.workers", "set twice" },
        { "[server]\nindex = a.html\n  root = site\n", 3, "server.index", "indented line continues" },
        { "[server]\nroot = missing\n", 2, "server.root", "No such file or directory" },
        { "[server]\n\nroot = plain\n", 3, "server.root", "is not a directory" },
        { "[server]\nindex = a/b\n", 2, "server.index", "invalid value 'a/b': expected a file name" },
        { "[server]\nindex = ..\n", 2, "server.index", "invalid value '..'" },
        { "[server]\nerror_page_404 = 404.html\n", 2, "server.error_page_404", "invalid value '404.html'" },
        { "[server]\nerror_page_404 = /a/../b\n", 2, "server.error_page_404", "without '..'" },
        { "[server]\nindex =\n", 2, "server.index", "empty value" },
        { "[server]\nindex = ; only a comment\n", 2, "server.index", "empty value" },
        { "[server]\nroot = site\njunk\n", 3, "", "syntax error" },
        { "[server\nroot = site\n", 1, "", "syntax error" },
        { "junk\n[server]\nrooot = 1\n", 1, "", "syntax error" },
        { "[server]\nrooot = 1\njunk\n", 2, "server.rooot", "unknown key" },
        { "[log]\nlevel = loud\n", 2, "log.level",
          "invalid value 'loud': expected err, warning, notice, info or debug" },
        { "[server]\nroot = site\n[log]\naccess = missing/a.log\n", 4, "log.access",
          "cannot use access log '" },
        { "[server]\nroot = site\n[log]\naccess = missing/a.log\n", 4, "log.access",
          "/missing/a.log': No such file or directory" },
        { "[server]\nroot = site\n[log]\naccess = plain/a.log\n", 4, "log.access", "Not a directory" },
        { "[server]\nroot = site\n[log]\naccess = plain/../a.log\n", 4, "log.access", "Not a directory" },
        { "[server]\nroot = site\n[log]\n\naccess = site\n", 5, "log.access",
          "/site' is a directory; expected a file path" },
        { "[server]\nroot = site\n[log]\naccess = /\n", 4, "log.access", "access log '/' is a directory" },
        { "[server]\nroot = site\n[log]\naccess = logs/\n", 4, "log.access", "is a directory" },
        { "[server]\nroot = site\n[log]\naccess = site/..\n", 4, "log.access", "is a directory" },
        { "[server]\nroot = site\n[log]\naccess = site/a.log\n", 4, "log.access",
          "/site/a.log' is under root '" },
        { "[server]\nroot = site\n[log]\naccess = site/sub/../a.log\n", 4, "log.access",
          "No such file or directory" },
        { "[log]\naccess = site/../site/a.log\n[server]\nroot = site\n", 2, "log.access",
          "which would serve it to clients" },
        { "[server]\nroot = site\n[log]\naccess = off\naccess = journal\n", 5, "log.access",
          "set twice (first on line 4)" },
        { "[log]\naccess =\n", 2, "log.access", "empty value" },
        /* root's error comes first, whichever line is earlier */
        { "[log]\naccess = missing/a.log\n[server]\nroot = missing\n", 4, "server.root",
          "No such file or directory" },
};

static void test_error_cases(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                const ErrorCase *t = &error_cases[i];
                Config c, before;
                ConfigError e = {};
                int r;

                memset(&c, 0x5a, sizeof(c));
                before = c;
                r = parse(t->text, &c, &e);
                if (r != -EINVAL || e.line != t->line || strcmp(e.key, t->key) != 0 ||
                    !strstr(e.message, t->message))
                        print_error("case %zu: \"%s\"\n  got r=%d line=%u key='%s' message='%s'\n",
                                    i, t->text, r, e.line, e.key, e.message);
                assert_int_equal(r, -EINVAL);
                assert_int_equal(e.line, t->line);
                assert_string_equal(e.key, t->key);
                assert_non_null(strstr(e.message, t->message));
                assert_memory_equal(&c, &before, sizeof(c));
        }
}

typedef struct AccessLogCase {
        const char *value;
        const char *expected; /* "@" stands for the test directory */
} AccessLogCase;

static const AccessLogCase access_log_cases[] = {
        { "off", "off" },
        { "journal", "journal" },
        { "access.log", "@/access.log" },
        { "./journal", "@/journal" },
        { "Off", "@/Off" },                     /* the words are exact */
        { "site/../a.log", "@/a.log" },
        { "./site/..//a b.log", "@/a b.log" },
        { "@/access.log", "@/access.log" },
        { "@/site/../x.log", "@/x.log" },
        { "plain", "@/plain" },                 /* an existing file is appended to */
};

static void test_access_log(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(access_log_cases); i++) {
                const AccessLogCase *t = &access_log_cases[i];
                char text[PATH_MAX + 64], value[PATH_MAX], expected[PATH_MAX];
                Config c;
                ConfigError e = {};

                snprintf(value, sizeof(value), "%s%s", t->value[0] == '@' ? tmp : "",
                         t->value + (t->value[0] == '@'));
                snprintf(expected, sizeof(expected), "%s%s", t->expected[0] == '@' ? tmp : "",
                         t->expected + (t->expected[0] == '@'));
                snprintf(text, sizeof(text), "[server]\nroot = site\n[log]\naccess = %s\n", value);
                if (parse(text, &c, &e) < 0)
                        print_error("case '%s': line %u: %s: %s\n", value, e.line, e.key, e.message);
                assert_int_equal(e.line, 0);
                assert_string_equal(c.access_log, expected);
        }
}

/* Without a base directory a relative path cannot be resolved. */
static void test_access_log_no_base(void **state) {
        char text[PATH_MAX + 64];
        Config c;
        ConfigError e = {};
        (void) state;

        snprintf(text, sizeof(text), "[server]\nroot = %s\n[log]\naccess = a.log\n", site);
        assert_int_equal(config_parse_string(text, NULL, &c, &e), -EINVAL);
        assert_int_equal(e.line, 4);
        assert_string_equal(e.key, "log.access");
        assert_string_equal(e.message, "invalid value 'a.log': expected off, journal or an absolute path");
}

/* inih's buffer holds 197 characters and "\r\n"; a longer line is an error
 * on its own line, never two lines. */
static void test_line_length(void **state) {
        char text[512];
        Config c;
        ConfigError e;
        (void) state;

        snprintf(text, sizeof(text), "[server]\nroot = site\n;%0196d\n", 0);
        assert_int_equal(parse(text, &c, &e), 0);
        snprintf(text, sizeof(text), "[server]\nroot = site\r\n;%0196d\r\n", 0);
        assert_int_equal(parse(text, &c, &e), 0);
        snprintf(text, sizeof(text), "[server]\nroot = site\n;%0197d\n", 0);
        assert_int_equal(parse(text, &c, &e), -EINVAL);
        assert_int_equal(e.line, 3);
        assert_string_equal(e.key, "");
        assert_non_null(strstr(e.message, "line too long"));
        snprintf(text, sizeof(text), "[server]\nindex = %0300d\n", 0);
        assert_int_equal(parse(text, &c, &e), -EINVAL);
        assert_int_equal(e.line, 2);
        assert_non_null(strstr(e.message, "line too long"));
}

typedef struct DurationCase {
        const char *text;
        int r;
        uint64_t usec;
} DurationCase;

static const DurationCase duration_cases[] = {
        { "30", 0, UINT64_C(30000000) },
        { "30s", 0, UINT64_C(30000000) },
        { "500ms", 0, 500000 },
        { "2min", 0, UINT64_C(120000000) },
        { "1h", 0, UINT64_C(3600000000) },
        { "0", 0, 0 },
        { "0ms", 0, 0 },
        { "007s", 0, UINT64_C(7000000) },
        { "24h", 0, CONFIG_MAX_TIMEOUT_USEC },
        { "86400", 0, CONFIG_MAX_TIMEOUT_USEC },
        { "86400000ms", 0, CONFIG_MAX_TIMEOUT_USEC },
        { "86401", -ERANGE, 0 },
        { "25h", -ERANGE, 0 },
        { "1441min", -ERANGE, 0 },
        { "99999999999999999999999ms", -ERANGE, 0 },
        { "", -EINVAL, 0 },
        { "s", -EINVAL, 0 },
        { "1.5s", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { "+1", -EINVAL, 0 },
        { "1 s", -EINVAL, 0 },
        { " 1", -EINVAL, 0 },
        { "1m", -EINVAL, 0 },
        { "1S", -EINVAL, 0 },
        { "1sec", -EINVAL, 0 },
        { "1hh", -EINVAL, 0 },
        { "0x10", -EINVAL, 0 },
};

static void test_parse_duration(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(duration_cases); i++) {
                const DurationCase *t = &duration_cases[i];
                uint64_t usec = 12345;
                int r = config_parse_duration(t->text, &usec);

                if (r != t->r)
                        print_error("case \"%s\": got %d\n", t->text, r);
                assert_int_equal(r, t->r);
                assert_int_equal(usec, t->r == 0 ? t->usec : 12345);
        }
}

typedef struct ListenCase {
        const char *text;
        const char *base_dir;
        int r;
        ListenKind kind;
        const char *host;
        uint16_t port;
        const char *path;
} ListenCase;

#define PATH_107 "/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const ListenCase listen_cases[] = {
        { "127.0.0.1:8080", NULL, 0, LISTEN_INET, "127.0.0.1", 8080, "" },
        { "*:8080", NULL, 0, LISTEN_INET, "", 8080, "" },
        { "8080", NULL, 0, LISTEN_INET, "", 8080, "" },
        { "0.0.0.0:1", NULL, 0, LISTEN_INET, "", 1, "" },
        { "10.1.2.3:65535", NULL, 0, LISTEN_INET, "10.1.2.3", 65535, "" },
        { "[::1]:8080", NULL, 0, LISTEN_INET6, "::1", 8080, "" },
        { "[::]:8080", NULL, 0, LISTEN_INET6, "", 8080, "" },
        { "[0:0::0001]:80", NULL, 0, LISTEN_INET6, "::1", 80, "" },
        { "[2001:DB8::1]:443", NULL, 0, LISTEN_INET6, "2001:db8::1", 443, "" },
        { "unix:/run/w.sock", NULL, 0, LISTEN_UNIX, "", 0, "/run/w.sock" },
        { "/run/w.sock", NULL, 0, LISTEN_UNIX, "", 0, "/run/w.sock" },
        { "unix:w.sock", "/srv", 0, LISTEN_UNIX, "", 0, "/srv/w.sock" },
        { "/run/w.sock", "/srv", 0, LISTEN_UNIX, "", 0, "/run/w.sock" },
        { "unix:" PATH_107, NULL, 0, LISTEN_UNIX, "", 0, PATH_107 },
        { "unix:" PATH_107 "a", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "unix:w.sock", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "unix:w.sock", "relative", -EINVAL, 0, NULL, 0, NULL },
        { "unix:", "/srv", -EINVAL, 0, NULL, 0, NULL },
        { "", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "0", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "65536", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "+80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "8080x", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "80 81", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "127.0.0.1", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "127.0.0.1:", NULL, -EINVAL, 0, NULL, 0, NULL },
        { ":80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "1.2.3:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "256.0.0.1:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "localhost:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "**:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[::1]", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[::1]80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[::1]:0", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[]:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[127.0.0.1]:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "::1:80", NULL, -EINVAL, 0, NULL, 0, NULL },
        { "[fe80::1%eth0]:80", NULL, -EINVAL, 0, NULL, 0, NULL },
};

static void test_parse_listen(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(listen_cases); i++) {
                const ListenCase *t = &listen_cases[i];
                ListenAddress a, before;
                int r;

                memset(&a, 0x5a, sizeof(a));
                before = a;
                r = config_parse_listen(t->text, t->base_dir, &a);
                if (r != t->r)
                        print_error("case \"%s\": got %d\n", t->text, r);
                assert_int_equal(r, t->r);
                if (r < 0) {
                        assert_memory_equal(&a, &before, sizeof(a));
                        continue;
                }
                assert_int_equal(a.kind, t->kind);
                assert_string_equal(a.host, t->host);
                assert_int_equal(a.port, t->port);
                assert_string_equal(a.path, t->path);
                assert_string_equal(a.text, t->text);
        }
}

/* The shipped file documents the defaults: parsed, it must give them. */
static void test_shipped_config(void **state) {
        _cleanup_free_ char *text = read_source("conf/webpoold.conf");
        char *root = strstr(text, "\nroot = /var/www/html\n");
        Config c;
        ConfigError e = {};
        (void) state;

        assert_non_null(root);
        /* Same length, so every line keeps its number. */
        memcpy(root, "\nroot = site         \n", strlen("\nroot = /var/www/html\n"));
        if (parse(text, &c, &e) < 0)
                print_error("conf/webpoold.conf:%u: %s: %s\n", e.line, e.key, e.message);
        assert_int_equal(e.line, 0);
        assert_string_equal(c.root, site);
        assert_defaults(&c);
}

static void test_demo_config(void **state) {
        _cleanup_free_ char *path = source_path("conf/demo.conf");
        _cleanup_free_ char *demo_site = NULL, *expected = source_path("conf/demo-site");
        Config c;
        ConfigError e = {};
        (void) state;

        if (config_load(path, &c, &e) < 0)
                print_error("%s:%u: %s: %s\n", path, e.line, e.key, e.message);
        assert_int_equal(e.line, 0);
        demo_site = realpath(expected, NULL);
        assert_non_null(demo_site);
        assert_string_equal(c.root, demo_site);
        assert_int_equal(c.n_listen, 1);
        assert_string_equal(c.listen[0].host, "127.0.0.1");
        assert_int_equal(c.listen[0].port, 8080);
        assert_string_equal(c.error_page_404, "/404.html");
        assert_int_equal(c.log_level, LOG_INFO);
}

static void test_load_unreadable(void **state) {
        char path[PATH_MAX];
        Config c;
        ConfigError e;
        (void) state;

        path_in_tmp(path, sizeof(path), "nonexistent.conf");
        assert_int_equal(config_load(path, &c, &e), -ENOENT);
        assert_int_equal(e.line, 0);
        assert_string_equal(e.key, "");
        assert_string_equal(e.message, "cannot read: No such file or directory");
        assert_int_equal(config_load(tmp, &c, &e), -EISDIR);
        assert_string_equal(e.message, "cannot read: Is a directory");
}

/* A relative root is found next to the file, whatever the current directory. */
static void test_load_file(void **state) {
        static const char text[] = "[server]\nroot = site\n\n[timeouts]\nsend = soon\n";
        char path[PATH_MAX];
        Config c;
        ConfigError e;
        (void) state;

        path_in_tmp(path, sizeof(path), "a.conf");
        write_file(path, text, 21);
        assert_int_equal(config_load(path, &c, &e), 0);
        assert_string_equal(c.root, site);

        write_file(path, text, strlen(text));
        assert_int_equal(config_load(path, &c, &e), -EINVAL);
        assert_int_equal(e.line, 5);
        assert_string_equal(e.key, "timeouts.send");

        write_file(path, "[server]\nroot = s\0ite\n", 22);
        assert_int_equal(config_load(path, &c, &e), -EINVAL);
        assert_int_equal(e.line, 2);
        assert_non_null(strstr(e.message, "NUL"));
        assert_int_equal(unlink(path), 0);
}

static void test_load_too_big(void **state) {
        char path[PATH_MAX];
        Config c;
        ConfigError e;
        int fd;
        (void) state;

        path_in_tmp(path, sizeof(path), "big.conf");
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1024 * 1024 + 1), 0);
        assert_int_equal(close(fd), 0);
        assert_int_equal(config_load(path, &c, &e), -EFBIG);
        assert_int_equal(e.line, 0);
        assert_non_null(strstr(e.message, "cannot read"));
        assert_int_equal(unlink(path), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_defaults),
                cmocka_unit_test(test_full_config),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_empty_text),
                cmocka_unit_test(test_relative_root),
                cmocka_unit_test(test_listen_replaces_defaults),
                cmocka_unit_test(test_error_cases),
                cmocka_unit_test(test_line_length),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_listen),
                cmocka_unit_test(test_access_log),
                cmocka_unit_test(test_access_log_no_base),
                cmocka_unit_test(test_shipped_config),
                cmocka_unit_test(test_demo_config),
                cmocka_unit_test(test_load_unreadable),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_load_too_big),
        };

        return cmocka_run_group_tests_name("config", tests, setup_tmp, teardown_tmp);
}
