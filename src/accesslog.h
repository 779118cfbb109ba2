/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* The access log: one record per request, off, to the journal, or appended
 * to a file in the combined log format.
 *
 * Thread safety: access_log_write() may be called from any number of threads
 * at once and takes no lock. access_log_reopen() may run concurrently with
 * writers, but from one thread at a time (the acceptor, on SIGUSR1).
 * access_log_free() only once no thread can write any more.
 *
 * The module never logs; errors are returned for the caller to report.
 *
 * Every byte of a client-supplied string is escaped before it is written, the
 * way nginx escapes: '"', '\\', and bytes below 0x20 or above 0x7e become
 * "\xHH". A client cannot start a line of its own, or end a quoted field. */

/* A line, its '\n' and a NUL: longer ones are cut (the '\n' is kept). It is
 * also PIPE_BUF on Linux, so a line written to a pipe stays whole. */
#define ACCESS_LOG_LINE_MAX 4096

/* The longest value of one journal field other than MESSAGE, escaped. */
#define ACCESS_LOG_FIELD_MAX 1024

/* The journal fields of one entry, at most; and the scratch space that
 * always holds their text: the MESSAGE line, six string fields, and less
 * than 256 bytes of field names and numbers. */
#define ACCESS_LOG_JOURNAL_FIELDS 12
#define ACCESS_LOG_JOURNAL_SCRATCH (ACCESS_LOG_LINE_MAX + 6 * ACCESS_LOG_FIELD_MAX + 256)

typedef enum AccessLogKind {
        ACCESS_LOG_OFF,
        ACCESS_LOG_JOURNAL,
        ACCESS_LOG_FILE,
} AccessLogKind;

typedef struct AccessLog AccessLog;

/* What is known of one request once its response is sent. Strings are
 * slices, not NUL-terminated; a NULL pointer or a zero length means absent. */
typedef struct AccessLogEntry {
        const char *remote_addr;   /* NUL-terminated: "127.0.0.1", "::1", "unix"; NULL prints "-" */
        const char *method;        /* NULL when no request line was parsed */
        size_t method_len;
        const char *target;        /* the request-target as sent */
        size_t target_len;
        int minor_version;         /* HTTP/1.<minor_version> */
        int status;
        uint64_t bytes;            /* body bytes sent */
        uint64_t duration_usec;
        const char *referer;
        size_t referer_len;
        const char *user_agent;
        size_t user_agent_len;
        time_t time;               /* when the request arrived */
} AccessLogEntry;

/* Opens the log that spec names: "off", "journal", or an absolute path. A
 * file is opened for appending (created 0640, less the umask) at once, so a
 * bad path fails here with its -errno (-ENOENT for a missing directory).
 * Returns 0, -EINVAL for any other spec, -ENOMEM or -errno. */
int access_log_open(const char *spec, AccessLog **ret);

/* Closes and frees. Accepts NULL; returns NULL. No thread may be writing. */
AccessLog *access_log_free(AccessLog *log);

/* ACCESS_LOG_OFF for NULL too, so a caller can skip building the entry. */
AccessLogKind access_log_kind(const AccessLog *log);

/* Records one request; does nothing for NULL or an "off" log. A file gets
 * one write() of one line: with O_APPEND, lines from different threads
 * never interleave in a regular file on a local file system. Returns 0, or
 * -errno (-EIO for a short write, whose rest is dropped): the entry is lost
 * and the caller decides whether to say so. */
int access_log_write(AccessLog *log, const AccessLogEntry *e);

/* For logrotate: opens the path again and puts the new file on the old
 * descriptor's number (dup3), so a writer uses either the old file or the
 * new one, never a closed or reused descriptor. On failure the log keeps
 * going to the old file. Returns 0 (also for "off" and "journal") or -errno. */
int access_log_reopen(AccessLog *log);

/* Formats e as one combined-format line, '\n'-terminated, into buf, and
 * NUL-terminates it:
 *   REMOTE - - [26/Nov/2026:04:10:02 +0000] "GET /path HTTP/1.1" 200 1234 "referer" "user-agent"
 * Time is UTC with English month names, whatever the locale. bytes is always
 * a number (0 too, as nginx prints it). An absent or empty referer or user
 * agent prints "-"; with no method the request field is "-". A line that
 * does not fit is cut, never in the middle of an escape, and still ends
 * with '\n'. Returns the length with the '\n' and without the NUL, or 0 when
 * size < 2. */
size_t access_log_format_combined(const AccessLogEntry *e, char *buf, size_t size);

/* Builds the journal fields of e as "NAME=value" iovecs for
 * sd_journal_sendv(), their text in scratch. Fields, in this order:
 *   MESSAGE             the combined line without time, ident and user:
 *                       127.0.0.1 "GET /path HTTP/1.1" 200 1234 "-" "curl/8.0"
 *   PRIORITY            6 (info)
 *   HTTP_METHOD         \  only when there is a method. PATH is the target
 *   HTTP_PATH            | up to its '?' (when there is a target), QUERY
 *   HTTP_QUERY           | what follows the '?' (when there is one),
 *   HTTP_VERSION        /  VERSION is "HTTP/1.1" or "HTTP/1.0"
 *   HTTP_STATUS, HTTP_BYTES, HTTP_DURATION_USEC
 *   REMOTE_ADDR, HTTP_REFERER, HTTP_USER_AGENT   only when present and not empty
 * Values are escaped as in the file, and each is cut at
 * ACCESS_LOG_FIELD_MAX bytes. Returns the number of iovecs filled, or
 * -ENOBUFS when n_iov < ACCESS_LOG_JOURNAL_FIELDS or scratch_size <
 * ACCESS_LOG_JOURNAL_SCRATCH. */
int access_log_journal_fields(const AccessLogEntry *e, struct iovec *iov, size_t n_iov,
                              char *scratch, size_t scratch_size);
