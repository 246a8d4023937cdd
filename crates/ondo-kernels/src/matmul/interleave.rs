//! Weights repacked once at load time for the AVX-512 VNNI kernels: rows interleaved sixteen at
//! a time, so one 512-bit register holds four columns of sixteen rows (lane = row).
//!
//! The plain formats keep each row's block together, and a batch-1 kernel spends most of its
//! instructions rearranging one block at a time (nibbles into value order, a scale per block,
//! a horizontal sum per row). Interleaved, the arrangement is done at load time: a tile is
//! `ROWS` rows × one block, and its values sit so that a single `vpdpbusd` against four
//! broadcast activation bytes adds four columns to all sixteen rows' dot products, and the
//! scales apply lane-wise with no horizontal sums. The nibbles stay packed, so a tile has the
//! bytes its sixteen blocks had (Q4_K +2.8% and Q5_K +2.3%: their 6-bit scales are kept as bytes).
//!
//! A weight's interleaved rows are the first `rows / ROWS · ROWS`; only the rest stays in plain
//! bytes (`untile` rebuilds plain blocks from tiles where they are wanted). Tiles of a row group follow each other in
//! column order, groups follow each other in row order.
//!
//! Tile layouts (`r` = row in the group, 0..16; f16 fields little endian):
//! - Q4_0 `{d[16], qs}`, Q4_1 `{d[16], m[16], qs}`, Q5_0 `{d[16], qh, qs}`,
//!   Q5_1 `{d[16], m[16], qh, qs}`: `qs` is four 64-byte chunks; byte `4r + i` of chunk `c` holds
//!   value `8c + i` of row `r` in its low nibble and value `8c + 4 + i` in its high nibble, so
//!   vector `k` of the kernel (low nibbles of chunk `k/2` for even `k`, high for odd) is columns
//!   `4k..4k+4`. `qh` is eight u64: bit `4r + i` of word `k` is the fifth bit of value `4k + i`.
//! - Q8_0 `{d[16], qs}`: eight 64-byte vectors, byte `4r + i` of vector `k` = value `4k + i` of
//!   row `r` plus 128 (unsigned, for `vpdpbusd`; the kernel subtracts `128 · Σx`).
//! - Q4_K `{d[16], dmin[16], sc[8][16] u8, m[8][16] u8, then per sub-block j of 32 values: qs (as
//!   Q4_0's)}`; Q5_K the same with each sub-block's `qs` followed by its `qh` (as Q5_0's).
//! - Q6_K `{d[16], sc[8][16][2] i8, ql[8 sub-blocks] (as Q4_0's qs, low four bits),
//!   qh[8][2][64]}`: byte `4r + i` of `qh[j][h]` holds, in bits `2s..2s+2`, the top two bits of
//!   value `32j + 16h + 4s + i`. `sc[j][r]` are the scales of values `32j..32j+16` and `+16..+32`.
//!
//! `dequantize_tile_row` is the scalar reference for every layout (tests hold it against the
//! plain format's `dequantize_row`).

use super::packed::{unpack_into, Unpacked};
#[cfg(test)]
use super::untile::{fifth_bit, nibble};
#[cfg(test)]
use crate::quant::f16_at;
use crate::quant::put_f16;
use crate::DType;

/// Rows per interleaved group: one i32 lane each in a 512-bit register.
pub(crate) const ROWS: usize = 16;

/// Whether `dtype` has an interleaved form.
pub(crate) fn interleaves(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 | DType::Q4_K | DType::Q5_K | DType::Q6_K
    )
}

/// Byte offsets of the parts of a 32-value format's tile.
#[derive(Clone, Copy)]
pub(crate) struct Parts32 {
    /// `m[16]` (f16), for the formats with a min.
    pub m: Option<usize>,
    /// `qh[8]` (u64 masks), for the 5-bit formats.
    pub qh: Option<usize>,
    pub qs: usize,
    /// The whole tile.
    pub bytes: usize,
}

/// `Parts32` of a 32-value format (`d[16]` is always at 0).
pub(crate) const fn parts32(dtype: DType) -> Parts32 {
    let (m, qh, qs, bytes) = match dtype {
        DType::Q4_0 => (None, None, 32, 288),
        DType::Q4_1 => (Some(32), None, 64, 320),
        DType::Q5_0 => (None, Some(32), 96, 352),
        DType::Q5_1 => (Some(32), Some(64), 128, 384),
        _ => (None, None, 32, 544), // Q8_0
    };
    Parts32 { m, qh, qs, bytes }
}

/// Q4_K/Q5_K tile offsets: `dmin`, `sc`, `m`, the first sub-block.
pub(crate) const K4_DMIN: usize = 32;
pub(crate) const K4_SC: usize = 64;
pub(crate) const K4_M: usize = 192;
pub(crate) const K4_SUBS: usize = 320;

/// Bytes per sub-block of a Q4_K (`qs`) or Q5_K (`qs`, `qh`) tile.
pub(crate) const fn k4_sub_bytes(five: bool) -> usize {
    if five {
        320
    } else {
        256
    }
}
/// Q6_K tile offsets: `sc`, the first sub-block, the bytes of a sub-block (`ql` then `qh`), and
/// the whole tile (= sixteen plain blocks).
pub(crate) const Q6_K_SC: usize = 32;
pub(crate) const Q6_K_SUBS: usize = 288;
pub(crate) const Q6_K_SUB: usize = 384;
pub(crate) const Q6_K_BYTES: usize = 3360;

/// Bytes of one tile (`ROWS` rows × one block) of `dtype`.
pub(crate) fn tile_bytes(dtype: DType) -> usize {
    match dtype {
        DType::Q4_K => K4_SUBS + 8 * k4_sub_bytes(false),
        DType::Q5_K => K4_SUBS + 8 * k4_sub_bytes(true),
        DType::Q6_K => Q6_K_BYTES,
        _ => parts32(dtype).bytes,
    }
}

/// A zeroed buffer for tiles: 64-byte aligned, and from 2 MiB on in transparent huge pages
/// where Linux offers them (a gigabyte of 4 KiB pages cost 1.5 s of page faults to fill on this
/// VM, and the decode loop streams through it with fewer TLB misses).
pub(crate) struct Aligned {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: Aligned owns its allocation like a Vec<u8>.
unsafe impl Send for Aligned {}
unsafe impl Sync for Aligned {}

const HUGE_PAGE: usize = 2 << 20;

impl Aligned {
    /// `len` bytes filled by one thread per `chunk` bytes: thread `k` gets bytes
    /// `k · chunk..` zeroed and calls `fill(k, them)`.
    fn filled_by(len: usize, chunk: usize, fill: impl Fn(usize, &mut [u8]) + Sync) -> Aligned {
        let align = if len >= HUGE_PAGE { HUGE_PAGE } else { 64 };
        let size = len.max(1).next_multiple_of(align);
        let layout = std::alloc::Layout::from_size_align(size, align).expect("a tile buffer size");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if align == HUGE_PAGE {
            // SAFETY: a hint over memory this buffer owns (ignored where THP is off).
            unsafe { libc::madvise(ptr.as_ptr() as *mut libc::c_void, size, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: the bytes past `len` are ours; zeroed so every byte is initialized.
        unsafe { ptr.as_ptr().add(len).write_bytes(0, size - len) };
        let chunk = chunk.max(1);
        let base = SendPtr(ptr.as_ptr());
        std::thread::scope(|s| {
            for k in 0..len.div_ceil(chunk) {
                let (fill, at) = (&fill, k * chunk);
                s.spawn(move || {
                    let n = chunk.min(len - at);
                    // SAFETY: thread k alone writes bytes at..at + n of the allocation; they are
                    // zeroed (first touch: page faults are taken by every thread at once) before
                    // being seen as a slice.
                    let part = unsafe {
                        let p = base.get().add(at);
                        p.write_bytes(0, n);
                        std::slice::from_raw_parts_mut(p, n)
                    };
                    fill(k, part)
                });
            }
        });
        Aligned { ptr, len, layout }
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
// SAFETY: used only to hand disjoint parts of one allocation to scoped threads.
unsafe impl Send for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut u8 {
        self.0
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` initialized bytes at `ptr`, owned by this buffer.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

/// The first `rows / ROWS · ROWS` rows of a plain `dtype` matrix (`row_bytes` per row) as tiles.
pub(crate) fn interleave(dtype: DType, plain: &[u8], rows: usize, row_bytes: usize) -> Aligned {
    interleave_with(dtype, rows, row_bytes, &|first, out: &mut [u8]| {
        out.copy_from_slice(&plain[first * row_bytes..][..out.len()])
    })
}

/// The tiles of the first `rows / ROWS · ROWS` rows of a `dtype` matrix whose plain rows
/// `fill(first_row, out)` writes a group of sixteen at a time into a scratch of sixteen rows:
/// the rows never exist plain all at once (quantizing at load goes straight into tiles).
/// Groups are split over the cores (this runs once per weight, at load).
pub(crate) fn interleave_with(
    dtype: DType,
    rows: usize,
    row_bytes: usize,
    fill: &(dyn Fn(usize, &mut [u8]) + Sync),
) -> Aligned {
    assert!(interleaves(dtype));
    let (bb, tb) = (dtype.block_bytes(), tile_bytes(dtype));
    let blocks = row_bytes / bb;
    let groups = rows / ROWS;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = groups.div_ceil(threads).max(1);
    let group_bytes = blocks * tb;
    Aligned::filled_by(groups * group_bytes, per * group_bytes, |k, part| {
        let mut u = Unpacked::zero();
        let mut plain = vec![0u8; ROWS * row_bytes];
        for (g, group) in part.chunks_exact_mut(group_bytes).enumerate() {
            fill((k * per + g) * ROWS, &mut plain);
            for (b, tile) in group.chunks_exact_mut(tb).enumerate() {
                for r in 0..ROWS {
                    let at = r * row_bytes + b * bb;
                    put_row(dtype, &plain[at..at + bb], tile, r, &mut u);
                }
            }
        }
    })
}

/// Row `r` of a tile from one plain block.
fn put_row(dtype: DType, block: &[u8], tile: &mut [u8], r: usize, u: &mut Unpacked) {
    tile[2 * r..2 * r + 2].copy_from_slice(&block[..2]);
    match dtype {
        DType::Q4_K | DType::Q5_K => {
            unpack_into(dtype, block, u);
            put_f16(&mut tile[K4_DMIN + 2 * r..], u.dmin);
            let sub_bytes = k4_sub_bytes(dtype == DType::Q5_K);
            for j in 0..8 {
                tile[K4_SC + 16 * j + r] = u.sc[j] as u8;
                tile[K4_M + 16 * j + r] = u.m[j] as u8;
                let sub = &mut tile[K4_SUBS + sub_bytes * j..][..sub_bytes];
                let q = &u.q[32 * j..32 * j + 32];
                put_nibbles(sub, r, q);
                if dtype == DType::Q5_K {
                    put_fifth_bits(&mut sub[256..], r, q);
                }
            }
        }
        DType::Q6_K => {
            unpack_into(dtype, block, u);
            put_f16(&mut tile[2 * r..], u.d);
            for j in 0..8 {
                for h in 0..2 {
                    tile[Q6_K_SC + 32 * j + 2 * r + h] = u.sc[2 * j + h] as i8 as u8;
                }
                let q = &u.q[32 * j..32 * j + 32];
                let sub = &mut tile[Q6_K_SUBS + Q6_K_SUB * j..][..Q6_K_SUB];
                put_nibbles(sub, r, q);
                for h in 0..2 {
                    let mut bits = 0u32;
                    for s in 0..4 {
                        bits |= (word(&q[16 * h + 4 * s..]) >> 4 & 0x0303_0303) << (2 * s);
                    }
                    let at = 256 + 64 * h + 4 * r;
                    sub[at..at + 4].copy_from_slice(&bits.to_le_bytes());
                }
            }
        }
        _ => put_row32(dtype, block, tile, r),
    }
}

/// Row `r` of a 32-value format's tile.
fn put_row32(dtype: DType, block: &[u8], tile: &mut [u8], r: usize) {
    let p = parts32(dtype);
    if let Some(m) = p.m {
        tile[m + 2 * r..m + 2 * r + 2].copy_from_slice(&block[2..4]);
    }
    if dtype == DType::Q8_0 {
        // four values at a time, +128 each
        for k in 0..8 {
            let at = p.qs + 64 * k + 4 * r;
            let w = word(&block[2 + 4 * k..]) ^ 0x8080_8080;
            tile[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
        return;
    }
    let q = values32(dtype, block);
    put_nibbles(&mut tile[p.qs..], r, &q);
    if let Some(qh) = p.qh {
        put_fifth_bits(&mut tile[qh..], r, &q);
    }
}

/// Bit 4 of row `r`'s 32 values `q` into eight u64 masks: bit `4r + i` of mask `k` is value
/// `4k + i`'s.
fn put_fifth_bits(masks: &mut [u8], r: usize, q: &[u8]) {
    for (c, q) in q[..32].iter().enumerate() {
        let bit = 4 * r + c % 4;
        masks[8 * (c / 4) + bit / 8] |= ((q >> 4) & 1) << (bit % 8);
    }
}

/// The 32 unsigned values of a 4- or 5-bit block.
fn values32(dtype: DType, b: &[u8]) -> [u8; 32] {
    let (qh, qs) = match dtype {
        DType::Q4_0 => (0, &b[2..18]),
        DType::Q4_1 => (0, &b[4..20]),
        DType::Q5_0 => (u32::from_le_bytes([b[2], b[3], b[4], b[5]]), &b[6..22]),
        _ => (u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..24]), // Q5_1
    };
    std::array::from_fn(|c| {
        let nibble = if c < 16 { qs[c] & 0xF } else { qs[c - 16] >> 4 };
        nibble | (((qh >> c) & 1) << 4) as u8
    })
}

/// Row `r`'s 32 values `q` (low four bits) into a 256-byte nibble area.
fn put_nibbles(qs: &mut [u8], r: usize, q: &[u8]) {
    for c in 0..4 {
        let (lo, hi) = (word(&q[8 * c..]), word(&q[8 * c + 4..]));
        let at = 64 * c + 4 * r;
        qs[at..at + 4].copy_from_slice(&((lo & 0x0F0F_0F0F) | (hi & 0x0F0F_0F0F) << 4).to_le_bytes());
    }
}

/// Four bytes as a little-endian word.
fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Scalar reference: row `r` of a tile as f32 (`out` holds one block of values).
#[cfg(test)]
fn dequantize_tile_row(dtype: DType, tile: &[u8], r: usize, out: &mut [f32]) {
    let d = f16_at(&tile[2 * r..]);
    match dtype {
        DType::Q4_K | DType::Q5_K => {
            let dmin = f16_at(&tile[K4_DMIN + 2 * r..]);
            let five = dtype == DType::Q5_K;
            for (c, y) in out[..256].iter_mut().enumerate() {
                let j = c / 32;
                let sub = &tile[K4_SUBS + k4_sub_bytes(five) * j..];
                let high = if five { fifth_bit(&sub[256..], r, c % 32) } else { 0 };
                let q = (nibble(sub, r, c % 32) | high << 4) as f32;
                let (sc, m) = (tile[K4_SC + 16 * j + r], tile[K4_M + 16 * j + r]);
                *y = d * sc as f32 * q - dmin * m as f32;
            }
        }
        DType::Q6_K => {
            for (c, y) in out[..256].iter_mut().enumerate() {
                let (j, h, s, i) = (c / 32, c % 32 / 16, c % 16 / 4, c % 4);
                let sub = &tile[Q6_K_SUBS + Q6_K_SUB * j..][..Q6_K_SUB];
                let lo = nibble(sub, r, c % 32);
                let hi = (sub[256 + 64 * h + 4 * r + i] >> (2 * s)) & 3;
                let sc = tile[Q6_K_SC + 32 * j + 2 * r + h] as i8;
                *y = d * sc as f32 * ((lo | hi << 4) as i32 - 32) as f32;
            }
        }
        _ => dequantize_tile_row32(dtype, tile, r, d, out),
    }
}

#[cfg(test)]
fn dequantize_tile_row32(dtype: DType, tile: &[u8], r: usize, d: f32, out: &mut [f32]) {
    let p = parts32(dtype);
    for (c, y) in out[..32].iter_mut().enumerate() {
        let q = if dtype == DType::Q8_0 {
            tile[p.qs + 64 * (c / 4) + 4 * r + c % 4] as i32 - 128
        } else {
            let bit = |qh: usize| (tile[qh + 8 * (c / 4) + (4 * r + c % 4) / 8] >> ((4 * r + c % 4) % 8)) & 1;
            let high = p.qh.map_or(0, bit);
            (nibble(&tile[p.qs..], r, c) | high << 4) as i32
        };
        *y = match (dtype, p.m) {
            (_, Some(m)) => q as f32 * d + f16_at(&tile[m + 2 * r..]),
            (DType::Q4_0, _) => (q - 8) as f32 * d,
            (DType::Q5_0, _) => (q - 16) as f32 * d,
            _ => q as f32 * d,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use crate::Weight;

    /// Every value of every interleaved row reads back as the plain format's dequantization.
    #[test]
    fn tiles_hold_the_plain_values() {
        let mut rng = Rng::new(17);
        for dtype in DType::ALL.into_iter().filter(|d| interleaves(*d)) {
            let (rows, cols) = (35, 3 * dtype.block_size()); // two groups and three plain rows
            let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
            let plain = w.to_f32();
            let w = w.interleaved();
            let (tiles, tile_rows) = w.tiles().unwrap();
            assert_eq!(tile_rows, 32);
            let (bs, tb) = (dtype.block_size(), tile_bytes(dtype));
            assert_eq!(tiles.len(), 2 * 3 * tb, "{dtype}");
            let mut got = vec![0f32; bs];
            for r in 0..tile_rows {
                for b in 0..3 {
                    let tile = &tiles[((r / ROWS) * 3 + b) * tb..][..tb];
                    dequantize_tile_row(dtype, tile, r % ROWS, &mut got);
                    let want = &plain[r * cols + b * bs..][..bs];
                    for (c, (g, w)) in got.iter().zip(want).enumerate() {
                        let tol = 1e-6 * w.abs().max(1.0);
                        assert!((g - w).abs() <= tol, "{dtype} row {r} col {}: {g} vs {w}", b * bs + c);
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_are_cache_line_aligned_and_as_large_as_the_blocks() {
        for dtype in DType::ALL.into_iter().filter(|d| interleaves(*d)) {
            // their scales kept as bytes
            let extra = if matches!(dtype, DType::Q4_K | DType::Q5_K) {
                64
            } else {
                0
            };
            assert_eq!(tile_bytes(dtype), ROWS * dtype.block_bytes() + extra, "{dtype}");
        }
        for (len, chunk) in [(100, 34), (5 << 20, 3 << 20)] {
            let a = Aligned::filled_by(len, chunk, |k, part| part.fill(k as u8 + 1));
            let bytes = a.as_ref();
            assert_eq!((bytes.as_ptr() as usize % 64, bytes.len()), (0, len));
            assert!(bytes.iter().enumerate().all(|(i, b)| *b as usize == i / chunk + 1));
        }
    }
}
