//! The thread pool kernels split their rows over.
//!
//! Persistent workers wait for work by spinning briefly, then parking. A call to `run` publishes
//! one job (a borrowed closure) and a packed atomic word `state = gen:24 | tasks:20 | next:20`;
//! every thread, the caller included, claims task indices by compare-and-swap on that word, so a
//! thread that wakes late can only ever claim a task of the job that is still running (the job
//! cannot finish while one of its tasks is claimed and not done). No allocation per call.
//! Calls from several threads are serialized by a try-lock; a call that finds the pool busy (or a
//! nested call from inside a task) runs its tasks inline on the calling thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};

const TASK_BITS: u32 = 20;
const MAX_TASKS: usize = (1 << TASK_BITS) - 1;
const SPIN_ROUNDS: u32 = 20_000;

fn pack(gen: u64, tasks: usize, next: usize) -> u64 {
    (gen << (2 * TASK_BITS)) | ((tasks as u64) << TASK_BITS) | next as u64
}
fn unpack(s: u64) -> (u64, usize, usize) {
    let mask = MAX_TASKS as u64;
    (
        s >> (2 * TASK_BITS),
        ((s >> TASK_BITS) & mask) as usize,
        (s & mask) as usize,
    )
}

type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// What the caller and the workers share.
struct Shared {
    state: AtomicU64,
    /// Points at the running job's `Job` (a thin pointer to a fat reference on the caller's stack).
    job: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleeping: Vec<AtomicBool>,
    /// Workers that have started and made their first-use allocations.
    started: AtomicUsize,
}

impl Shared {
    /// Claim the next task index of the running job, if any is left.
    fn claim(&self) -> Option<usize> {
        let mut s = self.state.load(Acquire);
        loop {
            let (gen, tasks, next) = unpack(s);
            if next >= tasks {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(s, pack(gen, tasks, next + 1), AcqRel, Acquire)
            {
                Ok(_) => return Some(next),
                Err(now) => s = now,
            }
        }
    }

    fn has_work(&self) -> bool {
        let (_, tasks, next) = unpack(self.state.load(Acquire));
        next < tasks
    }

    /// Run claimed tasks until none is left.
    fn work(&self) {
        while let Some(task) = self.claim() {
            // SAFETY: a claimed, unfinished task keeps its job (and the caller's frame) alive.
            let job = unsafe { *(self.job.load(Acquire) as *const Job) };
            if catch_unwind(AssertUnwindSafe(|| job(task))).is_err() {
                self.panicked.store(true, Release);
            }
            self.done.fetch_add(1, AcqRel);
        }
    }
}

/// A fixed number of threads (the caller counts as one). `run(n, f)` calls `f(i)` for every
/// `i < n`, spread over the threads, and returns when all are done.
pub struct ThreadPool {
    threads: usize,
    shared: Arc<Shared>,
    handles: Vec<(Thread, JoinHandle<()>)>,
    busy: Mutex<u64>,
}

impl ThreadPool {
    pub fn new(threads: usize) -> ThreadPool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleeping: (1..threads).map(|_| AtomicBool::new(false)).collect(),
            started: AtomicUsize::new(0),
        });
        let handles = (1..threads)
            .map(|w| {
                let sh = shared.clone();
                let h = thread::Builder::new()
                    .name(format!("ondo-worker-{w}"))
                    .spawn(move || worker(&sh, w - 1))
                    .expect("spawn ondo worker thread");
                (h.thread().clone(), h)
            })
            .collect();
        // Wait for every worker to start: on a loaded machine a new thread may first run much
        // later, and its start-up allocations would then land in the middle of generation
        // (decode_no_alloc failed so under CI load).
        while shared.started.load(Acquire) < threads - 1 {
            thread::yield_now();
        }
        ThreadPool {
            threads,
            shared,
            handles,
            busy: Mutex::new(0),
        }
    }

    /// Threads from `ONDO_NUM_THREADS`, else the number of physical cores.
    pub fn from_env() -> ThreadPool {
        let n = std::env::var("ONDO_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        ThreadPool::new(n.unwrap_or_else(physical_cores))
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f(task)` for each `task in 0..tasks`. A panic in `f` is re-raised here.
    pub fn run<F: Fn(usize) + Sync>(&self, tasks: usize, f: F) {
        let guard = match self.busy.try_lock() {
            Ok(g) if self.threads > 1 && tasks > 1 => g,
            _ => return (0..tasks).for_each(f),
        };
        let mut panicked = false;
        for start in (0..tasks).step_by(MAX_TASKS) {
            let n = MAX_TASKS.min(tasks - start);
            let g = |i: usize| f(start + i);
            panicked |= self.run_batch(n, &g, &guard);
        }
        drop(guard);
        if panicked {
            panic!("a ThreadPool task panicked");
        }
    }

    /// Publish one batch, help with it, wait for it; true when a task panicked.
    fn run_batch(&self, tasks: usize, f: Job, _guard: &std::sync::MutexGuard<u64>) -> bool {
        let sh = &*self.shared;
        let job: Job = f;
        sh.job.store(&job as *const Job as usize, Release);
        sh.done.store(0, Release);
        let (gen, _, _) = unpack(sh.state.load(Acquire));
        sh.state.store(pack((gen + 1) & 0xFF_FFFF, tasks, 0), SeqCst);
        for (sleeping, (t, _)) in sh.sleeping.iter().zip(&self.handles) {
            if sleeping.load(SeqCst) {
                t.unpark();
            }
        }
        sh.work();
        let mut spins = 0u32;
        while sh.done.load(Acquire) < tasks {
            spins += 1;
            if spins < SPIN_ROUNDS {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        sh.panicked.swap(false, AcqRel)
    }
}

/// A worker: wait for claimable tasks (spin, then park), run them, repeat until shutdown.
fn worker(sh: &Shared, idx: usize) {
    // the first `park` would otherwise create this thread's handle, an allocation at a random
    // later moment (tests/no_alloc.rs saw it)
    let _ = thread::current();
    sh.started.fetch_add(1, Release);
    loop {
        let mut spins = 0u32;
        while !sh.has_work() {
            if sh.shutdown.load(Acquire) {
                return;
            }
            spins += 1;
            if spins < SPIN_ROUNDS {
                std::hint::spin_loop();
                continue;
            }
            sh.sleeping[idx].store(true, SeqCst);
            if !sh.has_work() && !sh.shutdown.load(SeqCst) {
                thread::park();
            }
            sh.sleeping[idx].store(false, SeqCst);
        }
        sh.work();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        for (t, h) in self.handles.drain(..) {
            t.unpark();
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadPool({} threads)", self.threads)
    }
}

/// Physical cores: distinct (package, core) pairs in /proc/cpuinfo, capped by the cores this
/// process may use; falls back to `available_parallelism`.
fn physical_cores() -> usize {
    let logical = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let mut package = "";
    for line in info.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("physical id"), Some(v)) => package = v,
            (Some("core id"), Some(v)) => {
                cores.insert((package.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool::new(threads);
            for tasks in [0, 1, 2, 7, 64, 1000] {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(tasks, |i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Relaxed) == 1),
                    "{threads} threads, {tasks} tasks"
                );
            }
        }
    }

    #[test]
    fn many_quick_calls_and_several_callers() {
        let pool = Arc::new(ThreadPool::new(3));
        let callers: Vec<_> = (0..3)
            .map(|c| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for round in 0..2000 {
                        let sum = AtomicUsize::new(0);
                        pool.run(5, |i| {
                            sum.fetch_add(i + c + round, Relaxed);
                        });
                        assert_eq!(sum.load(Relaxed), 10 + 5 * (c + round));
                    }
                })
            })
            .collect();
        callers.into_iter().for_each(|h| h.join().unwrap());
    }

    #[test]
    fn nested_run_does_not_deadlock() {
        let pool = ThreadPool::new(2);
        let count = AtomicUsize::new(0);
        pool.run(4, |_| {
            pool.run(3, |_| {
                count.fetch_add(1, Relaxed);
            })
        });
        assert_eq!(count.load(Relaxed), 12);
    }

    #[test]
    fn parked_workers_wake_up() {
        let pool = ThreadPool::new(2);
        thread::sleep(std::time::Duration::from_millis(50));
        let count = AtomicUsize::new(0);
        pool.run(8, |_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 8);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(4, |i| assert!(i != 2, "boom"))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(4, |_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 4);
        assert!(pool.busy.try_lock().is_ok(), "the pool lock is not poisoned");
    }

    #[test]
    fn physical_cores_is_positive() {
        assert!(physical_cores() >= 1);
    }
}
