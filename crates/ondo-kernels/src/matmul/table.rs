//! One table of kernels per instruction set: everything a matmul plan can pick.
//!
//! `Plan::new` (and the load-time repack in `Weight::for_matmul`) read only the table of the
//! chosen `Isa`; nothing else in `matmul` matches on the instruction set. A table is built where
//! its kernels live (`scalar::KERNELS`, the three `x86::tables`), so adding an instruction set
//! is its module plus one arm of `Isa::kernels`, and adding a format is its kernels plus the
//! entries of the tables that have them. A missing entry (`None`) makes the plan fall back:
//! no integer kernel → dequantized f32 rows, no packed or interleaved kernel → the row kernels,
//! no blocked float kernel → one row against up to four tokens.

use super::act::{ActRow, Quantizers};
use super::packed::{Packed, LANES};
use crate::{DType, Isa};

/// A kernel over consecutive weight rows `w` (raw bytes of `dtype`, `row_bytes` per row) and
/// 1..=`MAX_TOKENS` activation rows: `*out.add(t * stride + r) = Σ row_r · a[t]`. Looping over
/// rows inside the kernel keeps its constants in registers and costs no call per row, which
/// matters for narrow matrices (a 1536-wide Q4_K row is only 6 blocks).
pub(crate) type Dot = unsafe fn(DType, &[u8], usize, &[ActRow], *mut f32, usize);

/// `out[t][lane] = row_lane · a[t]` for the eight rows of a `Packed` block, its sub-block size
/// and 1..=`packed::TOKENS` tokens.
pub(crate) type PackedDot = unsafe fn(&Packed, usize, &[ActRow], &mut [[f32; LANES]]);

/// `*out.add(t · stride + r) = row_r · a[t]` for the sixteen rows of one interleaved group
/// (`interleave`), 1..=`MAX_TOKENS` tokens; `ahead` is its share of the next group, to prefetch.
pub(crate) type GroupDot = unsafe fn(DType, &[u8], &[ActRow], *mut f32, usize, Ahead);

/// What one group-kernel call prefetches of the next row group (at `ptr`; null: nothing): slice
/// `part` of `parts` of each of its tiles. The token calls of a group share the next group
/// between them, so its bytes are asked for over the whole group's work: one call asking for
/// all of it ran Q4_K at 16 tokens 15% below its rate at 64 (the loads queue behind each other).
#[derive(Clone, Copy)]
pub(crate) struct Ahead {
    pub ptr: *const u8,
    pub part: usize,
    pub parts: usize,
}

/// `Ahead`'s share of every `len`-byte tile of the next group (`Ahead::tiles`), worked out once
/// per call: a division per tile cost single-stream decode 1-5%.
#[derive(Clone, Copy)]
pub(crate) struct TileAhead {
    pub ptr: *const u8,
    pub from: usize,
    pub len: usize,
    /// Into L2 only: when several calls share a group (5+ tokens), the group in L1 and the
    /// activations fill it, and next-group lines asked into L1 measured slower (AVX-512, Qwen's
    /// 151936x1536 head at 16 tokens: Q4_K 572-595 -> 615-617 GFLOP/s, Q6_K 408-428 -> 447-451).
    pub to_l2: bool,
}

impl Ahead {
    pub const NONE: Ahead = Ahead {
        ptr: std::ptr::null(),
        part: 0,
        parts: 1,
    };

    /// The whole next group asked for by this one call.
    pub fn whole(self) -> Ahead {
        Ahead {
            part: 0,
            parts: 1,
            ..self
        }
    }

    #[inline(always)]
    pub fn tiles(self, len: usize) -> TileAhead {
        if self.parts == 1 {
            // one call per group (a decode step of 1-4 tokens): no division per call either
            return TileAhead {
                ptr: self.ptr,
                from: 0,
                len,
                to_l2: false,
            };
        }
        let from = len * self.part / self.parts;
        let to = len * (self.part + 1) / self.parts;
        TileAhead {
            ptr: self.ptr,
            from,
            len: to - from,
            to_l2: true,
        }
    }
}

/// Rows and tokens of one blocked float call.
pub(crate) const FLOAT_ROWS: usize = 8;
pub(crate) const FLOAT_TOKENS: usize = 16;
/// The running sums of one blocked float call: an 8-lane accumulator per (row, token), lane `j`
/// summing the columns `≡ j (mod 8)` (the order of every float kernel: see `blocked`).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct FloatAcc(pub [[[f32; 8]; FLOAT_TOKENS]; FLOAT_ROWS]);

impl FloatAcc {
    pub const ZERO: FloatAcc = FloatAcc([[[0.0; 8]; FLOAT_TOKENS]; FLOAT_ROWS]);
}
/// `acc[r][t] += row r · xs[t]` lane by lane (fused multiply-adds, columns in increasing order)
/// for the first `rows ≤ FLOAT_ROWS` rows of a panel `w` laid out `[steps][FLOAT_ROWS][8]` (eight
/// columns of each row per step; `float_panel`) and up to `FLOAT_TOKENS` tokens of `8 · steps`
/// values each. The first panel of a row block starts from zero (`acc` not read); on the last,
/// the kernel writes each sum's lanes added up (`x86::hsum`'s order) to `out[t][r]` and leaves
/// `acc` as it was.
pub(crate) type FloatBlock = unsafe fn(&[f32], usize, &[&[f32]], &mut FloatAcc, FloatEnds<'_>);
/// Which panel of a row block a `FloatBlock` call is (see there).
pub(crate) struct FloatEnds<'a> {
    pub first: bool,
    pub last: Option<&'a mut [[f32; FLOAT_ROWS]; FLOAT_TOKENS]>,
}
/// Up to `FLOAT_ROWS` rows' panel bytes (f32, f16 or bf16; a multiple of 8 values, one length)
/// as f32 into a panel: values `8s..8s + 8` of row r go to `dst[64s + 8r..]`.
pub(crate) type FloatPanel = unsafe fn(DType, &[&[u8]], &mut [f32]);

/// The kernels of one instruction set. Every function pointer is safe to call on a CPU for which
/// `Isa::supported()` lists `isa` (tables are only reached through `Isa::kernels`).
pub(crate) struct Kernels {
    pub isa: Isa,
    /// The row kernel of a format, if this ISA has one (float formats included: their kernels
    /// take f32 activations).
    pub dot: fn(DType) -> Option<Dot>,
    /// Activation quantizers (`None`: the portable ones in `act`).
    pub quantize: Quantizers,
    /// Eight K-quant rows unpacked into `Packed` against a batch (`packed::packs` formats).
    pub packed: Option<PackedDot>,
    /// Interleaved row groups, and the formats this ISA reads that way (weights are repacked at
    /// load for exactly those).
    pub group: Option<GroupDot>,
    pub interleaves: fn(DType) -> bool,
    /// Blocked float rows × tokens, and the converter that lays rows out as its panels.
    pub float: Option<(FloatBlock, FloatPanel)>,
}

impl Isa {
    /// This instruction set's table (the one place that maps an `Isa` to its kernels).
    pub(crate) fn kernels(self) -> &'static Kernels {
        match self {
            Isa::Scalar => &super::scalar::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &super::x86::AVX2_KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => &super::x86::AVX_VNNI_KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => &super::x86::AVX512_KERNELS,
            #[allow(unreachable_patterns)]
            _ => &super::scalar::KERNELS,
        }
    }
}

/// Never: for tables without interleaved reads.
pub(crate) fn none(_: DType) -> bool {
    false
}
