// The worker pool of `Parallel.run` (see include/CWorkerPool.h): persistent threads that spin,
// then sleep on a futex, between regions. Linux only (futex(2)).
#define _GNU_SOURCE
#include "CWorkerPool.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { MAX_WORKERS = 255 };

/// One worker's futex word and sleep flag, on a cache line of its own.
struct worker_slot {
    /// Bumped by the caller for each region this worker takes part in, after the region is written.
    _Atomic int generation;
    /// The worker sleeps on `generation`, or is about to.
    _Atomic int sleeping;
    char padding[56];
};

struct moco_pool {
    /// Workers that have not yet finished the current region (futex word of the caller).
    _Atomic int pending;
    /// The caller sleeps on `pending`, or is about to.
    _Atomic int caller_sleeping;
    /// Held by the thread that runs a region (moco_pool_try_begin .. the end of moco_pool_run).
    _Atomic int busy;
    /// How long idle workers and the waiting caller spin (set by each region).
    _Atomic long spin_ns;
    /// The region: written by the caller before the participants' generations are bumped, read
    /// by them after.
    moco_pool_fn fn;
    void *context;
    long workers;
    struct worker_slot slots[MAX_WORKERS + 1];   // slots[t] for worker t = 1...
};

struct worker_start {
    moco_pool *pool;
    long index;
    int seen;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline long elapsed_ns(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

static void futex_wait(_Atomic int *word, int value) {
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *word, int count) {
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/// Spins for up to spin_ns until (*word == value) == until_equal; returns 1 if it got there.
static int spin_until(_Atomic int *word, int value, int until_equal, long spin_ns) {
    if (spin_ns <= 0) return 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned round = 1;; round++) {
        if ((atomic_load_explicit(word, memory_order_acquire) == value) == until_equal) return 1;
        cpu_relax();
        if ((round & 63) == 0 && elapsed_ns(&t0) > spin_ns) return 0;
    }
}

/// The worker's next generation after `seen`: spins, then sleeps. (The sleep flag and the
/// generation are written and read sequentially consistently on both sides, so the caller either
/// sees the flag and wakes the worker or the worker sees the new generation and does not sleep.)
static int next_generation(moco_pool *pool, struct worker_slot *slot, int seen) {
    if (spin_until(&slot->generation, seen, 0, atomic_load_explicit(&pool->spin_ns, memory_order_relaxed)))
        return atomic_load_explicit(&slot->generation, memory_order_acquire);
    for (;;) {
        atomic_store(&slot->sleeping, 1);
        if (atomic_load(&slot->generation) == seen) futex_wait(&slot->generation, seen);
        atomic_store(&slot->sleeping, 0);
        int g = atomic_load_explicit(&slot->generation, memory_order_acquire);
        if (g != seen) return g;
    }
}

/// Returns when every worker has finished the current region: spins, then sleeps on `pending`.
static void wait_for_workers(moco_pool *pool) {
    if (spin_until(&pool->pending, 0, 1, atomic_load_explicit(&pool->spin_ns, memory_order_relaxed))) return;
    for (;;) {
        atomic_store(&pool->caller_sleeping, 1);
        int pending = atomic_load(&pool->pending);
        if (pending == 0) break;
        futex_wait(&pool->pending, pending);
    }
    atomic_store(&pool->caller_sleeping, 0);
    atomic_thread_fence(memory_order_acquire);
}

static void *worker_main(void *argument) {
    struct worker_start start = *(struct worker_start *)argument;
    free(argument);
    moco_pool *pool = start.pool;
    struct worker_slot *slot = &pool->slots[start.index];
    int seen = start.seen;
    for (;;) {
        seen = next_generation(pool, slot, seen);
        pool->fn(pool->context, start.index);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeping))
            futex_wake(&pool->pending, 1);
    }
    return NULL;
}

moco_pool *moco_pool_create(void) {
    return calloc(1, sizeof(moco_pool));
}

int moco_pool_try_begin(moco_pool *pool) {
    int expected = 0;
    return atomic_compare_exchange_strong(&pool->busy, &expected, 1);
}

void moco_pool_end(moco_pool *pool) {
    atomic_store_explicit(&pool->busy, 0, memory_order_release);
}

long moco_pool_workers(const moco_pool *pool) { return pool->workers; }

long moco_pool_allowed_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

/// Starts workers up to `count` (signals blocked in them: they go to the process's other threads).
static int start_workers(moco_pool *pool, long count) {
    if (count > MAX_WORKERS) { errno = EINVAL; return -1; }
    if (pool->workers >= count) return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int status = 0;
    while (pool->workers < count) {
        struct worker_start *start = malloc(sizeof *start);
        if (!start) { status = ENOMEM; break; }
        start->pool = pool;
        start->index = pool->workers + 1;
        start->seen = atomic_load(&pool->slots[pool->workers + 1].generation);
        pthread_t thread;
        status = pthread_create(&thread, NULL, worker_main, start);
        if (status != 0) { free(start); break; }
        pthread_detach(thread);
        pool->workers += 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (status != 0) { errno = status; return -1; }
    return 0;
}

int moco_pool_run(moco_pool *pool, long parts, long spin_ns, moco_pool_fn fn, void *context) {
    if (start_workers(pool, parts - 1) != 0) { moco_pool_end(pool); return -1; }
    if (parts <= 1) {
        for (long t = 0; t < parts; t++) fn(context, t);
        moco_pool_end(pool);
        return 0;
    }
    pool->fn = fn;
    pool->context = context;
    atomic_store_explicit(&pool->spin_ns, spin_ns, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, (int)(parts - 1), memory_order_relaxed);
    for (long t = 1; t < parts; t++) {
        struct worker_slot *slot = &pool->slots[t];
        atomic_fetch_add(&slot->generation, 1);
        if (atomic_load(&slot->sleeping)) futex_wake(&slot->generation, 1);
    }

    fn(context, 0);

    wait_for_workers(pool);
    moco_pool_end(pool);
    return 0;
}
