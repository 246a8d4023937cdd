//! Float formats (f32, f16, bf16) against f32 activations: the row kernel `dot_f` (1..=4 tokens),
//! the one-token kernel over four rows at a time `dot_f_rows4`, and their entry points. All of
//! them sum in one order (batch invariance: see `dot_f`).

// Index loops over token and lane counts read more plainly than iterator chains here.
#![allow(clippy::needless_range_loop)]

use super::*;

// ---- float formats against f32 activations ----

/// A float weight format: 8 values at index `i` as f32, or one.
trait Floats {
    /// Bytes per value.
    const BYTES: usize;
    unsafe fn load8(p: *const u8, i: usize) -> __m256;
    unsafe fn one(p: *const u8, i: usize) -> f32;
}

struct F32s;
struct F16s;
struct Bf16s;

impl Floats for F32s {
    const BYTES: usize = 4;
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        _mm256_loadu_ps((p as *const f32).add(i))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        (p as *const f32).add(i).read_unaligned()
    }
}

impl Floats for F16s {
    const BYTES: usize = 2;
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * i) as *const __m128i))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        f16(p.add(2 * i))
    }
}

impl Floats for Bf16s {
    const BYTES: usize = 2;
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(2 * i) as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        f32::from_bits(((p.add(2 * i) as *const u16).read_unaligned() as u32) << 16)
    }
}

/// `out[t] = Σ w·x_t`: 8 values per step into one accumulator per token, then its lane sum and
/// the scalar tail. Every float kernel (`dot_f_rows4`, `float_block`) sums in exactly this order,
/// so a token's result does not depend on how many tokens or rows share the call (the batched
/// engine's outputs equal the same prompts run alone, bit for bit).
#[inline(always)]
unsafe fn dot_f<F: Floats, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let p = w.as_ptr();
    let n = a[0].f.len();
    let xs: [*const f32; T] = std::array::from_fn(|t| a.get_unchecked(t).f.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    let mut i = 0;
    while i + 8 <= n {
        let wv = F::load8(p, i);
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xs[t].add(i)), acc[t]);
        }
        i += 8;
    }
    for t in 0..T {
        let mut s = hsum(acc[t]);
        for j in i..n {
            s += F::one(p, j) * *xs[t].add(j);
        }
        out[t] = s;
    }
}

/// Float rows against one token, four rows per pass: each activation load feeds four rows, so
/// `x` (f32, larger than L1 for wide rows) streams from L2 once per four rows, not once per row.
/// Returns how many rows it did (a multiple of four); `out[r]` for each.
#[inline(always)]
unsafe fn dot_f_rows4<F: Floats>(w: &[u8], row_bytes: usize, x: &[f32], out: *mut f32) -> usize {
    let (rows, n) = (w.len() / row_bytes, x.len());
    let mut r = 0;
    while r + 4 <= rows {
        let p: [*const u8; 4] = std::array::from_fn(|k| w.as_ptr().add((r + k) * row_bytes));
        // the next four rows, asked for a line per row as the same columns of these go by (one
        // burst of all of them at the start queued up: 49152x576 bf16 ran at 47 GB/s with it,
        // 59 with this; the 467 MB 151936x1536 LM head, from DRAM, 21 -> 29 GB/s on an Intel Xeon)
        let ahead = r + 8 <= rows;
        // the order of `dot_f`: one accumulator per row, 8 values per step
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // (64 bytes of each row per pass: one prefetch per row and line)
        let per_line = 64 / F::BYTES;
        while ahead && i + per_line <= n {
            for k in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(p[k].add(4 * row_bytes + i * F::BYTES) as *const i8);
            }
            for j in (i..i + per_line).step_by(8) {
                let xv = _mm256_loadu_ps(x.as_ptr().add(j));
                for k in 0..4 {
                    acc[k] = _mm256_fmadd_ps(F::load8(p[k], j), xv, acc[k]);
                }
            }
            i += per_line;
        }
        while i + 8 <= n {
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            for k in 0..4 {
                acc[k] = _mm256_fmadd_ps(F::load8(p[k], i), xv, acc[k]);
            }
            i += 8;
        }
        for k in 0..4 {
            let mut s = hsum(acc[k]);
            for j in i..n {
                s += F::one(p[k], j) * x[j];
            }
            *out.add(r + k) = s;
        }
        r += 4;
    }
    r
}

/// Entry points for a float format: one token goes four rows at a time (`dot_f_rows4`), more
/// tokens one row at a time against up to four tokens (`dot_f`). The same code serves both builds.
macro_rules! float_entry {
    ($avx2:ident, $vnni:ident, $f:ty) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn $avx2(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            float_entry!(@body $f, w, rb, a, o, s)
        }
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
        pub(super) unsafe fn $vnni(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            float_entry!(@body $f, w, rb, a, o, s)
        }
    };
    (@body $f:ty, $w:ident, $rb:ident, $a:ident, $o:ident, $s:ident) => {{
        let done = if $a.len() == 1 { dot_f_rows4::<$f>($w, $rb, $a[0].f, $o) } else { 0 };
        let rest = &$w[done * $rb..];
        let o = $o.add(done);
        match $a.len() {
            1 => entry!(@rows 1, AVX2, rest, $rb, $a, o, $s, floats, $f),
            2 => entry!(@rows 2, AVX2, rest, $rb, $a, o, $s, floats, $f),
            3 => entry!(@rows 3, AVX2, rest, $rb, $a, o, $s, floats, $f),
            _ => entry!(@rows 4, AVX2, rest, $rb, $a, o, $s, floats, $f),
        }
    }};
}

/// `dot_f` in the shape `entry!` calls.
#[inline(always)]
unsafe fn floats<const V: u8, F: Floats, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    dot_f::<F, T>(w, a, out)
}
float_entry!(f32_avx2, f32_vnni, F32s);
float_entry!(f16_avx2, f16_vnni, F16s);
float_entry!(bf16_avx2, bf16_vnni, Bf16s);
