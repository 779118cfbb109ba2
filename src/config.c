/* SPDX-License-Identifier: MIT */
/*
 * Debian's inih calls the handler without a line number, so the text reaches
 * ini_parse_stream() through our own reader, one line per call. inih finishes
 * a line (calling the handler at most once) before it asks for the next, so
 * the reader's counter is the handler's line. The reader is also where an
 * over-long line is caught (inih would silently split it into two lines) and
 * where parsing stops after the first error: it then reports end of input.
 *
 * Settings are data: a table of (section, key, setter, field). The setters
 * only parse; checks that touch the file system or the machine (the root
 * directory, the number of CPUs) run once at the end.
 */
#include "config.h"
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

/* A config file is a few kilobytes; anything bigger is a mistake. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MINUTE (UINT64_C(60) * USEC_PER_SEC)
#define USEC_PER_HOUR (UINT64_C(60) * USEC_PER_MINUTE)

#define WHITESPACE " \t"
#define FIELD_SIZE(type, member) sizeof(((type *) NULL)->member)

typedef struct ConfigParser ConfigParser;
typedef struct ConfigKey ConfigKey;

/* Parses value into data (the key's field in the Config being built).
 * Returns 0, or records the error in the parser and returns -EINVAL. */
typedef int (*ConfigSetter)(ConfigParser *p, const ConfigKey *k, const char *value, void *data);

struct ConfigKey {
        const char *section;
        const char *name;
        ConfigSetter set;
        size_t offset;          /* of the field in Config */
        uint64_t min, max;      /* for numbers and durations */
        bool repeatable;
};

static int config_set_listen(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_root(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_index(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_error_page(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_unsigned(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_size(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_duration(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_log_level(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_access_log(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_bool(ConfigParser *p, const ConfigKey *k, const char *value, void *data);
static int config_set_max_age(ConfigParser *p, const ConfigKey *k, const char *value, void *data);

#define KEY(s, n, setter, field, ...) \
        { .section = s, .name = n, .set = setter, .offset = offsetof(Config, field), __VA_ARGS__ }

static const ConfigKey config_keys[] = {
        KEY("server", "listen", config_set_listen, listen, .repeatable = true),
        KEY("server", "root", config_set_root, root),
        KEY("server", "index", config_set_index, index),
        KEY("server", "error_page_404", config_set_error_page, error_page_404),
        KEY("server", "workers", config_set_unsigned, workers, .max = CONFIG_MAX_WORKERS),
        KEY("server", "max_connections", config_set_unsigned, max_connections,
            .min = 1, .max = CONFIG_MAX_CONNECTIONS),
        KEY("server", "max_header_bytes", config_set_size, max_header_bytes,
            .min = CONFIG_MIN_HEADER_BYTES, .max = CONFIG_MAX_HEADER_BYTES),
        KEY("server", "max_request_line", config_set_size, max_request_line,
            .min = CONFIG_MIN_REQUEST_LINE, .max = CONFIG_MAX_HEADER_BYTES),
        KEY("server", "max_header_fields", config_set_unsigned, max_header_fields,
            .min = 1, .max = HTTP_MAX_HEADERS),
        KEY("server", "max_body_bytes", config_set_size, max_body_bytes, .max = CONFIG_MAX_BODY_BYTES),
        KEY("server", "dotfiles", config_set_bool, allow_dotfiles),
        KEY("server", "precompressed", config_set_bool, precompressed),
        KEY("server", "cache_max_age", config_set_max_age, cache_max_age_sec),
        /* keepalive 0 turns keep-alive off; the other timeouts must be real. */
        KEY("timeouts", "header", config_set_duration, header_timeout_usec, .min = USEC_PER_MSEC),
        KEY("timeouts", "keepalive", config_set_duration, keepalive_timeout_usec, .min = 0),
        KEY("timeouts", "send", config_set_duration, send_timeout_usec, .min = USEC_PER_MSEC),
        KEY("timeouts", "shutdown", config_set_duration, shutdown_timeout_usec, .min = USEC_PER_MSEC),
        KEY("log", "level", config_set_log_level, log_level),
        KEY("log", "access", config_set_access_log, access_log),
};

#define CONFIG_SECTIONS_HINT "[server], [timeouts] or [log]"

struct ConfigParser {
        const char *cursor;     /* rest of the text */
        const char *base_dir;
        const char *buf;        /* inih's line buffer, as last filled */
        unsigned line;
        char key[FIELD_SIZE(ConfigError, key)];
        bool failed;
        ConfigError error;

        Config config;
        bool listen_set;        /* the defaults have been replaced */
        unsigned listen_line[CONFIG_MAX_LISTEN];
        unsigned root_line;
        unsigned access_log_line;
        unsigned key_line[ELEMENTSOF(config_keys)]; /* first set, or 0 */
};

_printf_(4, 0)
static int config_error_setv(ConfigError *e, unsigned line, const char *key, const char *format, va_list ap) {
        if (!e)
                return -EINVAL;
        *e = (ConfigError) { .line = line };
        (void) snprintf(e->key, sizeof(e->key), "%s", key);
        (void) vsnprintf(e->message, sizeof(e->message), format, ap);
        return -EINVAL;
}

_printf_(4, 5)
static void config_error_set(ConfigError *e, unsigned line, const char *key, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void) config_error_setv(e, line, key, format, ap);
        va_end(ap);
}

/* Records an error at the current line and key, unless one is already
 * recorded: only the first error is reported. Returns -EINVAL. */
_printf_(2, 3)
static int parser_fail(ConfigParser *p, const char *format, ...) {
        va_list ap;

        if (p->failed)
                return -EINVAL;
        p->failed = true;
        va_start(ap, format);
        (void) config_error_setv(&p->error, p->line, p->key, format, ap);
        va_end(ap);
        return -EINVAL;
}

static bool config_section_known(const char *section, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (strlen(config_keys[i].section) == n && strncmp(config_keys[i].section, section, n) == 0)
                        return true;
        return false;
}

static const ConfigKey *config_key_find(const char *section, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
                        return &config_keys[i];
        return NULL;
}

/* Parses the n characters at s, which must all be digits, as a number of at
 * most max. No sign, no space, no empty string. */
static int config_parse_digits(const char *s, size_t n, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned) (s[i] - '0');
                if (d > max || v > (max - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static int config_parse_port(const char *s, uint16_t *ret) {
        uint64_t v;

        if (config_parse_digits(s, strlen(s), UINT16_MAX, &v) < 0 || v == 0)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        { "", USEC_PER_SEC },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "min", USEC_PER_MINUTE },
        { "h", USEC_PER_HOUR },
};

int config_parse_duration(const char *s, uint64_t *ret_usec) {
        size_t n = strspn(s, "0123456789");

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                uint64_t unit = duration_units[i].usec, v;
                int r;

                if (strcmp(s + n, duration_units[i].suffix) != 0)
                        continue;
                r = config_parse_digits(s, n, CONFIG_MAX_TIMEOUT_USEC / unit, &v);
                if (r < 0)
                        return r;
                *ret_usec = v * unit;
                return 0;
        }
        return -EINVAL;
}

/* Joins a relative path to base (when there is one) into ret. */
static int config_path_join(const char *base, const char *path, char *ret, size_t size) {
        int n;

        if (path[0] == '/' || !base)
                n = snprintf(ret, size, "%s", path);
        else
                n = snprintf(ret, size, "%s/%s", base, path);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int config_listen_unix(const char *path, const char *base_dir, ListenAddress *a) {
        if (path[0] == '\0')
                return -EINVAL;
        if (config_path_join(base_dir, path, a->path, sizeof(a->path)) < 0)
                return -EINVAL;
        if (a->path[0] != '/')
                return -EINVAL;
        a->kind = LISTEN_UNIX;
        return 0;
}

/* Stores the address in its canonical spelling, or "" for the any address,
 * so that equal addresses compare equal however they were written. */
static int config_listen_host(int family, const char *host, size_t n, ListenAddress *a) {
        static const unsigned char zero[16] = {};
        unsigned char addr[16];
        char buf[64];

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, host, n);
        buf[n] = '\0';
        if (inet_pton(family, buf, addr) != 1)
                return -EINVAL;
        if (memcmp(addr, zero, family == AF_INET ? 4 : 16) == 0)
                a->host[0] = '\0';
        else if (!inet_ntop(family, addr, a->host, sizeof(a->host)))
                return -EINVAL;
        return 0;
}

static int config_listen_inet6(const char *s, ListenAddress *a) {
        const char *close = strchr(s, ']');

        if (!close || close[1] != ':')
                return -EINVAL;
        if (config_listen_host(AF_INET6, s + 1, (size_t) (close - s - 1), a) < 0)
                return -EINVAL;
        a->kind = LISTEN_INET6;
        return config_parse_port(close + 2, &a->port);
}

static int config_listen_inet(const char *s, ListenAddress *a) {
        const char *colon = strrchr(s, ':');

        a->kind = LISTEN_INET;
        if (!colon)
                return config_parse_port(s, &a->port);
        if (!(colon - s == 1 && s[0] == '*') &&
            config_listen_host(AF_INET, s, (size_t) (colon - s), a) < 0)
                return -EINVAL;
        return config_parse_port(colon + 1, &a->port);
}

int config_parse_listen(const char *s, const char *base_dir, ListenAddress *ret) {
        ListenAddress a = {};
        int r;

        if (s[0] == '\0' || strlen(s) >= sizeof(a.text) || strpbrk(s, WHITESPACE))
                return -EINVAL;
        if (strncmp(s, "unix:", 5) == 0)
                r = config_listen_unix(s + 5, base_dir, &a);
        else if (s[0] == '/')
                r = config_listen_unix(s, base_dir, &a);
        else if (s[0] == '[')
                r = config_listen_inet6(s, &a);
        else
                r = config_listen_inet(s, &a);
        if (r < 0)
                return -EINVAL;
        strcpy(a.text, s);
        *ret = a;
        return 0;
}

static bool config_listen_equal(const ListenAddress *a, const ListenAddress *b) {
        if (a->kind != b->kind)
                return false;
        if (a->kind == LISTEN_UNIX)
                return strcmp(a->path, b->path) == 0;
        return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int config_add_listen(ConfigParser *p, const char *word, size_t n) {
        Config *c = &p->config;
        char text[FIELD_SIZE(ListenAddress, text)];
        ListenAddress a;

        if (n >= sizeof(text))
                return parser_fail(p, "invalid listen address '%.*s': too long", (int) n, word);
        memcpy(text, word, n);
        text[n] = '\0';
        if (config_parse_listen(text, p->base_dir, &a) < 0)
                return parser_fail(p, "invalid listen address '%s': expected 127.0.0.1:8080, *:8080, 8080, "
                                   "[::1]:8080 or unix:/absolute/path (at most %zu bytes)",
                                   text, sizeof(a.path) - 1);
        for (size_t i = 0; i < c->n_listen; i++)
                if (config_listen_equal(&c->listen[i], &a))
                        return parser_fail(p, "duplicate listen address '%s' (also on line %u)",
                                           text, p->listen_line[i]);
        if (c->n_listen >= CONFIG_MAX_LISTEN)
                return parser_fail(p, "too many listen addresses: at most %d are allowed", CONFIG_MAX_LISTEN);
        p->listen_line[c->n_listen] = p->line;
        c->listen[c->n_listen++] = a;
        return 0;
}

static int config_set_listen(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        (void) k;
        (void) data;

        if (!p->listen_set) {
                p->config.n_listen = 0;
                p->listen_set = true;
        }
        for (const char *s = value + strspn(value, WHITESPACE); *s; s += strspn(s, WHITESPACE)) {
                size_t n = strcspn(s, WHITESPACE);
                int r = config_add_listen(p, s, n);

                if (r < 0)
                        return r;
                s += n;
        }
        return 0;
}

/* Only joined here: whether it exists is checked once the whole file is read. */
static int config_set_root(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        (void) k;

        if (config_path_join(p->base_dir, value, data, FIELD_SIZE(Config, root)) < 0)
                return parser_fail(p, "invalid value '%s': path too long", value);
        p->root_line = p->line;
        return 0;
}

static int config_set_index(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        (void) k;

        if (strchr(value, '/') || strcmp(value, ".") == 0 || strcmp(value, "..") == 0 ||
            strlen(value) >= FIELD_SIZE(Config, index))
                return parser_fail(p, "invalid value '%s': expected a file name such as index.html, "
                                   "without '/'", value);
        strcpy(data, value);
        return 0;
}

static bool config_path_has_dotdot(const char *path) {
        for (const char *s = path; *s; s += strspn(s, "/")) {
                size_t n = strcspn(s, "/");

                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return true;
                s += n;
        }
        return false;
}

static int config_set_error_page(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        (void) k;

        if (value[0] != '/' || config_path_has_dotdot(value) || strlen(value) >= FIELD_SIZE(Config, error_page_404))
                return parser_fail(p, "invalid value '%s': expected a path under root such as /404.html, "
                                   "starting with '/' and without '..'", value);
        strcpy(data, value);
        return 0;
}

static int config_set_number(ConfigParser *p, const ConfigKey *k, const char *value, uint64_t *ret) {
        uint64_t v;

        if (config_parse_digits(value, strlen(value), k->max, &v) < 0 || v < k->min)
                return parser_fail(p, "invalid value '%s': expected a whole number between %" PRIu64
                                   " and %" PRIu64, value, k->min, k->max);
        *ret = v;
        return 0;
}

static int config_set_unsigned(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        uint64_t v = 0;
        int r = config_set_number(p, k, value, &v);

        if (r < 0)
                return r;
        *(unsigned *) data = (unsigned) v;
        return 0;
}

static int config_set_size(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        uint64_t v = 0;
        int r = config_set_number(p, k, value, &v);

        if (r < 0)
                return r;
        *(size_t *) data = (size_t) v;
        return 0;
}

static int config_set_bool(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        static const char *const yes[] = { "yes", "on", "true", "1" }, *const no[] = { "no", "off", "false", "0" };

        (void) k;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcmp(value, yes[i]) == 0)
                        return *(bool *) data = true, 0;
                if (strcmp(value, no[i]) == 0)
                        return *(bool *) data = false, 0;
        }
        return parser_fail(p, "invalid value '%s': expected yes or no", value);
}

/* "off", a number of seconds (a year is common for versioned assets, so
 * plain seconds go beyond the 24h of other durations), or a duration. */
static int config_set_max_age(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        uint64_t v;

        (void) k;
        if (strcmp(value, "off") == 0) {
                *(int64_t *) data = -1;
                return 0;
        }
        if (config_parse_digits(value, strlen(value), CONFIG_MAX_AGE_SEC, &v) == 0) {
                *(int64_t *) data = (int64_t) v;
                return 0;
        }
        if (config_parse_duration(value, &v) < 0 || v % USEC_PER_SEC != 0)
                return parser_fail(p, "invalid value '%s': expected off, a number of seconds up to %" PRIu64
                                   ", or a duration such as 1h or 10min", value, (uint64_t) CONFIG_MAX_AGE_SEC);
        *(int64_t *) data = (int64_t) (v / USEC_PER_SEC);
        return 0;
}

static int config_set_duration(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        uint64_t usec;

        if (config_parse_duration(value, &usec) < 0 || usec < k->min)
                return parser_fail(p, "invalid value '%s': expected a duration such as 30s, 500ms, 2min or 1h, "
                                   "%s", value, k->min > 0 ? "from 1ms to 24h" : "from 0 (off) to 24h");
        *(uint64_t *) data = usec;
        return 0;
}

static int config_set_log_level(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        int level = log_level_from_string(value);

        (void) k;
        if (level < 0)
                return parser_fail(p, "invalid value '%s': expected err, warning, notice, info or debug", value);
        *(int *) data = level;
        return 0;
}

/* A path is only joined here, like root: its directory is checked once the
 * whole file is read. The words win over files of the same name, which can
 * still be had as "./journal". */
static int config_set_access_log(ConfigParser *p, const ConfigKey *k, const char *value, void *data) {
        (void) k;

        if (strcmp(value, "off") == 0 || strcmp(value, "journal") == 0)
                strcpy(data, value);
        else if (config_path_join(p->base_dir, value, data, FIELD_SIZE(Config, access_log)) < 0)
                return parser_fail(p, "invalid value '%s': path too long", value);
        else if (((const char *) data)[0] != '/')
                return parser_fail(p, "invalid value '%s': expected off, journal or an absolute path", value);
        p->access_log_line = p->line;
        return 0;
}

/* With inih's multi-line values, an indented line after a key is handed to
 * the handler as more of that key's value. inih passes the start of the line
 * as the value then, and the key name in every other case. */
static bool config_is_continuation(const ConfigParser *p, const char *value) {
        const char *start = p->buf;

        while (isspace((unsigned char) *start))
                start++;
        return value == start;
}

/* Everything about a key=value line but its value's own syntax. */
static const ConfigKey *config_check_key(ConfigParser *p, const char *section, const char *name, const char *value) {
        const ConfigKey *k = config_key_find(section, name);
        size_t i;

        if (!k) {
                (void) parser_fail(p, "unknown key '%s' in section [%s]", name, section);
                return NULL;
        }
        i = (size_t) (k - config_keys);
        if (config_is_continuation(p, value) && !k->repeatable)
                (void) parser_fail(p, "indented line continues the value of '%s'; only listen may span "
                                   "several lines, remove the indentation", name);
        else if (p->key_line[i] > 0 && !k->repeatable)
                (void) parser_fail(p, "set twice (first on line %u)", p->key_line[i]);
        else if (value[0] == '\0')
                (void) parser_fail(p, "empty value; remove the line to use the default");
        if (p->failed)
                return NULL;
        if (p->key_line[i] == 0)
                p->key_line[i] = p->line;
        return k;
}

static int config_handler(void *userdata, const char *section, const char *name, const char *value) {
        ConfigParser *p = userdata;
        const ConfigKey *k;

        if (p->failed)
                return 0;
        if (section[0] == '\0') {
                (void) parser_fail(p, "key '%s' is outside of any section; expected it under "
                                   CONFIG_SECTIONS_HINT, name);
                return 0;
        }
        if (!config_section_known(section, strlen(section))) {
                (void) parser_fail(p, "unknown section [%s], expected " CONFIG_SECTIONS_HINT, section);
                return 0;
        }

        (void) snprintf(p->key, sizeof(p->key), "%s.%s", section, name);
        k = config_check_key(p, section, name, value);
        if (!k)
                return 0;
        /* inih wants nonzero for success. */
        return k->set(p, k, value, (uint8_t *) &p->config + k->offset) >= 0;
}

/* A section header that starts its line names the section on that line,
 * even when no key follows it. inih does not tell the handler about empty
 * sections; indented headers are left to the handler's check. */
static void config_check_section_line(ConfigParser *p, const char *line) {
        const char *end;

        if (line[0] != '[')
                return;
        end = strchr(line, ']');
        if (!end)
                return; /* inih reports it as a syntax error */
        if (!config_section_known(line + 1, (size_t) (end - line - 1)))
                (void) parser_fail(p, "unknown section [%.*s], expected " CONFIG_SECTIONS_HINT,
                                   (int) (end - line - 1), line + 1);
}

static char *config_reader(char *str, int num, void *stream) {
        ConfigParser *p = stream;
        size_t raw, len;

        if (p->failed || p->cursor[0] == '\0')
                return NULL;
        p->line++;
        p->key[0] = '\0';

        raw = strcspn(p->cursor, "\n");
        len = raw > 0 && p->cursor[raw - 1] == '\r' ? raw - 1 : raw;
        raw += p->cursor[raw] == '\n';
        /* inih needs room for "\r\n" and the NUL after the content. */
        if (num < 3 || len > (size_t) num - 3) {
                (void) parser_fail(p, "line too long: at most %d characters are allowed", num - 3);
                return NULL;
        }
        memcpy(str, p->cursor, raw);
        str[raw] = '\0';
        p->cursor += raw;
        p->buf = str;

        config_check_section_line(p, str);
        return p->failed ? NULL : str;
}

/* Makes path (absolute) canonical through its directory, which must exist;
 * the file need not, the daemon creates it. Returns 0, -EISDIR when path
 * names a directory, -ENOTDIR, -ENAMETOOLONG, -ENOMEM or realpath()'s error. */
static int config_resolve_file(const char *path, char *ret, size_t size) {
        _cleanup_free_ char *dir = NULL, *copy = strdup(path);
        const char *name;
        char *slash;
        struct stat st;
        int n;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        name = slash + 1;
        if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EISDIR;
        *slash = '\0';
        dir = realpath(copy[0] == '\0' ? "/" : copy, NULL);
        if (!dir || stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        n = snprintf(ret, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        if (stat(ret, &st) >= 0 && S_ISDIR(st.st_mode))
                return -EISDIR;
        return 0;
}

static bool config_path_is_under(const char *path, const char *dir) {
        size_t n = strlen(dir);

        if (strcmp(dir, "/") == 0)
                return true;
        return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* Runs after root is made canonical. A log under root would be served to
 * anyone who asks for it. */
static void config_finish_access_log(ConfigParser *p) {
        char path[FIELD_SIZE(Config, access_log)];
        int r;

        if (p->config.access_log[0] != '/')
                return; /* off or journal */
        p->line = p->access_log_line;
        (void) snprintf(p->key, sizeof(p->key), "log.access");
        r = config_resolve_file(p->config.access_log, path, sizeof(path));
        if (r == -EISDIR) {
                (void) parser_fail(p, "access log '%s' is a directory; expected a file path", p->config.access_log);
                return;
        }
        if (r < 0) {
                (void) parser_fail(p, "cannot use access log '%s': %s", p->config.access_log, strerror(-r));
                return;
        }
        if (config_path_is_under(path, p->config.root)) {
                (void) parser_fail(p, "access log '%s' is under root '%s', which would serve it to clients",
                                   path, p->config.root);
                return;
        }
        strcpy(p->config.access_log, path);
}

/* Checks that need the whole file or the machine: they run once, at the end. */
static void config_finish(ConfigParser *p) {
        _cleanup_free_ char *root = NULL;
        struct stat st;

        if (p->config.workers == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);

                p->config.workers = (unsigned) (n < 1 ? 1 : MIN(n, (long) CONFIG_MAX_WORKERS));
        }

        p->line = p->root_line;
        (void) snprintf(p->key, sizeof(p->key), "server.root");
        root = realpath(p->config.root, NULL);
        if (!root || stat(root, &st) < 0) {
                (void) parser_fail(p, "cannot use root '%s': %s", p->config.root, strerror(errno));
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                (void) parser_fail(p, "root '%s' is not a directory", p->config.root);
                return;
        }
        if (strlen(root) >= sizeof(p->config.root)) {
                (void) parser_fail(p, "root '%s' resolves to a path that is too long", p->config.root);
                return;
        }
        strcpy(p->config.root, root);

        config_finish_access_log(p);
}

void config_init_defaults(Config *c) {
        *c = (Config) {
                .listen = {
                        { .kind = LISTEN_INET, .port = 80, .text = "*:80" },
                        { .kind = LISTEN_INET6, .port = 80, .text = "[::]:80" },
                },
                .n_listen = 2,
                .root = "/var/www/html",
                .index = "index.html",
                .workers = 0,
                .max_connections = 10000,
                .max_header_bytes = 8192,
                .max_request_line = 4096,
                .max_header_fields = 64,
                .max_body_bytes = 1024 * 1024,
                .allow_dotfiles = false,
                .precompressed = true,
                .cache_max_age_sec = -1,
                .header_timeout_usec = 60 * USEC_PER_SEC,
                .keepalive_timeout_usec = 75 * USEC_PER_SEC,
                .send_timeout_usec = 60 * USEC_PER_SEC,
                .shutdown_timeout_usec = 30 * USEC_PER_SEC,
                .log_level = LOG_INFO,
                .access_log = "off",
        };
}

int config_parse_string(const char *text, const char *base_dir, Config *ret, ConfigError *ret_error) {
        ConfigParser p = { .cursor = text, .base_dir = base_dir };
        int r;

        config_init_defaults(&p.config);
        r = ini_parse_stream(config_reader, &p, config_handler, &p);
        /* inih's own errors (no '=', no ']') are ones our reader and handler
         * never saw; the earlier of the two is the first error. */
        if (r > 0 && (!p.failed || (unsigned) r < p.error.line)) {
                p.failed = true;
                config_error_set(&p.error, (unsigned) r, "",
                                 "syntax error: expected 'key = value', '[section]' or a comment");
        } else if (r < 0 && !p.failed) {
                p.failed = true;
                config_error_set(&p.error, 0, "", "cannot parse: %s", strerror(ENOMEM));
        }
        if (!p.failed)
                config_finish(&p);
        if (p.failed) {
                if (ret_error)
                        *ret_error = p.error;
                return -EINVAL;
        }
        *ret = p.config;
        return 0;
}

/* Reads the whole file, NUL-terminated, refusing anything over the limit. */
static int config_read_file(const char *path, char **ret_text, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(CONFIG_MAX_FILE_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CONFIG_MAX_FILE_BYTES + 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CONFIG_MAX_FILE_BYTES)
                        return -EFBIG;
        }
        buf[n] = '\0';
        *ret_text = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* The canonical directory holding path, which relative paths start from. */
static int config_dir_of(const char *path, char **ret) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash, *resolved;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else
                slash[slash == dir] = '\0'; /* keep "/" for "/x.conf" */
        resolved = realpath(dir, NULL);
        if (!resolved)
                return -errno;
        *ret = resolved;
        return 0;
}

int config_load(const char *path, Config *ret, ConfigError *ret_error) {
        _cleanup_free_ char *text = NULL, *dir = NULL;
        const char *nul;
        size_t size = 0;
        int r;

        r = config_read_file(path, &text, &size);
        if (r == -EFBIG) {
                config_error_set(ret_error, 0, "", "cannot read: larger than %d bytes", CONFIG_MAX_FILE_BYTES);
                return r;
        }
        if (r < 0) {
                config_error_set(ret_error, 0, "", "cannot read: %s", strerror(-r));
                return r;
        }
        nul = memchr(text, '\0', size);
        if (nul) {
                unsigned line = 1;

                for (const char *s = text; s < nul; s++)
                        line += *s == '\n';
                config_error_set(ret_error, line, "", "NUL byte in a text file");
                return -EINVAL;
        }
        r = config_dir_of(path, &dir);
        if (r < 0) {
                config_error_set(ret_error, 0, "", "cannot resolve its directory: %s", strerror(-r));
                return r;
        }
        return config_parse_string(text, dir, ret, ret_error);
}
