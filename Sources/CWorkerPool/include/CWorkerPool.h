#ifndef MOCO_CWORKERPOOL_H
#define MOCO_CWORKERPOOL_H

/// A fork-join pool of persistent worker threads for the engine's parallel regions
/// (`Parallel.run`). Part 0 of a region runs on the calling thread, part t on worker t, always
/// the same thread, so a part's data stays in that core's caches from one layer to the next.
///
/// Between regions a worker spins (PAUSE, with a clock check every 64 rounds) for up to the
/// pool's spin time before it sleeps on a futex; the caller likewise spins, then sleeps, while
/// it waits for the region's last part. A training step starts a few hundred regions a few
/// microseconds apart: a worker woken from a futex each time starts late (tens to hundreds of
/// microseconds on a virtual machine) and the caller's core idles at every region's end.
///
/// One thread at a time may run regions (`moco_pool_try_begin` tells the others to run theirs
/// another way).

typedef void (*moco_pool_fn)(void *context, long part);

typedef struct moco_pool moco_pool;

/// A pool with no workers yet (they start when a region first needs them); NULL if out of memory.
moco_pool *moco_pool_create(void);

/// Claims the pool for the calling thread's next region: 1 if it is free, 0 if another thread
/// is running a region on it now.
int moco_pool_try_begin(moco_pool *pool);

/// Runs fn(context, t) for t in 0..<parts (t = 0 on the calling thread) and returns when all
/// parts have returned. `spin_ns`: how long the caller, waiting for the last part, and the idle
/// workers after this region spin before they sleep; 0 sleeps at once. The caller must hold the
/// pool (`moco_pool_try_begin`); it is released on return. Starts workers up to parts - 1 first;
/// returns -1 (errno set, nothing run) if a thread cannot be started, else 0.
int moco_pool_run(moco_pool *pool, long parts, long spin_ns, moco_pool_fn fn, void *context);

/// Releases a claim that was not used by `moco_pool_run`.
void moco_pool_end(moco_pool *pool);

/// The worker threads started so far.
long moco_pool_workers(const moco_pool *pool);

/// CPUs the calling thread may run on (sched_getaffinity), at least 1.
long moco_pool_allowed_cpus(void);

#endif
