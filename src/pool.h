/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A generic fixed-size pthread pool. It knows nothing of sockets or HTTP: a
 * job is a function and an argument, run exactly once on some worker.
 *
 * Lifecycle: pool_new() starts the workers; pool_submit() queues jobs from any
 * thread; pool_shutdown() stops taking jobs, lets the workers finish every job
 * already queued, and joins them; pool_free() releases what is left. */

typedef struct Pool Pool;
typedef void (*PoolJobFunc)(void *userdata);

#define POOL_MAX_THREADS 1024U

/* Starts n_threads workers (1..POOL_MAX_THREADS). Returns 0 or -errno. */
int pool_new(unsigned n_threads, Pool **ret);

/* Queues one job. Returns 0, -ESHUTDOWN once pool_shutdown() has begun (the
 * job is then not run and stays the caller's), or -ENOMEM. */
int pool_submit(Pool *pool, PoolJobFunc func, void *userdata);

/* Stops accepting jobs, runs every job already queued, joins every worker.
 * Idempotent. Must not be called from a worker. */
void pool_shutdown(Pool *pool);

/* Shuts down if needed, then frees. Accepts NULL; returns NULL. */
Pool *pool_free(Pool *pool);

/* Jobs waiting for a worker (not counting running ones). */
size_t pool_queued(Pool *pool);

unsigned pool_threads(const Pool *pool);

/* True when every worker is idle or has finished a job since since_usec
 * (CLOCK_MONOTONIC). A worker stuck in one job for longer is "wedged": the
 * daemon then withholds its watchdog ping so systemd restarts it. */
bool pool_is_progressing(Pool *pool, uint64_t since_usec);
