/* SPDX-License-Identifier: MIT */
/*
 * DESIGN
 *
 * Workers log concurrently and take no lock. Each entry is formatted on the
 * writer's stack and leaves in one system call: a write() to an O_APPEND file
 * (the kernel appends each write whole, so lines never interleave), or one
 * sd_journal_sendv() datagram. Contention is left to the kernel, which holds
 * the file's lock only for the copy.
 *
 * The file descriptor's number is fixed for the log's lifetime, so workers
 * read it without synchronisation. Reopening (SIGUSR1, after logrotate has
 * renamed the file) opens the path anew and dup3()s the new file onto that
 * number: the swap is atomic in the descriptor table, and a write() already
 * in flight keeps its reference to the old file and completes there. No
 * writer ever sees a closed or reused number, and no entry is lost: each
 * lands in the old file or in the new one.
 *
 * Formatting goes through a Writer over a fixed buffer. Once a piece does
 * not fit the writer is full and drops everything after it, so a cut line is
 * a prefix of the whole line, never a line with a hole in it.
 */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* CODE_FILE, CODE_LINE and CODE_FUNC would name the same line of this file
 * in every entry. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "macro.h"

struct AccessLog {
        AccessLogKind kind;
        int fd;         /* ACCESS_LOG_FILE: its number never changes */
        char *path;     /* ACCESS_LOG_FILE: for reopening */
};

typedef struct Writer {
        char *buf;
        size_t size;
        size_t len;
        bool full;
} Writer;

static const char *const month_names[12] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static void writer_put(Writer *w, const char *s, size_t n) {
        size_t room = w->size - w->len;

        if (w->full)
                return;
        if (n > room) {
                n = room;
                w->full = true;
        }
        memcpy(w->buf + w->len, s, n);
        w->len += n;
}

static void writer_put_str(Writer *w, const char *s) {
        writer_put(w, s, strlen(s));
}

/* For numbers and the date: short, and never from a client. */
_printf_(2, 0)
static void writer_vprintf(Writer *w, const char *format, va_list ap) {
        char tmp[128];
        int n = vsnprintf(tmp, sizeof(tmp), format, ap);

        if (n > 0)
                writer_put(w, tmp, MIN((size_t) n, sizeof(tmp) - 1));
}

_printf_(2, 3)
static void writer_printf(Writer *w, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        writer_vprintf(w, format, ap);
        va_end(ap);
}

/* A writer for a part of what is left of w, at most cap bytes; its length
 * is added to w's afterwards. */
static Writer writer_sub(const Writer *w, size_t cap) {
        return (Writer) { .buf = w->buf + w->len, .size = MIN(cap, w->size - w->len) };
}

static bool access_log_byte_is_plain(unsigned char c) {
        return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

/* nginx's escaping: everything but printable ASCII, and the two characters
 * that could end or confuse a quoted field, become \xHH. An escape is put
 * whole or not at all. */
static void writer_put_escaped(Writer *w, const char *s, size_t n) {
        static const char hex[] = "0123456789ABCDEF";
        size_t i = 0;

        while (i < n && !w->full) {
                size_t run = 0;
                unsigned char c;

                while (i + run < n && access_log_byte_is_plain((unsigned char) s[i + run]))
                        run++;
                if (run > 0) {
                        writer_put(w, s + i, run);
                        i += run;
                        continue;
                }
                c = (unsigned char) s[i++];
                if (w->size - w->len < 4) {
                        w->full = true;
                        break;
                }
                writer_put(w, (const char[]) { '\\', 'x', hex[c >> 4], hex[c & 0xf] }, 4);
        }
}

/* A possibly absent value: "-" stands for absent or empty. */
static void writer_put_field(Writer *w, const char *s, size_t n) {
        if (!s || n == 0)
                writer_put(w, "-", 1);
        else
                writer_put_escaped(w, s, n);
}

static size_t access_log_remote_len(const AccessLogEntry *e) {
        return e->remote_addr ? strnlen(e->remote_addr, ACCESS_LOG_FIELD_MAX) : 0;
}

/* gmtime_r() needs no time zone and no lock; strftime's %b would follow
 * the locale. */
static void access_log_put_time(Writer *w, time_t t) {
        struct tm tm;

        if (!gmtime_r(&t, &tm)) /* a year past int's range: not a real clock */
                tm = (struct tm) { .tm_mday = 1, .tm_year = 70 };
        writer_printf(w, "[%02d/%s/%04ld:%02d:%02d:%02d +0000]", tm.tm_mday, month_names[tm.tm_mon],
                      (long) tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void access_log_put_request(Writer *w, const AccessLogEntry *e) {
        if (!e->method || e->method_len == 0) {
                writer_put(w, "-", 1);
                return;
        }
        writer_put_escaped(w, e->method, e->method_len);
        writer_put(w, " ", 1);
        writer_put_field(w, e->target, e->target_len);
        writer_printf(w, " HTTP/1.%d", e->minor_version);
}

/* The combined format; the journal's MESSAGE leaves out ident, user and
 * time, which the journal records on its own. */
static void access_log_put_line(Writer *w, const AccessLogEntry *e, bool with_time) {
        writer_put_field(w, e->remote_addr, access_log_remote_len(e));
        if (with_time) {
                writer_put_str(w, " - - ");
                access_log_put_time(w, e->time);
        }
        writer_put_str(w, " \"");
        access_log_put_request(w, e);
        writer_printf(w, "\" %d %" PRIu64 " \"", e->status, e->bytes);
        writer_put_field(w, e->referer, e->referer_len);
        writer_put_str(w, "\" \"");
        writer_put_field(w, e->user_agent, e->user_agent_len);
        writer_put(w, "\"", 1);
}

size_t access_log_format_combined(const AccessLogEntry *e, char *buf, size_t size) {
        Writer w;

        if (size < 2)
                return 0;
        w = (Writer) { .buf = buf, .size = size - 2 }; /* room for "\n" and NUL */
        access_log_put_line(&w, e, true);
        buf[w.len++] = '\n';
        buf[w.len] = '\0';
        return w.len;
}

typedef struct JournalFields {
        Writer text;            /* over the caller's scratch, always big enough */
        struct iovec *iov;
        size_t n;
} JournalFields;

/* The text since start becomes the next field. */
static void journal_fields_push(JournalFields *j, size_t start) {
        j->iov[j->n++] = (struct iovec) { .iov_base = j->text.buf + start, .iov_len = j->text.len - start };
}

_printf_(2, 3)
static void journal_fields_addf(JournalFields *j, const char *format, ...) {
        size_t start = j->text.len;
        va_list ap;

        va_start(ap, format);
        writer_vprintf(&j->text, format, ap);
        va_end(ap);
        journal_fields_push(j, start);
}

static void journal_fields_add_escaped(JournalFields *j, const char *name, const char *s, size_t n) {
        size_t start = j->text.len;
        Writer value;

        writer_put_str(&j->text, name);
        value = writer_sub(&j->text, ACCESS_LOG_FIELD_MAX);
        writer_put_escaped(&value, s, n);
        j->text.len += value.len;
        journal_fields_push(j, start);
}

static void journal_fields_add_message(JournalFields *j, const AccessLogEntry *e) {
        size_t start = j->text.len;
        Writer value;

        writer_put_str(&j->text, "MESSAGE=");
        value = writer_sub(&j->text, ACCESS_LOG_LINE_MAX - 2); /* as long as a file line */
        access_log_put_line(&value, e, false);
        j->text.len += value.len;
        journal_fields_push(j, start);
}

/* Method, path, query and version: the request line, split for matching. */
static void journal_fields_add_request(JournalFields *j, const AccessLogEntry *e) {
        if (!e->method || e->method_len == 0)
                return;
        journal_fields_add_escaped(j, "HTTP_METHOD=", e->method, e->method_len);
        if (e->target && e->target_len > 0) {
                const char *q = memchr(e->target, '?', e->target_len);
                size_t path_len = q ? (size_t) (q - e->target) : e->target_len;

                journal_fields_add_escaped(j, "HTTP_PATH=", e->target, path_len);
                if (q)
                        journal_fields_add_escaped(j, "HTTP_QUERY=", q + 1, e->target_len - path_len - 1);
        }
        journal_fields_addf(j, "HTTP_VERSION=HTTP/1.%d", e->minor_version);
}

int access_log_journal_fields(const AccessLogEntry *e, struct iovec *iov, size_t n_iov,
                              char *scratch, size_t scratch_size) {
        JournalFields j = { .text = { .buf = scratch, .size = scratch_size }, .iov = iov };

        if (n_iov < ACCESS_LOG_JOURNAL_FIELDS || scratch_size < ACCESS_LOG_JOURNAL_SCRATCH)
                return -ENOBUFS;

        journal_fields_add_message(&j, e);
        journal_fields_addf(&j, "PRIORITY=%d", LOG_INFO);
        journal_fields_add_request(&j, e);
        journal_fields_addf(&j, "HTTP_STATUS=%d", e->status);
        journal_fields_addf(&j, "HTTP_BYTES=%" PRIu64, e->bytes);
        journal_fields_addf(&j, "HTTP_DURATION_USEC=%" PRIu64, e->duration_usec);
        if (access_log_remote_len(e) > 0)
                journal_fields_add_escaped(&j, "REMOTE_ADDR=", e->remote_addr, access_log_remote_len(e));
        if (e->referer && e->referer_len > 0)
                journal_fields_add_escaped(&j, "HTTP_REFERER=", e->referer, e->referer_len);
        if (e->user_agent && e->user_agent_len > 0)
                journal_fields_add_escaped(&j, "HTTP_USER_AGENT=", e->user_agent, e->user_agent_len);
        return (int) j.n;
}

static int access_log_open_file(const char *path) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

        return fd < 0 ? -errno : fd;
}

static void access_log_freep(AccessLog **log) {
        (void) access_log_free(*log);
}

int access_log_open(const char *spec, AccessLog **ret) {
        _cleanup_(access_log_freep) AccessLog *log = NULL;
        AccessLogKind kind;

        if (!spec)
                return -EINVAL;
        if (strcmp(spec, "off") == 0)
                kind = ACCESS_LOG_OFF;
        else if (strcmp(spec, "journal") == 0)
                kind = ACCESS_LOG_JOURNAL;
        else if (spec[0] == '/')
                kind = ACCESS_LOG_FILE;
        else
                return -EINVAL;

        log = malloc(sizeof(AccessLog));
        if (!log)
                return -ENOMEM;
        *log = (AccessLog) { .kind = kind, .fd = -EBADF };
        if (kind == ACCESS_LOG_FILE) {
                log->path = strdup(spec);
                if (!log->path)
                        return -ENOMEM;
                log->fd = access_log_open_file(spec);
                if (log->fd < 0)
                        return log->fd;
        }
        *ret = TAKE_PTR(log);
        return 0;
}

AccessLog *access_log_free(AccessLog *log) {
        if (!log)
                return NULL;
        (void) safe_close(log->fd);
        free(log->path);
        free(log);
        return NULL;
}

AccessLogKind access_log_kind(const AccessLog *log) {
        return log ? log->kind : ACCESS_LOG_OFF;
}

static int access_log_write_file(AccessLog *log, const AccessLogEntry *e) {
        char line[ACCESS_LOG_LINE_MAX];
        size_t n = access_log_format_combined(e, line, sizeof(line));
        ssize_t k;

        /* Retrying after a short write could put another thread's line in
         * the middle of this one: the rest is dropped instead. */
        do
                k = write(log->fd, line, n);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

static int access_log_write_journal(const AccessLogEntry *e) {
        char scratch[ACCESS_LOG_JOURNAL_SCRATCH];
        struct iovec iov[ACCESS_LOG_JOURNAL_FIELDS];
        int n = access_log_journal_fields(e, iov, ELEMENTSOF(iov), scratch, sizeof(scratch));

        if (n < 0)
                return n;
        return sd_journal_sendv(iov, n);
}

int access_log_write(AccessLog *log, const AccessLogEntry *e) {
        switch (access_log_kind(log)) {
        case ACCESS_LOG_FILE:
                return access_log_write_file(log, e);
        case ACCESS_LOG_JOURNAL:
                return access_log_write_journal(e);
        default:
                return 0;
        }
}

int access_log_reopen(AccessLog *log) {
        _cleanup_close_ int fd = -EBADF;

        if (access_log_kind(log) != ACCESS_LOG_FILE)
                return 0;
        fd = access_log_open_file(log->path);
        if (fd < 0)
                return fd;
        /* dup2() would clear close-on-exec on the number workers use. */
        if (dup3(fd, log->fd, O_CLOEXEC) < 0)
                return -errno;
        return 0;
}
