//! The thread pool kernels split their rows over.
//!
//! First version: scoped threads per call. To be replaced by persistent spinning workers.

/// A fixed number of workers. `run(n, f)` calls `f(i)` for every `i < n` task, spread over the
/// workers, and returns when all are done.
pub struct ThreadPool {
    threads: usize,
}

impl ThreadPool {
    pub fn new(threads: usize) -> ThreadPool {
        ThreadPool { threads: threads.max(1) }
    }

    /// Threads from `ONDO_NUM_THREADS`, else the number of physical cores.
    pub fn from_env() -> ThreadPool {
        let n = std::env::var("ONDO_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        ThreadPool::new(n)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f(task)` for each `task in 0..tasks`.
    pub fn run<F: Fn(usize) + Sync>(&self, tasks: usize, f: F) {
        if self.threads == 1 || tasks <= 1 {
            (0..tasks).for_each(f);
            return;
        }
        let workers = self.threads.min(tasks);
        std::thread::scope(|s| {
            for w in 1..workers {
                let f = &f;
                s.spawn(move || (w..tasks).step_by(workers).for_each(f));
            }
            (0..tasks).step_by(workers).for_each(&f);
        });
    }
}
