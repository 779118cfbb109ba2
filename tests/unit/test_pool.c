/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

#define N_JOBS 10000

static atomic_int run_count[N_JOBS];

static void count_job(void *userdata) {
        atomic_fetch_add(&run_count[(intptr_t) userdata], 1);
}

static void reset_counts(void) {
        for (int i = 0; i < N_JOBS; i++)
                atomic_store(&run_count[i], 0);
}

static void assert_each_ran_once(int n) {
        for (int i = 0; i < n; i++)
                assert_int_equal(atomic_load(&run_count[i]), 1);
}

static void test_rejects_bad_thread_count(void **state) {
        (void) state;
        Pool *pool = NULL;
        assert_int_equal(pool_new(0, &pool), -EINVAL);
        assert_int_equal(pool_new(POOL_MAX_THREADS + 1, &pool), -EINVAL);
        assert_null(pool);
}

static void test_every_job_runs_once(void **state) {
        (void) state;
        Pool *pool;
        reset_counts();
        assert_int_equal(pool_new(4, &pool), 0);
        assert_int_equal(pool_threads(pool), 4);
        for (intptr_t i = 0; i < N_JOBS; i++)
                assert_int_equal(pool_submit(pool, count_job, (void *) i), 0);
        pool_shutdown(pool);
        assert_each_ran_once(N_JOBS);
        assert_int_equal(pool_queued(pool), 0);
        pool = pool_free(pool);
        assert_null(pool);
}

static void slow_count_job(void *userdata) {
        usleep(200);
        count_job(userdata);
}

/* Jobs still queued when shutdown starts are run, not dropped. */
static void test_shutdown_runs_queued_jobs_and_joins(void **state) {
        (void) state;
        Pool *pool;
        reset_counts();
        assert_int_equal(pool_new(1, &pool), 0);
        for (intptr_t i = 0; i < 500; i++)
                assert_int_equal(pool_submit(pool, slow_count_job, (void *) i), 0);
        assert_true(pool_queued(pool) > 0);
        pool_shutdown(pool);
        /* Joined: nothing can still be running, so the counts are final. */
        assert_each_ran_once(500);
        pool_shutdown(pool); /* idempotent */
        pool_free(pool);
}

static void test_submit_after_shutdown_fails(void **state) {
        (void) state;
        Pool *pool;
        reset_counts();
        assert_int_equal(pool_new(2, &pool), 0);
        pool_shutdown(pool);
        assert_int_equal(pool_submit(pool, count_job, (void *) 0), -ESHUTDOWN);
        pool_free(pool);
        assert_int_equal(atomic_load(&run_count[0]), 0);
}

#define N_SUBMITTERS 4
#define JOBS_PER_SUBMITTER (N_JOBS / N_SUBMITTERS)

typedef struct {
        Pool *pool;
        intptr_t first;
        int failures;
} Submitter;

static void *submitter_main(void *arg) {
        Submitter *s = arg;
        for (intptr_t i = 0; i < JOBS_PER_SUBMITTER; i++)
                if (pool_submit(s->pool, count_job, (void *) (s->first + i)) < 0)
                        s->failures++;
        return NULL;
}

static void test_stress_from_several_threads(void **state) {
        (void) state;
        Pool *pool;
        pthread_t threads[N_SUBMITTERS];
        Submitter subs[N_SUBMITTERS];

        reset_counts();
        assert_int_equal(pool_new(3, &pool), 0);
        for (int i = 0; i < N_SUBMITTERS; i++) {
                subs[i] = (Submitter) { .pool = pool, .first = (intptr_t) i * JOBS_PER_SUBMITTER };
                assert_int_equal(pthread_create(&threads[i], NULL, submitter_main, &subs[i]), 0);
        }
        for (int i = 0; i < N_SUBMITTERS; i++) {
                assert_int_equal(pthread_join(threads[i], NULL), 0);
                assert_int_equal(subs[i].failures, 0);
        }
        pool_free(pool);
        assert_each_ran_once(N_SUBMITTERS * JOBS_PER_SUBMITTER);
}

static atomic_bool release_job;

static void blocking_job(void *userdata) {
        (void) userdata;
        while (!atomic_load(&release_job))
                usleep(1000);
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

/* The watchdog rule: a worker stuck in a job that started before the
 * interval, with nothing finished since, means the pool is wedged. */
static void test_progress_detects_wedged_worker(void **state) {
        (void) state;
        Pool *pool;
        atomic_store(&release_job, false);
        assert_int_equal(pool_new(2, &pool), 0);
        assert_true(pool_is_progressing(pool, monotonic_usec())); /* all idle */

        uint64_t before_submit = monotonic_usec();
        assert_int_equal(pool_submit(pool, blocking_job, NULL), 0);
        usleep(20000);
        uint64_t since = monotonic_usec();
        assert_false(pool_is_progressing(pool, since));
        /* A job that started within the interval is just busy. */
        assert_true(pool_is_progressing(pool, before_submit));

        atomic_store(&release_job, true);
        pool_shutdown(pool);
        assert_true(pool_is_progressing(pool, since));
        pool_free(pool);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rejects_bad_thread_count),
                cmocka_unit_test(test_every_job_runs_once),
                cmocka_unit_test(test_shutdown_runs_queued_jobs_and_joins),
                cmocka_unit_test(test_submit_after_shutdown_fails),
                cmocka_unit_test(test_stress_from_several_threads),
                cmocka_unit_test(test_progress_detects_wedged_worker),
        };
        return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
