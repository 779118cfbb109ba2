/* SPDX-License-Identifier: MIT */
#include "reload.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

int reload_answer_signal(void) {
        return SIGRTMIN + 1;
}

static int wait_for_answer(pid_t pid, const sigset_t *answer) {
        struct timespec deadline, now;

        (void) clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += RELOAD_ANSWER_TIMEOUT_SEC;
        for (;;) {
                siginfo_t info;
                (void) clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > deadline.tv_sec ||
                    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
                        return -ETIMEDOUT;
                struct timespec left = { .tv_sec = deadline.tv_sec - now.tv_sec,
                                         .tv_nsec = deadline.tv_nsec - now.tv_nsec };
                if (left.tv_nsec < 0) {
                        left.tv_sec--;
                        left.tv_nsec += 1000000000L;
                }
                int sig = sigtimedwait(answer, &info, &left);
                if (sig < 0 && errno == EAGAIN)
                        return -ETIMEDOUT;
                if (sig < 0 && errno == EINTR)
                        continue;
                if (sig < 0)
                        return -errno;
                /* Only the daemon's own answer counts. */
                if (info.si_pid == pid && info.si_code == SI_QUEUE)
                        return -abs(info.si_value.sival_int);
        }
}

int reload_request(pid_t pid) {
        sigset_t answer, old;
        int r;

        sigemptyset(&answer);
        sigaddset(&answer, reload_answer_signal());
        /* Blocked before asking, so an answer that comes back at once waits
         * for sigtimedwait() instead of killing us. */
        if (sigprocmask(SIG_BLOCK, &answer, &old) < 0)
                return -errno;
        if (sigqueue(pid, SIGHUP, (union sigval) { .sival_int = RELOAD_ASK }) < 0)
                r = -errno;
        else
                r = wait_for_answer(pid, &answer);
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}

bool reload_is_request(const struct signalfd_siginfo *si) {
        return si->ssi_signo == SIGHUP && si->ssi_code == SI_QUEUE && si->ssi_int == RELOAD_ASK;
}

int reload_answer(pid_t requester, int result) {
        if (sigqueue(requester, reload_answer_signal(), (union sigval) { .sival_int = abs(result) }) < 0)
                return errno == ESRCH ? 0 : -errno;
        return 0;
}
