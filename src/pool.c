/* SPDX-License-Identifier: MIT */
/*
 * DESIGN
 *
 * One mutex guards a growable ring of jobs and the per-worker bookkeeping;
 * one condition variable wakes idle workers. A worker takes the lock once per
 * job: to record that its previous job finished, and to take the next one.
 *
 * Shutdown sets `stopping` under the lock, so a submit either lands before it
 * (and will be run: workers only exit once the ring is empty) or is refused
 * with -ESHUTDOWN. Workers are joined by the thread that called
 * pool_shutdown().
 *
 * Each worker records when its current job started and when it last finished
 * one, which is all the watchdog needs to tell "busy" from "wedged".
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "macro.h"

#define POOL_INITIAL_RING 64U

typedef struct PoolJob {
        PoolJobFunc func;
        void *userdata;
} PoolJob;

typedef struct PoolWorker {
        pthread_t thread;
        Pool *pool;
        bool started;
        bool busy;
        uint64_t job_started_usec;
        uint64_t job_finished_usec;
} PoolWorker;

struct Pool {
        pthread_mutex_t lock;
        pthread_cond_t wake;

        PoolJob *ring;
        size_t ring_size; /* power of two */
        size_t head;      /* next job to run */
        size_t n_queued;

        bool stopping;
        bool joined;

        unsigned n_workers;
        PoolWorker workers[];
};

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000U;
}

static int pool_grow(Pool *pool) {
        size_t new_size = pool->ring_size * 2;
        PoolJob *ring = calloc(new_size, sizeof(PoolJob));
        if (!ring)
                return -ENOMEM;

        /* Unwrap the old ring so the jobs keep their order. */
        for (size_t i = 0; i < pool->n_queued; i++)
                ring[i] = pool->ring[(pool->head + i) & (pool->ring_size - 1)];

        free(pool->ring);
        pool->ring = ring;
        pool->ring_size = new_size;
        pool->head = 0;
        return 0;
}

static bool pool_take_locked(Pool *pool, PoolJob *ret) {
        if (pool->n_queued == 0)
                return false;
        *ret = pool->ring[pool->head];
        pool->head = (pool->head + 1) & (pool->ring_size - 1);
        pool->n_queued--;
        return true;
}

static void *pool_worker_main(void *arg) {
        PoolWorker *self = arg;
        Pool *pool = self->pool;
        PoolJob job;

        pthread_mutex_lock(&pool->lock);
        for (;;) {
                while (!pool_take_locked(pool, &job)) {
                        if (pool->stopping) {
                                pthread_mutex_unlock(&pool->lock);
                                return NULL;
                        }
                        pthread_cond_wait(&pool->wake, &pool->lock);
                }
                self->busy = true;
                self->job_started_usec = now_usec();
                pthread_mutex_unlock(&pool->lock);

                job.func(job.userdata);

                pthread_mutex_lock(&pool->lock);
                self->busy = false;
                self->job_finished_usec = now_usec();
        }
}

int pool_new(unsigned n_threads, Pool **ret) {
        if (n_threads == 0 || n_threads > POOL_MAX_THREADS)
                return -EINVAL;

        Pool *pool = calloc(1, sizeof(Pool) + n_threads * sizeof(PoolWorker));
        if (!pool)
                return -ENOMEM;

        pool->ring_size = POOL_INITIAL_RING;
        pool->ring = calloc(pool->ring_size, sizeof(PoolJob));
        if (!pool->ring) {
                free(pool);
                return -ENOMEM;
        }
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->wake, NULL);

        for (unsigned i = 0; i < n_threads; i++) {
                PoolWorker *w = &pool->workers[i];
                *w = (PoolWorker) { .pool = pool };
                int r = pthread_create(&w->thread, NULL, pool_worker_main, w);
                if (r != 0) {
                        pool_free(pool);
                        return -r;
                }
                w->started = true;
                pool->n_workers = i + 1;
        }

        *ret = pool;
        return 0;
}

int pool_submit(Pool *pool, PoolJobFunc func, void *userdata) {
        int r = 0;

        pthread_mutex_lock(&pool->lock);
        if (pool->stopping) {
                r = -ESHUTDOWN;
                goto finish;
        }
        if (pool->n_queued == pool->ring_size) {
                r = pool_grow(pool);
                if (r < 0)
                        goto finish;
        }
        pool->ring[(pool->head + pool->n_queued) & (pool->ring_size - 1)] =
                (PoolJob) { .func = func, .userdata = userdata };
        pool->n_queued++;
        pthread_cond_signal(&pool->wake);
finish:
        pthread_mutex_unlock(&pool->lock);
        return r;
}

void pool_shutdown(Pool *pool) {
        pthread_mutex_lock(&pool->lock);
        bool already = pool->joined;
        pool->stopping = true;
        pthread_cond_broadcast(&pool->wake);
        pool->joined = true;
        pthread_mutex_unlock(&pool->lock);

        if (already)
                return;
        for (unsigned i = 0; i < pool->n_workers; i++)
                if (pool->workers[i].started)
                        (void) pthread_join(pool->workers[i].thread, NULL);
}

Pool *pool_free(Pool *pool) {
        if (!pool)
                return NULL;
        pool_shutdown(pool);
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->lock);
        free(pool->ring);
        free(pool);
        return NULL;
}

size_t pool_queued(Pool *pool) {
        pthread_mutex_lock(&pool->lock);
        size_t n = pool->n_queued;
        pthread_mutex_unlock(&pool->lock);
        return n;
}

unsigned pool_threads(const Pool *pool) {
        return pool->n_workers;
}

bool pool_is_progressing(Pool *pool, uint64_t since_usec) {
        bool ok = true;

        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n_workers && ok; i++) {
                const PoolWorker *w = &pool->workers[i];
                if (w->busy && w->job_started_usec < since_usec &&
                    w->job_finished_usec < since_usec)
                        ok = false;
        }
        pthread_mutex_unlock(&pool->lock);
        return ok;
}
