/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <sys/signalfd.h>
#include <sys/types.h>

/* The handshake behind `webpoold -r PID`, the unit's ExecReload=.
 *
 * systemd 252 has no Type=notify-reload: `systemctl reload` returns as soon
 * as ExecReload= exits, so a plain `kill -HUP` would return before the
 * daemon has read the file, and could not report that it refused it. The
 * command therefore sends SIGHUP with sigqueue() carrying RELOAD_ASK, and
 * the daemon, once the reload is done, answers the sender with
 * reload_answer_signal() carrying 0 or the errno of the failure. A SIGHUP
 * sent any other way (kill, logrotate) reloads the same, unanswered. */

#define RELOAD_ASK 0x57504c44 /* "WPLD" */

/* How long the command waits for the answer. */
#define RELOAD_ANSWER_TIMEOUT_SEC 60

int reload_answer_signal(void);

/* Asks pid to reload and waits for its answer. The caller must not have
 * other threads. Returns 0 when the daemon took the new configuration,
 * -errno of its failure, -ETIMEDOUT without an answer, or the error of
 * sending. */
int reload_request(pid_t pid);

/* Whether a SIGHUP read from a signalfd is a request that wants an answer. */
bool reload_is_request(const struct signalfd_siginfo *si);

/* Tells the requester how the reload went (0 or -errno). Returns 0 or
 * -errno; a requester that has gone away is no error of ours. */
int reload_answer(pid_t requester, int result);
