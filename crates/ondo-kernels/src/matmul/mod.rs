//! `y = x · Wᵀ` over every weight format.
//!
//! Plan per call: pick the instruction set (once per process: AVX-512 VNNI, AVX-VNNI, AVX2, or
//! scalar when `ONDO_FORCE_SCALAR=1` or nothing better exists) and read its kernel table
//! (`table::Kernels`: the only place kernels are chosen), prepare the activations the weight format
//! wants (f32, or 8-bit blocks for integer dot products: `act`), then split the weight rows over
//! the pool. Each task walks its rows in blocks of `ROW_BLOCK` against blocks of `TOKEN_BLOCK`
//! tokens, and every kernel call takes one row and up to `MAX_TOKENS` tokens, so a weight row
//! is unpacked once per token group. Float weights from 4 tokens go through column panels of
//! rows made f32 (`blocked`); Q8_1 and Q8_K (no integer kernel) are dequantized a row block at a
//! time into the f32 row kernels. `matmul_multi` runs several weights over one input in one pass.
//! Scratch belongs to the calling thread and only grows: no allocation in steady state.
//!
//! Architecture layout: `x86` holds the x86-64 kernels and their three tables; an `aarch64` NEON
//! module would plug in beside it with its own table and one arm of `Isa::kernels`; `scalar` is
//! the reference and its table the fallback.

mod act;
mod blocked;
pub(crate) mod interleave;
mod packed;
mod scalar;
mod table;
#[cfg(test)]
mod tests;
pub(crate) mod untile;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::{DType, ThreadPool, Weight};
use act::{ActKind, ActRow, Acts};
use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;
use table::{Dot, FloatAcc, Kernels};

/// Tokens one kernel call takes.
const MAX_TOKENS: usize = 4;

/// The instruction set a matmul runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust: the reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// The AVX2 kernels with AVX-VNNI's VEX `vpdpbusd` for the integer products (Intel Alder
    /// Lake and later, AMD Zen 4 and later).
    AvxVnni,
    /// x86-64 AVX2 kernels plus AVX-512 F/BW/VL/VNNI instructions.
    Avx512Vnni,
}

impl Isa {
    /// The best this CPU supports, `Scalar` when `ONDO_FORCE_SCALAR=1`, or the one named by
    /// `ONDO_ISA` (`scalar`, `avx2`, `avxvnni`, `avx512vnni`) when this CPU has it (to compare them).
    /// Decided once.
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            if std::env::var("ONDO_FORCE_SCALAR").is_ok_and(|v| v == "1") {
                return Isa::Scalar;
            }
            let named = std::env::var("ONDO_ISA").ok();
            let supported = Isa::supported();
            match supported.iter().find(|i| Some(i.name()) == named.as_deref()) {
                Some(isa) => *isa,
                None => supported.last().copied().unwrap_or(Isa::Scalar),
            }
        })
    }

    /// The name `ONDO_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// Every instruction set this CPU can run, best last (tests walk them).
    pub fn supported() -> &'static [Isa] {
        static SUPPORTED: OnceLock<Vec<Isa>> = OnceLock::new();
        SUPPORTED.get_or_init(|| {
            let mut out = vec![Isa::Scalar];
            #[cfg(target_arch = "x86_64")]
            {
                let (avx2, avx_vnni, vnni) = x86::detect();
                out.extend(avx2.then_some(Isa::Avx2));
                out.extend(avx_vnni.then_some(Isa::AvxVnni));
                out.extend(vnni.then_some(Isa::Avx512Vnni));
            }
            out
        })
    }
}

/// `out[t, r] = Σ_c x[t, c] · w[r, c]` for `x: [n, cols]`, `out: [n, rows]`, n = x.len() / cols.
pub fn matmul(pool: &ThreadPool, x: &[f32], w: &Weight, out: &mut [f32]) {
    matmul_with(Isa::detect(), pool, x, w, out)
}

/// `matmul` on a chosen instruction set (tests and benchmarks compare them). An `isa` this CPU
/// lacks falls back to `Scalar`.
pub fn matmul_with(isa: Isa, pool: &ThreadPool, x: &[f32], w: &Weight, out: &mut [f32]) {
    matmul_multi_with(isa, pool, x, &mut [(w, out)])
}

/// Several weights with the same input size against the same `x` in one pass:
/// `out_i = x · W_iᵀ` for each `(W_i, out_i)` (q/k/v, gate/up). The activations are quantized
/// once per format family and all rows share one fork/join. Up to `MAX_MULTI` weights at once
/// (more are done in turns).
pub fn matmul_multi(pool: &ThreadPool, x: &[f32], jobs: &mut [(&Weight, &mut [f32])]) {
    matmul_multi_with(Isa::detect(), pool, x, jobs)
}

/// Whether `isa`'s kernels read `dtype` interleaved (so weights are repacked at load).
pub(crate) fn reads_interleaved(isa: Isa, dtype: DType) -> bool {
    let k = isa.kernels();
    k.group.is_some() && (k.interleaves)(dtype)
}

/// Weights per `matmul_multi` pass.
pub const MAX_MULTI: usize = 8;

/// `matmul_multi` on a chosen instruction set.
pub fn matmul_multi_with(isa: Isa, pool: &ThreadPool, x: &[f32], jobs: &mut [(&Weight, &mut [f32])]) {
    let isa = if Isa::supported().contains(&isa) {
        isa
    } else {
        Isa::Scalar
    };
    for chunk in jobs.chunks_mut(MAX_MULTI) {
        if chunk.iter().any(|(w, _)| needs_plain(w, isa)) {
            // weights interleaved for another instruction set than `isa` (tests compare them):
            // their plain rows, rebuilt for this call
            let plain: Vec<Option<Weight>> = chunk
                .iter()
                .map(|(w, _)| needs_plain(w, isa).then(|| w.untiled()))
                .collect();
            let mut jobs: Vec<(&Weight, &mut [f32])> = chunk
                .iter_mut()
                .zip(&plain)
                .map(|((w, out), p)| (p.as_ref().unwrap_or(*w), &mut **out))
                .collect();
            matmul_multi_with(isa, pool, x, &mut jobs);
            continue;
        }
        let Some(cols) = chunk.first().map(|(w, _)| w.cols()) else {
            return;
        };
        let n = x.len().checked_div(cols).unwrap_or(0);
        assert_eq!(x.len(), n * cols, "matmul: x is not [n, {cols}]");
        let mut list: [Option<Job>; MAX_MULTI] = Default::default();
        for (slot, (w, out)) in list.iter_mut().zip(chunk.iter_mut()) {
            assert_eq!(w.cols(), cols, "matmul_multi: weights differ in input size");
            assert_eq!(out.len(), n * w.rows(), "matmul: out is not [{n}, {}]", w.rows());
            *slot = Some(Job {
                w,
                plan: Plan::new(w, isa, n),
                out: OutPtr(out.as_mut_ptr()),
            });
        }
        if n == 0 {
            continue;
        }
        let jobs = &list[..chunk.len()];
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => run(pool, jobs, x, &mut s),
            Err(_) => run(pool, jobs, x, &mut Scratch::default()), // nested call: rare
        });
    }
}

/// Whether `w` holds rows in tiles that `isa`'s kernels do not read.
fn needs_plain(w: &Weight, isa: Isa) -> bool {
    w.is_interleaved() && !reads_interleaved(isa, w.dtype())
}

/// One weight of a call: its plan and where its output goes (`[n, rows]`).
struct Job<'a> {
    w: &'a Weight,
    plan: Plan,
    out: OutPtr,
}

/// Per calling thread: prepared activations (one set per form), and f32 row buffers per task
/// for formats that go through f32 rows. Workers keep no state of their own.
#[derive(Default)]
struct Scratch {
    q8: Acts,
    q8k: Acts,
    f32: Acts,
    rows: Vec<f32>,
    /// One packed row block per task (K-quants at batch sizes from `PACK_MIN_TOKENS`).
    packs: Vec<packed::Packed>,
    /// `blocked::ACCS` running sums per task (float weights against many tokens).
    accs: Vec<FloatAcc>,
}

impl Scratch {
    fn acts(&self, kind: ActKind) -> &Acts {
        match kind {
            ActKind::Q8 => &self.q8,
            ActKind::Q8K => &self.q8k,
            ActKind::F32 => &self.f32,
        }
    }
    fn acts_mut(&mut self, kind: ActKind) -> &mut Acts {
        match kind {
            ActKind::Q8 => &mut self.q8,
            ActKind::Q8K => &mut self.q8k,
            ActKind::F32 => &mut self.f32,
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// How one call computes: the ISA's kernels, activation form, kernel, and whether rows go
/// through f32 first.
struct Plan {
    k: &'static Kernels,
    dtype: DType,
    act: ActKind,
    dot: Dot,
    /// Dequantize each weight row to f32 and use `dot` (an f32 kernel) on that.
    via_f32: bool,
    /// Float formats from 4 tokens: panels of rows × tokens (`Kernels::float`, `blocked`).
    blocked: bool,
    /// Unpack eight rows at a time and run every token against them (`packed`).
    packed: bool,
    /// Read the weight's interleaved rows (`interleave`), sixteen rows per kernel call.
    interleaved: bool,
}

/// Batch size from which K-quant weights go through `packed` row blocks (where the ISA has a
/// packed kernel).
const PACK_MIN_TOKENS: usize = 8;

impl Plan {
    /// Rows per unit of the split into tasks: a row group when interleaved.
    fn row_block(&self) -> usize {
        if self.interleaved {
            interleave::ROWS
        } else {
            ROW_BLOCK
        }
    }

    fn new(w: &Weight, isa: Isa, n: usize) -> Plan {
        let (k, dtype) = (isa.kernels(), w.dtype());
        debug_assert_eq!(k.isa, isa, "the table of another ISA");
        let interleaved = reads_interleaved(isa, dtype) && w.tiles().is_some();
        let int_act = match dtype {
            DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => Some(ActKind::Q8),
            DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K => Some(ActKind::Q8K),
            _ => None,
        };
        let packed = k.packed.is_some() && packed::packs(dtype) && n >= PACK_MIN_TOKENS && !interleaved;
        let plan = |act, dot, via_f32| Plan {
            k,
            dtype,
            act,
            dot,
            via_f32,
            packed,
            interleaved,
            blocked: k.float.is_some() && via_f32 && dtype.block_size() == 1,
        };
        match (int_act, (k.dot)(dtype)) {
            (Some(act), Some(dot)) => plan(act, dot, false),
            (_, dot) => {
                // Float formats read directly below 4 tokens; everything else (and float formats
                // from 4 tokens, where laying rows out as panels once pays off) goes through f32 rows.
                let direct = dtype.block_size() == 1 && n < 4;
                match (direct, dot) {
                    (true, Some(dot)) => plan(ActKind::F32, dot, false),
                    _ => plan(ActKind::F32, (k.dot)(DType::F32).unwrap_or(scalar::DEQUANT), true),
                }
            }
        }
    }
}

/// A raw pointer that may cross threads; each task writes a disjoint part of what it points to.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
unsafe impl Send for OutPtr {}
impl OutPtr {
    /// The pointer (a method, so closures capture the whole Sync wrapper, not the raw field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}
unsafe impl Sync for OutPtr {}

/// Rows per block and tokens per block of the cache tiling.
const ROW_BLOCK: usize = 8;
const TOKEN_BLOCK: usize = 16;

fn run(pool: &ThreadPool, jobs: &[Option<Job>], x: &[f32], scratch: &mut Scratch) {
    let jobs = || jobs.iter().flatten();
    let cols = jobs().next().map_or(1, |j| j.w.cols());
    let n = x.len() / cols;
    for kind in [ActKind::Q8, ActKind::Q8K, ActKind::F32] {
        if let Some(j) = jobs().find(|j| j.plan.act == kind) {
            scratch.acts_mut(kind).prepare(kind, x, cols, j.plan.k.quantize);
        }
    }
    // All weights' rows, as row blocks laid end to end, split into tasks of whole blocks,
    // several per thread, claimed in order. Task sizes shrink towards the end (`task_start`), so
    // the thread that finishes last waits on a small task, not an average one.
    // (Block offsets per job are recomputed in each task.)
    let total: usize = jobs().map(|j| j.w.rows().div_ceil(j.plan.row_block())).sum();
    let tasks = if pool.threads() == 1 {
        1
    } else {
        total.min(pool.threads() * 8)
    };
    let per_buf = ROW_BLOCK * cols;
    let row_bufs = if jobs().any(|j| j.plan.via_f32) {
        if scratch.rows.len() < tasks * per_buf {
            scratch.rows.resize(tasks * per_buf, 0.0);
        }
        OutPtr(scratch.rows.as_mut_ptr())
    } else {
        OutPtr(std::ptr::null_mut())
    };
    if jobs().any(|j| j.plan.packed) && scratch.packs.len() < tasks {
        scratch.packs.resize_with(tasks, Default::default);
    }
    let packs = PackPtr(scratch.packs.as_mut_ptr());
    if jobs().any(|j| j.plan.blocked) && scratch.accs.len() < tasks * blocked::ACCS {
        scratch.accs.resize(tasks * blocked::ACCS, FloatAcc::ZERO);
    }
    let accs = AccPtr(scratch.accs.as_mut_ptr());
    let scratch = &*scratch;
    pool.run(tasks, |task| {
        let (b0, b1) = (task_start(task, tasks, total), task_start(task + 1, tasks, total));
        let mut first = 0; // first block of the current job
        for job in jobs() {
            let unit = job.plan.row_block();
            let blocks = job.w.rows().div_ceil(unit);
            let (lo, hi) = (b0.max(first), b1.min(first + blocks));
            if lo < hi {
                let rows = job.w.rows();
                let rs = (lo - first) * unit..((hi - first) * unit).min(rows);
                let out = job.out;
                let write = |t: usize, r: usize, v: f32| {
                    debug_assert!(t < n && r < rows);
                    // SAFETY: (t, r) is inside this job's out ([n, rows]) and row r belongs to
                    // this task only.
                    unsafe { *out.ptr().add(t * rows + r) = v };
                };
                // SAFETY: task `task` alone uses this part of the row buffers.
                let buf = || unsafe { std::slice::from_raw_parts_mut(row_bufs.ptr().add(task * per_buf), per_buf) };
                let (plan, acts) = (&job.plan, scratch.acts(job.plan.act));
                if plan.interleaved {
                    rows_interleaved(plan, job.w, x, acts, rs, out);
                } else if plan.packed {
                    // SAFETY: task `task` alone uses pack `task` (there are `tasks` of them).
                    let pack = unsafe { packs.get(task) };
                    rows_packed(plan, job.w, x, acts, rs, pack, out);
                } else if plan.blocked {
                    // SAFETY: there are `ACCS` accumulators per task, and task `task` alone uses its own.
                    let accs = unsafe { accs.get(task) };
                    blocked::rows(plan, job.w, x, rs, buf(), accs, &write);
                } else if plan.via_f32 {
                    rows_f32(plan, job.w, x, acts, rs, buf(), &write);
                } else {
                    rows_direct(plan, job.w, x, acts, rs, out);
                }
            }
            first += blocks;
        }
    });
}

/// The first of `total` blocks that task `task` of `tasks` takes: `total · (1 − (1 − k/n)²)`,
/// so sizes fall linearly from twice the average to nothing (tasks may be empty).
fn task_start(task: usize, tasks: usize, total: usize) -> usize {
    if task >= tasks {
        return total;
    }
    let left = (tasks - task) as u64;
    let n = tasks as u64;
    total - (total as u64 * left * left / (n * n)) as usize
}

/// Rows `rs` against every token, `MAX_TOKENS` tokens per kernel call, written straight into
/// `out: [n, rows]`. With one token group the kernel takes every row of `rs` in one call; with
/// more, row blocks × token blocks keep a block's weights in cache while its tokens go by.
fn rows_direct(plan: &Plan, w: &Weight, x: &[f32], acts: &Acts, rs: Range<usize>, out: OutPtr) {
    let (rows, n) = (w.rows(), x.len() / w.cols());
    // the rows held plain start at `first` (past the tiles of an interleaved weight)
    let ((first, bytes), row_bytes) = (w.plain_rows(), w.row_bytes());
    debug_assert!(rs.start >= first);
    let block = if n <= MAX_TOKENS { rs.len() } else { ROW_BLOCK };
    for rb in rs.clone().step_by(block.max(1)) {
        let rb_end = (rb + block).min(rs.end);
        let wrows = &bytes[(rb - first) * row_bytes..(rb_end - first) * row_bytes];
        // the next row block, asked for a part per kernel call (the calls after the first find
        // this block in cache, so its first call would wait on memory without this)
        let next = &bytes[(rb_end - first) * row_bytes..((rb_end + block).min(rs.end) - first) * row_bytes];
        let calls = n.div_ceil(MAX_TOKENS);
        let mut call = 0;
        for tb in (0..n).step_by(TOKEN_BLOCK) {
            for t0 in (tb..(tb + TOKEN_BLOCK).min(n)).step_by(MAX_TOKENS) {
                if n > MAX_TOKENS {
                    prefetch(&next[next.len() * call / calls..next.len() * (call + 1) / calls]);
                    call += 1;
                }
                let k = (n - t0).min(MAX_TOKENS).min(tb + TOKEN_BLOCK - t0);
                let act_rows: [ActRow; MAX_TOKENS] = std::array::from_fn(|j| acts.row(x, t0 + j.min(k - 1)));
                debug_assert!(t0 + k <= n && rb_end <= rows);
                // SAFETY: the plan picked `dot` for this CPU and this format; rows rb..rb_end of
                // tokens t0..t0+k are inside out ([n, rows]) and belong to this task.
                unsafe {
                    let o = out.ptr().add(t0 * rows + rb);
                    (plan.dot)(plan.dtype, wrows, row_bytes, &act_rows[..k], o, rows)
                };
            }
        }
    }
}

/// Asks for the cache lines of `bytes` ahead of their use.
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..bytes.len()).step_by(64) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86-64, and a prefetch never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(off) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Rows `rs` (starting on a row group) from the weight's interleaved tiles, sixteen rows ×
/// up to `MAX_TOKENS` tokens per kernel call; rows past the interleaved ones go `rows_direct`.
fn rows_interleaved(plan: &Plan, w: &Weight, x: &[f32], acts: &Acts, rs: Range<usize>, out: OutPtr) {
    use interleave::ROWS;
    let (rows, n) = (w.rows(), x.len() / w.cols());
    let (tiles, tile_rows) = w.tiles().expect("an interleaved plan has tiles");
    let group_dot = plan.k.group.expect("an interleaved plan has a group kernel");
    let group_bytes = tiles.len() / (tile_rows / ROWS);
    let split = rs.end.min(tile_rows).max(rs.start);
    debug_assert_eq!(rs.start % ROWS, 0);
    // tokens in blocks of TB, each block's activation rows made once (not once per group and
    // call: that was 12% of a 39-sequence Qwen2.5-1.5B step); a decode step is one block
    const TB: usize = 64;
    for tb in (0..n).step_by(TB) {
        let nb = (n - tb).min(TB);
        let mut buf = [const { std::mem::MaybeUninit::<ActRow>::uninit() }; TB];
        for (j, b) in buf[..nb].iter_mut().enumerate() {
            b.write(acts.row(x, tb + j));
        }
        // SAFETY: the first nb are written just above (ActRow is Copy: nothing to drop).
        let act_rows: &[ActRow] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), nb) };
        for g in (rs.start..split).step_by(ROWS) {
            let group = &tiles[g / ROWS * group_bytes..][..group_bytes];
            // the token calls share out the next group's tiles to prefetch (read from memory once
            // per group; every call after the first finds this group in cache)
            let next = if g + ROWS < split {
                group.as_ptr().wrapping_add(group_bytes)
            } else {
                std::ptr::null()
            };
            let calls = nb.div_ceil(MAX_TOKENS);
            for t0 in (0..nb).step_by(MAX_TOKENS) {
                let k = (nb - t0).min(MAX_TOKENS);
                let ahead = table::Ahead {
                    ptr: next,
                    part: t0 / MAX_TOKENS,
                    parts: calls,
                };
                let a = &act_rows[t0..t0 + k];
                // SAFETY: the table is the ISA's this CPU runs; rows g..g+16 of tokens
                // tb+t0..tb+t0+k are inside out ([n, rows]) and belong to this task.
                unsafe { group_dot(plan.dtype, group, a, out.ptr().add((tb + t0) * rows + g), rows, ahead) };
            }
        }
    }
    if split < rs.end {
        rows_direct(plan, w, x, acts, split..rs.end, out);
    }
}

/// The tasks' float accumulators (`blocked::ACCS` each), shared with the pool.
struct AccPtr(*mut FloatAcc);
unsafe impl Send for AccPtr {}
unsafe impl Sync for AccPtr {}
impl AccPtr {
    /// # Safety
    /// There are `blocked::ACCS` accumulators for `task`, and only that task uses them.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, task: usize) -> &mut [FloatAcc] {
        std::slice::from_raw_parts_mut(self.0.add(task * blocked::ACCS), blocked::ACCS)
    }
}

/// The tasks' packed row blocks, shared with the pool (each task takes its own).
#[derive(Clone, Copy)]
struct PackPtr(*mut packed::Packed);
unsafe impl Send for PackPtr {}
unsafe impl Sync for PackPtr {}
impl PackPtr {
    /// Task `task`'s pack (a method, so closures capture the Sync wrapper, not the raw field).
    ///
    /// # Safety
    /// `task` is below the number of packs, and only that task uses it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, task: usize) -> &mut packed::Packed {
        &mut *self.0.add(task)
    }
}

/// Rows `rs` eight at a time: unpack them into `pack`, then run every token against the pack,
/// `packed::TOKENS` tokens per kernel call.
fn rows_packed(
    plan: &Plan,
    w: &Weight,
    x: &[f32],
    acts: &Acts,
    rs: Range<usize>,
    pack: &mut packed::Packed,
    out: OutPtr,
) {
    use packed::{LANES, TOKENS};
    let packed_dot = plan.k.packed.expect("a packed plan has a packed kernel");
    let (rows, n) = (w.rows(), x.len() / w.cols());
    let sbs = packed::sub_block(w.dtype());
    let mut tile = [[0f32; LANES]; TOKENS];
    // the activation rows of the first `HELD` chunks of `TOKENS` tokens (a step of the default
    // token budget), made once for every row block (a chunk's slots past `n` repeat its last
    // token; their results are not written)
    const HELD: usize = 256 / TOKENS;
    let chunk = |t0: usize| -> [ActRow; TOKENS] {
        let k = (n - t0).min(TOKENS);
        std::array::from_fn(|j| acts.row(x, t0 + j.min(k - 1)))
    };
    let held_n = n.div_ceil(TOKENS).min(HELD);
    let mut buf = [const { std::mem::MaybeUninit::<[ActRow; TOKENS]>::uninit() }; HELD];
    for (c, b) in buf[..held_n].iter_mut().enumerate() {
        b.write(chunk(c * TOKENS));
    }
    // SAFETY: the first held_n are written just above (ActRow is Copy: nothing to drop).
    let held: &[[ActRow; TOKENS]] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), held_n) };
    for rb in rs.clone().step_by(LANES) {
        let rb_end = (rb + LANES).min(rs.end);
        let rows_of = |rr: Range<usize>| {
            let mut list: [&[u8]; LANES] = [&[]; LANES];
            for (slot, r) in list.iter_mut().zip(rr.clone()) {
                *slot = w.plain_row(r);
            }
            (list, rr.len())
        };
        let (list, k) = rows_of(rb..rb_end);
        let (ahead, ka) = rows_of(rb_end..(rb_end + LANES).min(rs.end));
        pack.pack(w.dtype(), &list[..k], &ahead[..ka]);
        for t0 in (0..n).step_by(TOKENS) {
            let k = (n - t0).min(TOKENS);
            let made;
            let act_rows = match held.get(t0 / TOKENS) {
                Some(rows) => rows,
                None => {
                    made = chunk(t0);
                    &made
                }
            };
            // SAFETY: the table is the ISA's this CPU runs.
            unsafe { packed_dot(pack, sbs, &act_rows[..k], &mut tile[..k]) };
            for (t, lanes) in tile[..k].iter().enumerate() {
                for (r, v) in (rb..rb_end).zip(lanes) {
                    // SAFETY: (t0 + t, r) is inside out ([n, rows]); row r belongs to this task.
                    unsafe { *out.ptr().add((t0 + t) * rows + r) = *v };
                }
            }
        }
    }
}

/// Rows `rs` dequantized eight at a time into `buf` against every token, one row against up
/// to four tokens per call (tables without a blocked float kernel: the scalar one).
fn rows_f32(
    plan: &Plan,
    w: &Weight,
    x: &[f32],
    acts: &Acts,
    rs: Range<usize>,
    buf: &mut [f32],
    write: &dyn Fn(usize, usize, f32),
) {
    let (n, cols) = (x.len() / w.cols(), w.cols());
    for rb in rs.clone().step_by(ROW_BLOCK) {
        let rb_end = (rb + ROW_BLOCK).min(rs.end);
        for (r, dst) in (rb..rb_end).zip(buf.chunks_exact_mut(cols)) {
            w.dequantize_row(r, dst);
        }
        for tb in (0..n).step_by(TOKEN_BLOCK) {
            let tt = tb..(tb + TOKEN_BLOCK).min(n);
            for (r, row) in (rb..rb_end).zip(buf.chunks_exact(cols)) {
                // SAFETY: reading initialized f32s as their bytes.
                let row = unsafe { std::slice::from_raw_parts(row.as_ptr() as *const u8, 4 * cols) };
                dot_tokens(plan.dot, DType::F32, row, x, acts, tt.clone(), &|t, v| write(t, r, v));
            }
        }
    }
}

/// One weight row against tokens `ts`, up to `MAX_TOKENS` per kernel call.
fn dot_tokens(
    dot: Dot,
    dtype: DType,
    row: &[u8],
    x: &[f32],
    acts: &Acts,
    ts: Range<usize>,
    write: &dyn Fn(usize, f32),
) {
    let mut out = [0f32; MAX_TOKENS];
    for t0 in ts.clone().step_by(MAX_TOKENS) {
        let k = (ts.end - t0).min(MAX_TOKENS);
        let rows: [ActRow; MAX_TOKENS] = std::array::from_fn(|j| acts.row(x, t0 + j.min(k - 1)));
        // SAFETY: the plan picked `dot` for this CPU and this format.
        unsafe { dot(dtype, row, row.len(), &rows[..k], out.as_mut_ptr(), 1) };
        for (j, v) in out[..k].iter().enumerate() {
            write(t0 + j, *v);
        }
    }
}
