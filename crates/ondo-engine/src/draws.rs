//! A step's samples, drawn in parallel. Every sequence that samples this step owns its sampler,
//! rng and logits copy, so its draw depends on nothing else: the draws run on the model's thread
//! pool (a sampling chain over a 152k vocabulary costs about what a small matmul does, and the
//! engine thread would otherwise run them alone while the workers spin). Stop rules, text and
//! events stay serial in `core`, in plan order, so outputs are the same as drawing one by one.

use crate::params::SamplingParams;
use crate::seq::Decoding;
use ondo_kernels::ThreadPool;

/// One draw: the sequence, its request's parameters and its logits row.
pub(crate) struct Unit {
    pub seq: *mut Decoding,
    pub params: *const SamplingParams,
    pub row: usize,
    /// The drawn token, set by `run`.
    pub token: u32,
}

// SAFETY: a Unit's pointers are only dereferenced inside `run`, where each sequence is one
// unit's alone and the parameters are only read.
unsafe impl Send for Unit {}
unsafe impl Sync for Unit {}

/// Draw every unit's token from its row of `logits` (`[rows, vocab]`).
///
/// # Safety
/// Every `seq` points at a live `Decoding` that no other unit and nothing else touches during
/// the call, and every `params` at live parameters that nothing writes meanwhile.
pub(crate) unsafe fn run(pool: &ThreadPool, units: &mut [Unit], logits: &[f32], vocab: usize) {
    let one = |u: &mut Unit| {
        let row = &logits[u.row * vocab..][..vocab];
        // SAFETY: the caller's promise.
        u.token = unsafe { (*u.seq).draw(row, &*u.params) };
    };
    if units.len() < 2 || pool.threads() < 2 {
        return units.iter_mut().for_each(one);
    }
    let tasks = pool.threads().min(units.len());
    let base = SendPtr(units.as_mut_ptr());
    let n = units.len();
    pool.run(tasks, |task| {
        for i in (task..n).step_by(tasks) {
            // SAFETY: task `task` alone takes the units i ≡ task (mod tasks).
            one(unsafe { &mut *base.at(i) });
        }
    });
}

#[derive(Clone, Copy)]
struct SendPtr(*mut Unit);
impl SendPtr {
    /// (A method, so closures capture the whole `SendPtr`, not its raw pointer field.)
    fn at(self, i: usize) -> *mut Unit {
        self.0.wrapping_add(i)
    }
}
// SAFETY: see `run`: the tasks take disjoint units.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
