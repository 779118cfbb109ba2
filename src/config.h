/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The daemon's configuration: an INI file parsed with the system's inih, then
 * validated. Pure apart from reading the file and checking that paths exist:
 * errors are returned with the line they come from, never logged here.
 *
 * Sections and keys (documented in conf/webpoold.conf):
 *
 *   [server]   listen (repeatable; also several per line), root, index,
 *              error_page_404, workers, max_connections, max_header_bytes,
 *              max_request_line, max_header_fields, max_body_bytes,
 *              dotfiles, precompressed, cache_max_age
 *   [timeouts] header, keepalive, send, shutdown   (durations: "30", "30s",
 *              "500ms", "2min", "1h")
 *   [log]      level, access
 *
 * Relative paths (root, a unix listen path, the access log) are taken
 * relative to the directory holding the config file. */

#define CONFIG_DEFAULT_PATH "/etc/webpoold.conf"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_PATH 4096
#define CONFIG_MAX_WORKERS 1024
#define CONFIG_MAX_CONNECTIONS 1000000
#define CONFIG_MIN_HEADER_BYTES 1024
#define CONFIG_MAX_HEADER_BYTES (1024 * 1024)
#define CONFIG_MIN_REQUEST_LINE 256
#define CONFIG_MAX_AGE_SEC (UINT64_C(10) * 365 * 24 * 3600)
#define CONFIG_MAX_BODY_BYTES (UINT64_C(1) << 30)
#define CONFIG_MAX_TIMEOUT_USEC (UINT64_C(24) * 3600 * 1000000)

typedef enum ListenKind {
        LISTEN_INET,  /* IPv4 "127.0.0.1:8080", "*:8080" or "8080" */
        LISTEN_INET6, /* "[::1]:8080", "[::]:8080" */
        LISTEN_UNIX,  /* "unix:/run/webpoold.sock" or "/run/webpoold.sock" */
} ListenKind;

typedef struct ListenAddress {
        ListenKind kind;
        char host[64];                 /* numeric address; "" for any */
        uint16_t port;
        char path[108];                /* LISTEN_UNIX: sun_path */
        char text[128];                /* as written, for logs */
} ListenAddress;

typedef struct Config {
        ListenAddress listen[CONFIG_MAX_LISTEN];
        size_t n_listen;
        char root[CONFIG_MAX_PATH];            /* absolute, existing directory */
        char index[256];                       /* a file name, no '/' */
        char error_page_404[CONFIG_MAX_PATH];  /* "" or a path under root, "/404.html" */
        unsigned workers;                      /* 0 in the file means online CPUs */
        unsigned max_connections;
        size_t max_header_bytes;
        size_t max_request_line;               /* longer: 414 */
        unsigned max_header_fields;            /* more: 431 */
        size_t max_body_bytes;                 /* request body read and dropped; more: 413 */
        bool allow_dotfiles;                   /* else names starting with '.' are 404 */
        bool precompressed;                    /* serve FILE.br / FILE.gz when accepted */
        int64_t cache_max_age_sec;             /* Cache-Control: max-age; -1 = off */
        uint64_t header_timeout_usec;
        uint64_t keepalive_timeout_usec;
        uint64_t send_timeout_usec;
        uint64_t shutdown_timeout_usec;
        int log_level;                         /* LOG_* */
        /* "off", "journal", or an absolute path made canonical through its
         * existing directory, which is not under root; as access_log_open()
         * takes it. Never "". */
        char access_log[CONFIG_MAX_PATH];
} Config;

/* Where an error came from, for "FILE:LINE: key: message" lines. */
typedef struct ConfigError {
        unsigned line;      /* 0 when not tied to a line */
        char key[64];       /* "section.key", or "" */
        char message[256];
} ConfigError;

/* Defaults for every setting, before any file is read: listen on "*:80" and
 * "[::]:80", root /var/www/html, index index.html, workers 0 (online CPUs),
 * max_connections 10000, max_header_bytes 8192, timeouts header 60s,
 * keepalive 75s, send 60s, shutdown 30s, log level info, access log off.
 * The first `listen` line of a file replaces the default addresses. */
void config_init_defaults(Config *c);

/* Parses and validates INI text. base_dir resolves relative paths. Returns 0
 * and fills *ret, or -EINVAL and fills *ret_error (ret untouched). */
int config_parse_string(const char *text, const char *base_dir, Config *ret, ConfigError *ret_error);

/* Same for a file. An unreadable file is -errno with line 0. */
int config_load(const char *path, Config *ret, ConfigError *ret_error);

/* Parses a duration ("30", "30s", "500ms", "2min", "1h") into microseconds.
 * Returns 0, -EINVAL or -ERANGE. */
int config_parse_duration(const char *s, uint64_t *ret_usec);

/* Parses one listen address into *ret. Returns 0 or -EINVAL. */
int config_parse_listen(const char *s, const char *base_dir, ListenAddress *ret);
