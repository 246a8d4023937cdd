//! K-quant weights unpacked eight rows at a time for batched products (prefill).
//!
//! Every K-quant value is `w = d · sc_j · q − dmin · m_j` with `q` a small unsigned integer,
//! `sc_j`/`m_j` integers per sub-block `j` (16 or 32 values) and `d`/`dmin` floats per 256-value
//! block (Q6_K and Q3_K fit too: their signed values are `q − bias`, so `m_j = bias · sc_j` and
//! `dmin = d`). `Packed` holds eight rows in that form with the values interleaved as
//! `[cols / 4][8 rows][4]`: one 32-byte load is four columns of all eight rows, so a VNNI
//! `vpdpbusd` against four broadcast activation bytes gives eight rows' partial dots at once, and
//! the sub-block scales apply lane-wise (lane = row). A row block is packed once and then used
//! for every token of the batch, so the unpacking cost is shared by all of them.
//!
//! `Packed::row_dot` is the scalar reference for the packed form (tests check the x86 kernel
//! against it, and `unpack` against `dequantize_row`).

#[cfg(test)]
use super::act::ActRow;
use crate::quant::f16_at;
use crate::quant::kquants::{q3_k_scales, scale_min_k4};
use crate::DType;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// Rows per packed block (one lane each in a 256-bit vector of i32).
pub(crate) const LANES: usize = 8;
/// Most tokens one packed kernel call takes (`table::PackedDot`).
pub(crate) const TOKENS: usize = 8;

/// One 256-value block in the common form (also what `interleave` repacks K-quants from).
pub(crate) struct Unpacked {
    pub q: [u8; 256],
    pub sc: [i32; 16],
    pub m: [i32; 16],
    pub d: f32,
    pub dmin: f32,
}

/// Whether `dtype` has a packed form.
pub(crate) fn packs(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K
    )
}

/// Values per sub-block (one scale and min each).
pub(crate) fn sub_block(dtype: DType) -> usize {
    match dtype {
        DType::Q4_K | DType::Q5_K => 32,
        _ => 16,
    }
}

/// A 256-value block of `dtype` in the common form.
#[cfg(test)]
fn unpack(dtype: DType, b: &[u8]) -> Unpacked {
    let mut u = Unpacked::zero();
    unpack_into(dtype, b, &mut u);
    u
}

/// `unpack` into `u` (every field is written).
pub(crate) fn unpack_into(dtype: DType, b: &[u8], u: &mut Unpacked) {
    unpack_scales(dtype, b, u);
    unpack_values(dtype, b, &mut u.q);
}

/// The scales, mins and factors of block `b` into `u` (`q` untouched).
fn unpack_scales(dtype: DType, b: &[u8], u: &mut Unpacked) {
    match dtype {
        DType::Q4_K | DType::Q5_K => {
            (u.d, u.dmin) = (f16_at(b), f16_at(&b[2..]));
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                (u.sc[j], u.m[j]) = (sc as i32, m as i32);
            }
        }
        DType::Q6_K => {
            u.d = f16_at(&b[208..]);
            u.dmin = u.d;
            for j in 0..16 {
                u.sc[j] = b[192 + j] as i8 as i32;
                u.m[j] = 32 * u.sc[j];
            }
        }
        DType::Q2_K => {
            (u.d, u.dmin) = (f16_at(&b[80..]), f16_at(&b[82..]));
            for (j, s) in b[..16].iter().enumerate() {
                (u.sc[j], u.m[j]) = ((s & 0xF) as i32, (s >> 4) as i32);
            }
        }
        DType::Q3_K => {
            u.d = f16_at(&b[108..]);
            u.dmin = u.d;
            for (j, s) in q3_k_scales(&b[96..108]).iter().enumerate() {
                u.sc[j] = *s as i32 - 32;
                u.m[j] = 4 * u.sc[j];
            }
        }
        _ => unreachable!("{dtype} has no packed form"),
    }
}

/// The 256 unsigned values `q` of block `b`, in column order (scalar reference of
/// `unpack_values_avx2`).
fn unpack_values(dtype: DType, b: &[u8], q: &mut [u8; 256]) {
    match dtype {
        DType::Q4_K | DType::Q5_K => {
            let five = dtype == DType::Q5_K;
            let (qh, qs) = if five {
                (&b[16..48], &b[48..176])
            } else {
                (&b[0..0], &b[16..144])
            };
            // four values at a time: nibbles of four consecutive bytes
            for j in 0..4 {
                for g in 0..8 {
                    let at = 32 * j + 4 * g;
                    let w = word(&qs[at..]);
                    let (mut lo, mut hi) = (w & NIBBLES, (w >> 4) & NIBBLES);
                    if five {
                        let h = word(&qh[4 * g..]) >> (2 * j);
                        lo |= (h & 0x0101_0101) << 4;
                        hi |= ((h >> 1) & 0x0101_0101) << 4;
                    }
                    put_word(q, 64 * j + 4 * g, lo);
                    put_word(q, 64 * j + 32 + 4 * g, hi);
                }
            }
        }
        DType::Q6_K => {
            let (ql, qh) = (&b[0..128], &b[128..192]);
            for n in 0..2 {
                let (ql, qh, base) = (&ql[64 * n..], &qh[32 * n..], 128 * n);
                for l in (0..32).step_by(4) {
                    let (l0, l1, h) = (word(&ql[l..]), word(&ql[l + 32..]), word(&qh[l..]));
                    let two = |shift: u32| ((h >> shift) & 0x0303_0303) << 4;
                    put_word(q, base + l, (l0 & NIBBLES) | two(0));
                    put_word(q, base + l + 32, (l1 & NIBBLES) | two(2));
                    put_word(q, base + l + 64, ((l0 >> 4) & NIBBLES) | two(4));
                    put_word(q, base + l + 96, ((l1 >> 4) & NIBBLES) | two(6));
                }
            }
        }
        // Q2_K/Q3_K: four 2-bit values per byte
        DType::Q2_K => unpack_2bit(&b[16..80], q, |_, _| 0),
        DType::Q3_K => {
            let hm = &b[0..32];
            // a set hmask bit means +4 (stored values are q − 4 when the bit is clear)
            unpack_2bit(&b[32..96], q, |l, group| ((hm[l] >> group) & 1) << 2);
        }
        _ => unreachable!("{dtype} has no packed form"),
    }
}

/// Ask for the cache lines of `b` (a hint; nothing on other architectures).
#[inline(always)]
fn prefetch(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..b.len()).step_by(64) {
        // SAFETY: a prefetch of an address inside `b` has no effect beyond the cache.
        unsafe { std::arch::x86_64::_mm_prefetch(b.as_ptr().add(line) as *const i8, std::arch::x86_64::_MM_HINT_T0) };
    }
}

/// Before block `i` of a pack is made: each row's block `i + 4` (eight rows are eight streams:
/// fetch ahead, or every block waits on memory) and, for the first four blocks, block `i` of
/// the next pack's rows `ahead` (no row of that pack fetches those for itself).
#[inline(always)]
fn fetch_ahead(rows: &[&[u8]], ahead: &[&[u8]], i: usize, bb: usize) {
    for r in rows {
        if let Some(next) = r.get((i + 4) * bb..(i + 5) * bb) {
            prefetch(next);
        }
    }
    if i < 4 {
        for r in ahead {
            if let Some(block) = r.get(i * bb..(i + 1) * bb) {
                prefetch(block);
            }
        }
    }
}

const NIBBLES: u32 = 0x0F0F_0F0F;

/// Four bytes as a little-endian word.
#[inline(always)]
fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline(always)]
fn put_word(q: &mut [u8; 256], at: usize, w: u32) {
    q[at..at + 4].copy_from_slice(&w.to_le_bytes());
}

/// Q2_K/Q3_K value order: half `n`, 2-bit group `k`, sixteen-value half `h` of 32 bytes; `high`
/// gives the extra bits of byte `l` in group `4n + k`.
fn unpack_2bit(qs: &[u8], q: &mut [u8; 256], high: impl Fn(usize, usize) -> u8) {
    let mut out = 0;
    for n in 0..2 {
        for k in 0..4 {
            for l in 0..32 {
                q[out] = ((qs[32 * n + l] >> (2 * k)) & 3) | high(l, 4 * n + k);
                out += 1;
            }
        }
    }
}

/// Up to eight rows of one K-quant weight, unpacked (rows past the end are zero).
#[derive(Default)]
pub(crate) struct Packed {
    pub dtype: Option<DType>,
    /// 256-value blocks per row.
    pub blocks: usize,
    /// `[cols / 4][LANES][4]` values.
    pub q: Vec<u8>,
    /// `[blocks · sub-blocks per block][LANES]`.
    pub sc: Vec<i32>,
    /// `sc` with the scale in both i16 halves of each i32 (the AVX2 kernel's `vpmaddwd` operand).
    pub sc16: Vec<i32>,
    /// `[blocks][8][LANES]`: the mins of 16-value halves `2k` and `2k + 1` as two i16 in an i32,
    /// for one `vpdpwssd` against two activation sums at once.
    pub m16: Vec<i32>,
    /// `[blocks][LANES]`.
    pub d: Vec<f32>,
    pub dmin: Vec<f32>,
}

impl Packed {
    /// Pack `rows` (whole rows of `dtype`, at most `LANES`), reusing the buffers. The first
    /// blocks of `ahead` (the next pack's rows) are asked for on the way (`fetch_ahead`), so that
    /// pack does not start by waiting on memory.
    pub fn pack(&mut self, dtype: DType, rows: &[&[u8]], ahead: &[&[u8]]) {
        assert!(rows.len() <= LANES && packs(dtype));
        let bb = dtype.block_bytes();
        let blocks = rows.first().map_or(0, |r| r.len() / bb);
        let sb = 256 / sub_block(dtype);
        self.dtype = Some(dtype);
        self.blocks = blocks;
        fit(&mut self.q, blocks * 256 * LANES);
        fit(&mut self.sc, blocks * sb * LANES);
        fit(&mut self.sc16, blocks * sb * LANES);
        fit(&mut self.m16, blocks * 8 * LANES);
        fit(&mut self.d, blocks * LANES);
        fit(&mut self.dmin, blocks * LANES);
        #[cfg(target_arch = "x86_64")]
        if avx2::packs(dtype) && crate::Isa::supported().contains(&crate::Isa::Avx2) {
            let mut q = [[0u8; 256]; LANES];
            for i in 0..blocks {
                fetch_ahead(rows, ahead, i, bb);
                // SAFETY: the CPU has AVX2 (and F16C: `Isa::Avx2` includes it); the buffers are
                // sized above, every row has `blocks` blocks and the lanes past `rows` stay zero.
                unsafe { avx2::pack_block(self, dtype, rows, i, &mut q) };
            }
            return;
        }
        self.pack_scalar(dtype, rows, ahead);
    }

    /// `pack` a value and a scale at a time (the reference for `avx2::pack_block`).
    fn pack_scalar(&mut self, dtype: DType, rows: &[&[u8]], ahead: &[&[u8]]) {
        let (bb, sb) = (dtype.block_bytes(), 256 / sub_block(dtype));
        let mut us: [Unpacked; LANES] = std::array::from_fn(|_| Unpacked::zero());
        for i in 0..self.blocks {
            fetch_ahead(rows, ahead, i, bb);
            for (u, r) in us.iter_mut().zip(rows) {
                unpack_into(dtype, &r[i * bb..(i + 1) * bb], u);
            }
            let dst = &mut self.q[i * 256 * LANES..(i + 1) * 256 * LANES];
            #[cfg(target_arch = "x86_64")]
            if crate::Isa::supported().contains(&crate::Isa::Avx2) {
                // SAFETY: the CPU has AVX2.
                unsafe { avx2::transpose_words_avx2(us.each_ref().map(|u| &u.q), dst) };
            } else {
                transpose_words(&us, dst);
            }
            #[cfg(not(target_arch = "x86_64"))]
            transpose_words(&us, dst);
            self.put_scales(i, sb, &us);
        }
    }

    /// Block `i`'s scales, mins and factors of every lane (the values are placed by `pack`).
    fn put_scales(&mut self, i: usize, sb: usize, us: &[Unpacked; LANES]) {
        for j in 0..sb {
            for (lane, u) in us.iter().enumerate() {
                self.sc[(i * sb + j) * LANES + lane] = u.sc[j];
                self.sc16[(i * sb + j) * LANES + lane] = (u.sc[j] & 0xFFFF) | (u.sc[j] << 16);
            }
        }
        // 16-value half h lies in sub-block h · sb / 16 (sb sub-blocks per block)
        for k in 0..8 {
            for (lane, u) in us.iter().enumerate() {
                let (a, b) = (u.m[(2 * k) * sb / 16], u.m[(2 * k + 1) * sb / 16]);
                self.m16[(i * 8 + k) * LANES + lane] = (a & 0xFFFF) | (b << 16);
            }
        }
        for (lane, u) in us.iter().enumerate() {
            self.d[i * LANES + lane] = u.d;
            self.dmin[i * LANES + lane] = u.dmin;
        }
    }

    /// Scalar reference: lane `lane`'s dot product with Q8K activations `a`.
    #[cfg(test)]
    pub fn row_dot(&self, lane: usize, a: &ActRow) -> f32 {
        let sbs = sub_block(self.dtype.expect("packed"));
        let per = 256 / sbs;
        let mut total = 0f32;
        for i in 0..self.blocks {
            let (mut sumi, mut summ) = (0i64, 0i64);
            for j in 0..per {
                let mut dot = 0i64;
                for c in 0..sbs {
                    let col = 256 * i + sbs * j + c;
                    let q = self.q[((col / 4) * LANES + lane) * 4 + col % 4] as i64;
                    dot += q * a.qs[col] as i64;
                }
                sumi += self.sc[(i * per + j) * LANES + lane] as i64 * dot;
            }
            for k in 0..8 {
                let pair = self.m16[(i * 8 + k) * LANES + lane];
                let (lo, hi) = (pair as i16 as i64, (pair >> 16) as i64);
                summ += lo * a.bsums[16 * i + 2 * k] as i64 + hi * a.bsums[16 * i + 2 * k + 1] as i64;
            }
            let k = i * LANES + lane;
            total += a.d[i] * (self.d[k] * sumi as f32 - self.dmin[k] * summ as f32);
        }
        total
    }
}

/// `dst[(g · LANES + lane) · 4 ..][..4] = us[lane].q[4g..4g + 4]`.
fn transpose_words(us: &[Unpacked; LANES], dst: &mut [u8]) {
    for (g, to) in dst.chunks_exact_mut(4 * LANES).enumerate() {
        for (u, to) in us.iter().zip(to.chunks_exact_mut(4)) {
            to.copy_from_slice(&u.q[4 * g..4 * g + 4]);
        }
    }
}

impl Unpacked {
    pub(crate) fn zero() -> Unpacked {
        Unpacked {
            q: [0; 256],
            sc: [0; 16],
            m: [0; 16],
            d: 0.0,
            dmin: 0.0,
        }
    }
}

fn fit<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::act::{ActKind, Acts, Quantizers};
    use crate::testutil::Rng;
    use crate::Weight;

    const FORMATS: [DType; 5] = [DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K];

    #[test]
    fn unpacked_blocks_rebuild_the_dequantized_values() {
        let mut rng = Rng::new(3);
        for dtype in FORMATS {
            let w = Weight::quantize(dtype, &rng.normals(512), 1, 512).unwrap();
            let mut want = vec![0f32; 512];
            crate::quant::dequantize_row(dtype, &w.bytes(), &mut want);
            let sbs = sub_block(dtype);
            for (i, b) in w.bytes().chunks_exact(dtype.block_bytes()).enumerate() {
                let u = unpack(dtype, b);
                for c in 0..256 {
                    let j = c / sbs;
                    let got = u.d * (u.sc[j] * u.q[c] as i32) as f32 - u.dmin * u.m[j] as f32;
                    let want = want[256 * i + c];
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{dtype} value {c}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// The AVX2 unpacker against the scalar one on random bytes (every bit of every field
    /// random, not only the values a quantizer writes).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_unpacker_matches_the_scalar_one() {
        if !crate::Isa::supported().contains(&crate::Isa::Avx2) {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut rng = Rng::new(9);
        for dtype in FORMATS {
            for _ in 0..20 {
                let b: Vec<u8> = (0..dtype.block_bytes()).map(|_| rng.next_u64() as u8).collect();
                let (mut want, mut got) = ([0u8; 256], [0xAAu8; 256]);
                unpack_values(dtype, &b, &mut want);
                // SAFETY: checked above that the CPU has AVX2.
                if unsafe { avx2::unpack_values_avx2(dtype, &b, &mut got) } {
                    assert_eq!(got, want, "{dtype}");
                } else {
                    assert!(
                        matches!(dtype, DType::Q2_K | DType::Q3_K),
                        "{dtype} has no AVX2 unpacker"
                    );
                    assert_eq!(got, [0xAA; 256], "{dtype}: a format it declines is left as it was");
                }
            }
        }
    }

    /// The AVX2 `pack` against the scalar one, field by field (bits of the factors), on random
    /// bytes: 7 rows (a partial pack) of 3 blocks, then 2 rows into the same buffers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_pack_writes_what_the_scalar_pack_writes() {
        if !crate::Isa::supported().contains(&crate::Isa::Avx2) {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let mut rng = Rng::new(10);
        for dtype in [DType::Q4_K, DType::Q5_K, DType::Q6_K] {
            let bytes: Vec<Vec<u8>> = (0..7)
                .map(|_| (0..3 * dtype.block_bytes()).map(|_| rng.next_u64() as u8).collect())
                .collect();
            let (mut fast, mut slow) = (Packed::default(), Packed::default());
            for rows in [7, 2] {
                let rs: Vec<&[u8]> = bytes[..rows].iter().map(|b| b.as_slice()).collect();
                fast.pack(dtype, &rs, &[]);
                slow.pack(dtype, &rs, &[]);
                slow.pack_scalar(dtype, &rs, &[]);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(fast.q, slow.q, "{dtype} {rows} rows: values");
                assert_eq!(fast.sc, slow.sc, "{dtype} {rows} rows: scales");
                assert_eq!(fast.sc16, slow.sc16, "{dtype} {rows} rows: i16 scales");
                assert_eq!(fast.m16, slow.m16, "{dtype} {rows} rows: mins");
                assert_eq!(bits(&fast.d), bits(&slow.d), "{dtype} {rows} rows: d");
                assert_eq!(bits(&fast.dmin), bits(&slow.dmin), "{dtype} {rows} rows: dmin");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_x86_kernels_match_the_scalar_reference() {
        use crate::matmul::x86::{packed_dot, packed_dot_avx2, packed_dot_avx_vnni};
        use crate::Isa;
        let mut rng = Rng::new(6);
        for isa in [Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni] {
            if !Isa::supported().contains(&isa) {
                eprintln!("skipped {}: this CPU lacks it", isa.name());
                continue;
            }
            for dtype in FORMATS {
                // 3 blocks of 256, 7 rows (a partial pack), every token count a call takes
                let (rows, cols) = (7, 768);
                let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
                let x = rng.normals(TOKENS * cols);
                let mut acts = Acts::default();
                acts.prepare(ActKind::Q8K, &x, cols, Quantizers::PORTABLE);
                let mut p = Packed::default();
                let rs: Vec<&[u8]> = (0..rows).map(|r| w.plain_row(r)).collect();
                p.pack(dtype, &rs, &[]);
                for tokens in 1..=TOKENS {
                    let a: Vec<ActRow> = (0..tokens).map(|t| acts.row(&x, t)).collect();
                    let mut got = vec![[f32::NAN; LANES]; tokens];
                    // SAFETY: checked above that the CPU has `isa`.
                    unsafe {
                        match isa {
                            Isa::Avx2 => packed_dot_avx2(&p, sub_block(dtype), &a, &mut got),
                            Isa::AvxVnni => packed_dot_avx_vnni(&p, sub_block(dtype), &a, &mut got),
                            _ => packed_dot(&p, sub_block(dtype), &a, &mut got),
                        }
                    };
                    for (t, lanes) in got.iter().enumerate() {
                        for (lane, g) in lanes.iter().enumerate() {
                            let want = p.row_dot(lane, &a[t]);
                            assert!(
                                (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{} {dtype} tokens {tokens} t {t} lane {lane}: {g} vs {want}",
                                isa.name()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 kernel's i16 sums at their bounds: every value at the largest `q` a packed format
    /// has (63, Q6_K), every activation −128 or +127, the largest scales (the products a
    /// saturating `vpmaddubsw` pair or `vpaddw` would clip if the bounds in `packed256.rs` were
    /// wrong).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_does_not_saturate_at_extreme_values() {
        use crate::matmul::x86::packed_dot_avx2;
        if !crate::Isa::supported().contains(&crate::Isa::Avx2) {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let blocks = 2;
        for (dtype, sc) in [(DType::Q6_K, -128), (DType::Q6_K, 127), (DType::Q4_K, 63)] {
            let per = 256 / sub_block(dtype);
            let sc16 = (sc & 0xFFFF) | (sc << 16);
            let p = Packed {
                dtype: Some(dtype),
                blocks,
                q: vec![63; blocks * 256 * LANES],
                sc: vec![sc; blocks * per * LANES],
                sc16: vec![sc16; blocks * per * LANES],
                m16: vec![(4000 & 0xFFFF) | (-4000 << 16); blocks * 8 * LANES],
                d: vec![1.0; blocks * LANES],
                dmin: vec![0.5; blocks * LANES],
            };
            for x in [-128i8, 127] {
                let qs = vec![x; blocks * 256];
                let bsums = vec![16 * x as i16; blocks * 16];
                let d = vec![1.0; blocks];
                let a = [ActRow {
                    f: &[],
                    qs: &qs,
                    d: &d,
                    s: &[],
                    bsums: &bsums,
                }];
                let mut got = [[f32::NAN; LANES]];
                // SAFETY: checked above that the CPU has AVX2.
                unsafe { packed_dot_avx2(&p, sub_block(dtype), &a, &mut got) };
                for (lane, g) in got[0].iter().enumerate() {
                    let want = p.row_dot(lane, &a[0]);
                    assert!(
                        (g - want).abs() <= 1e-6 * want.abs(),
                        "{dtype} sc {sc} x {x} lane {lane}: {g} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_rows_dot_like_the_dequantized_rows() {
        let mut rng = Rng::new(4);
        for dtype in FORMATS {
            let (rows, cols) = (5, 512);
            let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
            let x = rng.normals(cols);
            let mut acts = Acts::default();
            acts.prepare(ActKind::Q8K, &x, cols, Quantizers::PORTABLE);
            let a = acts.row(&x, 0);
            let mut p = Packed::default();
            let rs: Vec<&[u8]> = (0..rows).map(|r| w.plain_row(r)).collect();
            p.pack(dtype, &rs, &[]);
            for lane in 0..LANES {
                let got = p.row_dot(lane, &a);
                let want: f32 = if lane < rows {
                    let mut wf = vec![0f32; cols];
                    crate::quant::dequantize_row(dtype, w.plain_row(lane), &mut wf);
                    // the activations as the kernel sees them (quantized)
                    (0..cols).map(|c| wf[c] * a.qs[c] as f32 * a.d[c / 256]).sum()
                } else {
                    0.0
                };
                assert!(
                    (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                    "{dtype} lane {lane}: {got} vs {want}"
                );
            }
        }
    }
}
