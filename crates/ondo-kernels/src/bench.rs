//! Kernel benchmarks, shared by `benches/kernels.rs` and `ondo bench kernels`.
//!
//! Batch-1 matvec is memory bound, so it is reported as GB/s of weight bytes read and as a share
//! of the machine's read bandwidth (measured here, same threads); batched matmul is reported as
//! GFLOP/s (2·n·rows·cols per call). Weights are cycled over enough copies to defeat the L3.

use crate::testutil::Rng;
use crate::{matmul, DType, ThreadPool, Weight};
use std::time::{Duration, Instant};

/// The formats benchmarked when none are named.
pub const DEFAULT_FORMATS: [DType; 12] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q8_0,
    DType::Q2_K,
    DType::Q3_K,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
    DType::BF16,
    DType::F16,
    DType::F32,
];

/// The whole kernel report as text (what `ondo bench kernels` prints): instruction set, pool
/// fork/join latency and read bandwidth per thread count, the batch-1 matvec table, and with
/// `batched` the batch 64 and 512 tables, all over 4096 rows x 14336 columns (ggml's
/// test-backend-ops `MUL_MAT` perf shape m=4096, k=14336, so the figures compare directly).
pub fn report(formats: &[DType], threads: &[usize], batched_too: bool) -> String {
    let mut s = format!("isa: {:?}\n", crate::Isa::detect());
    let rows = matvec(formats, threads, 4096, 14336);
    for &t in threads {
        let (best, median) = pool_latency(&ThreadPool::new(t));
        s += &format!("threads {t}: pool fork/join best {best:.1} us, median {median:.1} us");
        // the denominator of the table's %bw (best of the matvec rounds)
        match rows.iter().find(|r| r.threads == t && r.of_bandwidth > 0.0) {
            Some(r) => s += &format!("; read bandwidth {:.1} GB/s\n", r.gbps / r.of_bandwidth),
            None => s += "\n",
        }
    }
    s += &table(&rows);
    if batched_too {
        for n in [64, 512] {
            s += &table(&batched(formats, threads, n, 4096, 14336));
        }
    }
    s
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct BenchRow {
    pub dtype: DType,
    pub threads: usize,
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
    /// Seconds per call (median-ish: best of the timed calls).
    pub seconds: f64,
    /// Weight bytes read per second, GB/s.
    pub gbps: f64,
    pub gflops: f64,
    /// `gbps` as a share of the measured read bandwidth with the same threads, 0..1.
    pub of_bandwidth: f64,
}

/// Read bandwidth in GB/s: `threads` threads each summing their part of a 256 MiB buffer with
/// the widest loads this CPU has (so the figure is the memory's limit, not the summing loop's).
pub fn read_bandwidth(pool: &ThreadPool) -> f64 {
    let buf = vec![1u64; 32 << 20];
    let parts = pool.threads();
    let chunk = buf.len() / parts;
    // with and without software prefetch, the faster: an Intel Xeon's hardware prefetchers
    // alone gave 29 GB/s with 2 threads where its AVX-512 kernels read 43-49
    let once = |ahead: bool| {
        let t = Instant::now();
        pool.run(parts, |p| {
            std::hint::black_box(sum_words(&buf[p * chunk..(p + 1) * chunk], ahead));
        });
        t.elapsed().as_secs_f64()
    };
    once(false);
    let best = (0..10).map(|i| once(i % 2 == 1)).fold(f64::MAX, f64::min);
    (buf.len() * 8) as f64 / best / 1e9
}

/// The wrapping sum of `words`, 512 bits per load where AVX-512 is present (asking for the
/// words 2 KiB ahead when `ahead`).
fn sum_words(words: &[u64], ahead: bool) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { sum_words_avx512(words, ahead) };
    }
    let _ = ahead;
    words
        .chunks_exact(8)
        .fold([0u64; 8], |mut acc, c| {
            for k in 0..8 {
                acc[k] = acc[k].wrapping_add(c[k]);
            }
            acc
        })
        .iter()
        .fold(0, |s, v| s.wrapping_add(*v))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_words_avx512(words: &[u64], ahead: bool) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 4];
    let p = words.as_ptr() as *const __m512i;
    for i in 0..words.len() / 32 {
        if ahead {
            for k in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(4 * i + k + 32) as *const i8);
            }
        }
        for (k, a) in acc.iter_mut().enumerate() {
            *a = _mm512_add_epi64(*a, _mm512_loadu_si512(p.add(4 * i + k) as *const _));
        }
    }
    let s = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
    _mm512_reduce_add_epi64(s) as u64
}

/// Fork/join latency of `pool.run` in microseconds (best, median over many calls), with one task
/// per thread that waits until every thread has arrived, so each call really wakes every worker.
pub fn pool_latency(pool: &ThreadPool) -> (f64, f64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = pool.threads();
    let mut times: Vec<f64> = (0..2000)
        .map(|_| {
            let arrived = AtomicUsize::new(0);
            let t = Instant::now();
            pool.run(threads, |_| {
                arrived.fetch_add(1, Ordering::AcqRel);
                let mut spins = 0u32;
                while arrived.load(Ordering::Acquire) < threads && spins < 10_000_000 {
                    std::hint::spin_loop();
                    spins += 1;
                }
            });
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

/// Best seconds per call of `f` over about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut calls = 0;
    while calls < 3 || (start.elapsed() < budget && calls < 200) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        calls += 1;
    }
    best
}

/// Batch-1 matvec over `rows x cols` weights of each format, with enough copies to exceed 128 MiB.
pub fn matvec(formats: &[DType], threads: &[usize], rows: usize, cols: usize) -> Vec<BenchRow> {
    matvec_over(formats, threads, rows, cols, 128 << 20)
}

/// Batch-1 matvec with the weights kept hot in cache (one copy): the kernels' compute ceiling,
/// which must be above the memory bandwidth for `matvec` to be memory bound.
pub fn matvec_in_cache(formats: &[DType], rows: usize, cols: usize) -> Vec<BenchRow> {
    matvec_over(formats, &[1], rows, cols, 0)
}

/// Rounds over every (format, threads) pair. This VM's speed drifts by up to 2x from minute to
/// minute (a vCPU can be away for a while), so each figure is the best of several rounds spread
/// over the run, and `of_bandwidth` divides by the best read bandwidth measured in any round.
const ROUNDS: usize = 4;

fn matvec_over(formats: &[DType], threads: &[usize], rows: usize, cols: usize, min_bytes: usize) -> Vec<BenchRow> {
    let mut rng = Rng::new(1);
    let values = rng.normals(rows * cols);
    let x = rng.normals(cols);
    let pools: Vec<ThreadPool> = threads.iter().map(|&t| ThreadPool::new(t)).collect();
    let weights: Vec<Vec<Weight>> = formats
        .iter()
        .filter_map(|&dtype| Weight::quantize(dtype, &values, rows, cols).ok())
        .map(|w| {
            let copies = min_bytes.div_ceil(w.held_bytes()).max(1);
            (0..copies)
                .map(|_| {
                    let bytes = crate::Bytes::from_vec(w.bytes().to_vec());
                    Weight::new(w.dtype(), rows, cols, bytes).unwrap().for_matmul()
                })
                .collect()
        })
        .collect();
    let mut best = vec![f64::MAX; weights.len() * pools.len()];
    let mut bandwidth = vec![0f64; pools.len()];
    let mut y = vec![0f32; rows];
    for _ in 0..ROUNDS {
        for (p, pool) in pools.iter().enumerate() {
            bandwidth[p] = bandwidth[p].max(read_bandwidth(pool));
        }
        for (f, ws) in weights.iter().enumerate() {
            for (p, pool) in pools.iter().enumerate() {
                let mut k = 0;
                let s = time(Duration::from_millis(100), || {
                    matmul(pool, &x, &ws[k % ws.len()], &mut y);
                    k += 1;
                });
                best[f * pools.len() + p] = best[f * pools.len() + p].min(s);
            }
        }
    }
    let mut out_rows = Vec::new();
    for (f, ws) in weights.iter().enumerate() {
        for (p, pool) in pools.iter().enumerate() {
            let s = best[f * pools.len() + p];
            let gbps = (ws[0].rows() * ws[0].row_bytes()) as f64 / s / 1e9;
            out_rows.push(BenchRow {
                dtype: ws[0].dtype(),
                threads: pool.threads(),
                batch: 1,
                rows,
                cols,
                seconds: s,
                gbps,
                gflops: 2.0 * (rows * cols) as f64 / s / 1e9,
                of_bandwidth: gbps / bandwidth[p],
            });
        }
    }
    out_rows
}

/// Batched matmul `[batch, cols] x [rows, cols]ᵀ` per format.
pub fn batched(formats: &[DType], threads: &[usize], batch: usize, rows: usize, cols: usize) -> Vec<BenchRow> {
    let mut rng = Rng::new(2);
    let values = rng.normals(rows * cols);
    let x = rng.normals(batch * cols);
    let mut y = vec![0f32; batch * rows];
    let mut out_rows = Vec::new();
    for &dtype in formats {
        let Ok(w) = Weight::quantize(dtype, &values, rows, cols) else {
            continue;
        };
        let w = w.for_matmul();
        for &t in threads {
            let pool = ThreadPool::new(t);
            let s = time(Duration::from_millis(300), || matmul(&pool, &x, &w, &mut y));
            let gflops = 2.0 * (batch * rows * cols) as f64 / s / 1e9;
            let gbps = (w.rows() * w.row_bytes()) as f64 / s / 1e9;
            out_rows.push(BenchRow {
                dtype,
                threads: t,
                batch,
                rows,
                cols,
                seconds: s,
                gbps,
                gflops,
                of_bandwidth: 0.0,
            });
        }
    }
    out_rows
}

/// A plain-text table of results.
pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<6} {:>3} {:>5} {:>13} {:>10} {:>8} {:>8} {:>6}\n",
        "format", "thr", "batch", "shape", "ms/call", "GB/s", "GFLOP/s", "%bw"
    );
    for r in rows {
        let bw = if r.of_bandwidth > 0.0 {
            format!("{:.0}%", 100.0 * r.of_bandwidth)
        } else {
            "-".into()
        };
        s += &format!(
            "{:<6} {:>3} {:>5} {:>13} {:>10.3} {:>8.1} {:>8.1} {:>6}\n",
            r.dtype.name(),
            r.threads,
            r.batch,
            format!("{}x{}", r.rows, r.cols),
            r.seconds * 1e3,
            r.gbps,
            r.gflops,
            bw
        );
    }
    s
}
