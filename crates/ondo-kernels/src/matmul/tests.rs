//! Every instruction set against the f32 reference and against the scalar integer kernels,
//! for every format, on odd shapes.

use super::*;
use crate::testutil::Rng;

/// f64 reference: dequantized weights · f32 activations.
fn reference(x: &[f32], w: &Weight) -> Vec<f32> {
    let (rows, cols) = (w.rows(), w.cols());
    let wf = w.to_f32();
    let n = x.len() / cols;
    let mut out = vec![0f32; n * rows];
    for t in 0..n {
        for r in 0..rows {
            let dot: f64 = (0..cols)
                .map(|c| x[t * cols + c] as f64 * wf[r * cols + c] as f64)
                .sum();
            out[t * rows + r] = dot as f32;
        }
    }
    out
}

/// `|a − b|` over the scale of the dot product (‖w_r‖·‖x_t‖), worst case.
fn worst_rel(a: &[f32], b: &[f32], x: &[f32], w: &Weight) -> f32 {
    let (rows, cols) = (w.rows(), w.cols());
    let wf = w.to_f32();
    let norm = |v: &[f32]| v.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut worst = 0f32;
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let (t, r) = (i / rows, i % rows);
        let scale = norm(&x[t * cols..(t + 1) * cols]) * norm(&wf[r * cols..(r + 1) * cols]) + 1e-20;
        worst = worst.max((a - b).abs() / scale);
    }
    worst
}

fn shapes(dtype: DType) -> Vec<(usize, usize, usize)> {
    // (rows, cols, tokens): rows not a multiple of the row block or the task split
    let k = dtype.block_size().max(32);
    let big = if k == 256 { 768 } else { 608 }; // 608 = 19 blocks: two groups of 8 and a tail
                                                // (11, k, 70): past a 64-token block of activation rows (interleaved); (3, k, 260): past the
                                                // 256 a packed product holds for every row block
    vec![
        (13, k, 1),
        (37, big, 3),
        (5, 3 * k, 17),
        (70, big, 2),
        (11, k, 70),
        (3, k, 260),
    ]
}

fn int_activations(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Q4_0
            | DType::Q4_1
            | DType::Q5_0
            | DType::Q5_1
            | DType::Q8_0
            | DType::Q4_K
            | DType::Q5_K
            | DType::Q2_K
            | DType::Q3_K
            | DType::Q6_K
    )
}

#[test]
fn every_isa_matches_the_reference() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(11);
    for &isa in Isa::supported() {
        for dtype in DType::ALL {
            for (rows, cols, n) in shapes(dtype) {
                let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
                let x = rng.normals(n * cols);
                let mut got = vec![f32::NAN; n * rows];
                matmul_with(isa, &pool, &x, &w, &mut got);
                let want = reference(&x, &w);
                let tol = if int_activations(dtype) { 0.006 } else { 1e-6 };
                let err = worst_rel(&got, &want, &x, &w);
                assert!(err <= tol, "{isa:?} {dtype} {rows}x{cols} n={n}: error {err} > {tol}");
            }
        }
    }
}

#[test]
fn simd_kernels_match_scalar_integer_kernels() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng::new(5);
    for &isa in Isa::supported().iter().filter(|i| **i != Isa::Scalar) {
        for dtype in DType::ALL {
            for (rows, cols, n) in shapes(dtype) {
                let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
                let x = rng.normals(n * cols);
                let (mut simd, mut scalar) = (vec![0f32; n * rows], vec![0f32; n * rows]);
                matmul_with(isa, &pool, &x, &w, &mut simd);
                matmul_with(Isa::Scalar, &pool, &x, &w, &mut scalar);
                let err = worst_rel(&simd, &scalar, &x, &w);
                assert!(err <= 2e-6, "{isa:?} {dtype} {rows}x{cols} n={n}: {err} off scalar");
            }
        }
    }
}

/// Each instruction set reaches its own table, and a table only offers what that set can run:
/// the scalar one nothing but row kernels; every SIMD table a row kernel for each integer format.
#[test]
fn every_isa_has_its_own_table() {
    for &isa in Isa::supported() {
        let k = isa.kernels();
        assert_eq!(k.isa, isa, "Isa::kernels maps {isa:?} to another table");
        let ints = [
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q8_0,
            DType::Q4_K,
            DType::Q6_K,
        ];
        assert!(
            ints.iter().all(|d| (k.dot)(*d).is_some()),
            "{isa:?} lacks an integer row kernel"
        );
        if isa == Isa::Scalar {
            let extras = k.packed.is_some() || k.group.is_some() || k.float.is_some();
            assert!(
                !extras && !DType::ALL.iter().any(|d| (k.interleaves)(*d)),
                "scalar table"
            );
        }
    }
}

/// The interleaved tiles give what the scalar kernels give on the plain rows, for every format
/// each ISA reads interleaved, batch 1 to 70, rows not a multiple of the row group.
#[test]
fn interleaved_weights_match_the_plain_kernels() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(23);
    for &isa in Isa::supported().iter().filter(|i| **i != Isa::Scalar) {
        for dtype in DType::ALL.into_iter().filter(|d| reads_interleaved(isa, *d)) {
            // 70 tokens: past one block of activation rows (64), in a partial token group
            let extra = [(48, 512, 1), (33, 256, 4), (21, 256, 17), (35, 256, 70)];
            for (rows, cols, n) in shapes(dtype).into_iter().chain(extra) {
                let plain = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
                let tiled = plain.clone().interleaved();
                assert_eq!(tiled.tiles().is_some(), rows >= 16, "{dtype} {rows}");
                let x = rng.normals(n * cols);
                let (mut got, mut want) = (vec![0f32; n * rows], vec![0f32; n * rows]);
                matmul_with(isa, &pool, &x, &tiled, &mut got);
                matmul_with(Isa::Scalar, &pool, &x, &plain, &mut want);
                let err = worst_rel(&got, &want, &x, &plain);
                assert!(err <= 2e-6, "{isa:?} {dtype} {rows}x{cols} n={n}: {err} off scalar");
            }
        }
    }
}

/// The integer sums at their bounds: Q4_K blocks with every 4-bit value 15, every 6-bit scale and
/// min 63, against activations that quantize to ±128 and 127. The interleaved kernels keep some
/// partial sums in 16 bits (`interleave512::group_k4`); a bound off by a bit would wrap here
/// and give answers off by whole multiples of 2^16, where random data stays far from the edge.
#[test]
fn q4_k_sums_at_their_bounds_match_the_scalar_kernel() {
    let pool = ThreadPool::new(2);
    let (rows, cols) = (32, 512);
    let one = half::f16::from_f32(1.0).to_bits().to_le_bytes();
    let block: Vec<u8> = one
        .iter()
        .chain(&one)
        .copied()
        .chain([0xFF; 12])
        .chain([0xFF; 128])
        .collect();
    let bytes: Vec<u8> = block.iter().copied().cycle().take(144 * rows * cols / 256).collect();
    let plain = Weight::new(DType::Q4_K, rows, cols, crate::Bytes::from_vec(bytes)).unwrap();
    let tiled = plain.clone().interleaved();
    // all −1 (the largest magnitude negative: −128 after quantization), all +1, and alternating
    // runs of 16 (each 16-value partial sum at its extreme, of either sign)
    let runs: Vec<f32> = (0..cols).map(|c| if (c / 16) % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let x: Vec<f32> = [vec![-1.0; cols], vec![1.0; cols], runs].concat();
    for &isa in Isa::supported() {
        let mut got = vec![0f32; 3 * rows];
        let mut want = vec![0f32; 3 * rows];
        matmul_with(isa, &pool, &x, &tiled, &mut got);
        matmul_with(Isa::Scalar, &pool, &x, &plain, &mut want);
        let err = worst_rel(&got, &want, &x, &plain);
        assert!(
            err <= 2e-6,
            "{isa:?}: {err} off scalar ({:?} vs {:?})",
            &got[..2],
            &want[..2]
        );
    }
}

/// A weight interleaved on any CPU still multiplies on the instruction sets that do not read
/// its tiles (scalar; AVX2 for K-quants): they get its plain rows back, so the output is bit
/// for bit the plain weight's on the same instruction set.
#[test]
fn interleaved_weights_run_on_the_isas_that_read_plain_rows() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng::new(29);
    for dtype in DType::ALL.into_iter().filter(|d| interleave::interleaves(*d)) {
        let (rows, cols) = (37, 2 * dtype.block_size());
        let plain = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
        let tiled = plain.clone().interleaved();
        for &isa in Isa::supported().iter().filter(|i| !reads_interleaved(**i, dtype)) {
            for n in [1, 9] {
                let x = rng.normals(n * cols);
                let (mut got, mut want) = (vec![0f32; n * rows], vec![0f32; n * rows]);
                matmul_with(isa, &pool, &x, &tiled, &mut got);
                matmul_with(isa, &pool, &x, &plain, &mut want);
                assert_eq!(got, want, "{isa:?} {dtype} n={n}");
            }
        }
    }
}

/// Float weights: a token's result is bit for bit the same alone and in a batch (every float
/// kernel sums in one order), on shapes with a scalar tail, several column chunks of the blocked
/// kernel, an odd last row, a partial token block, and (70 x 2100, 67 tokens) several column
/// panels, row super-blocks and token super-blocks of the blocked walk.
#[test]
fn float_weights_give_each_token_the_same_bits_at_any_batch() {
    let mut rng = Rng::new(8);
    for &isa in Isa::supported() {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            for (rows, cols, n) in [(13, 300, 19), (9, 1029, 5), (17, 64, 2), (70, 2100, 67)] {
                let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
                let x = rng.normals(n * cols);
                let pool = ThreadPool::new(2);
                let mut batch = vec![0f32; n * rows];
                matmul_with(isa, &pool, &x, &w, &mut batch);
                for t in 0..n {
                    let mut alone = vec![0f32; rows];
                    matmul_with(isa, &pool, &x[t * cols..(t + 1) * cols], &w, &mut alone);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&alone),
                        bits(&batch[t * rows..(t + 1) * rows]),
                        "{} {dtype} {rows}x{cols} token {t} of {n}",
                        isa.name()
                    );
                }
            }
        }
    }
}

#[test]
fn thread_counts_give_identical_results() {
    let mut rng = Rng::new(3);
    let (rows, cols, n) = (101, 512, 5);
    let w = Weight::quantize(DType::Q4_K, &rng.normals(rows * cols), rows, cols).unwrap();
    let x = rng.normals(n * cols);
    let mut one = vec![0f32; n * rows];
    matmul(&ThreadPool::new(1), &x, &w, &mut one);
    for threads in [2, 3, 4] {
        let mut many = vec![0f32; n * rows];
        matmul(&ThreadPool::new(threads), &x, &w, &mut many);
        assert_eq!(one, many, "{threads} threads");
    }
}

#[test]
fn known_q4_0_product() {
    // one block: d = 0.5, every weight nibble 9 -> value (9 - 8) * 0.5 = 0.5
    let mut b = vec![0x00, 0x38];
    b.extend([0x99u8; 16]);
    let w = Weight::new(DType::Q4_0, 1, 32, crate::Bytes::from_vec(b)).unwrap();
    let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
    for &isa in Isa::supported() {
        let mut y = [0f32];
        matmul_with(isa, &ThreadPool::new(1), &x, &w, &mut y);
        let want = 0.5 * (0..32).sum::<i32>() as f32;
        assert!((y[0] - want).abs() < 0.01 * want, "{isa:?}: {} vs {want}", y[0]);
    }
}

#[test]
fn force_scalar_env_is_read() {
    // Isa::detect is decided once per process; when CI sets ONDO_FORCE_SCALAR=1 it must be Scalar.
    let named = std::env::var("ONDO_ISA").ok();
    let named = Isa::supported().iter().find(|i| Some(i.name()) == named.as_deref());
    if std::env::var("ONDO_FORCE_SCALAR").is_ok_and(|v| v == "1") {
        assert_eq!(Isa::detect(), Isa::Scalar);
    } else if let Some(isa) = named {
        assert_eq!(Isa::detect(), *isa, "ONDO_ISA");
    } else {
        assert_eq!(Some(&Isa::detect()), Isa::supported().last());
    }
}

#[test]
fn matmul_multi_equals_separate_calls() {
    let pool = ThreadPool::new(3);
    let mut rng = Rng::new(21);
    let cols = 512;
    let formats = [
        DType::Q4_K,
        DType::Q6_K,
        DType::Q8_0,
        DType::BF16,
        DType::Q4_0,
        DType::Q3_K,
        DType::F32,
        DType::Q8_1,
        DType::Q5_K,
    ];
    let rows = [13, 64, 7, 9, 70, 8, 3, 5, 17];
    let ws: Vec<Weight> = formats
        .iter()
        .zip(rows)
        .map(|(&d, r)| Weight::quantize(d, &rng.normals(r * cols), r, cols).unwrap())
        // row groups of 16 (interleaved) beside row blocks of 8 in one split
        .enumerate()
        .map(|(i, w)| if i % 2 == 0 { w.interleaved() } else { w })
        .collect();
    for n in [1, 5] {
        let x = rng.normals(n * cols);
        let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; n * w.rows()]).collect();
        let mut jobs: Vec<(&Weight, &mut [f32])> = ws
            .iter()
            .zip(outs.iter_mut())
            .map(|(w, o)| (w, o.as_mut_slice()))
            .collect();
        matmul_multi(&pool, &x, &mut jobs);
        for (w, got) in ws.iter().zip(&outs) {
            let mut want = vec![0f32; n * w.rows()];
            matmul(&pool, &x, w, &mut want);
            assert_eq!(got, &want, "{} n={n}", w.dtype());
        }
    }
}

#[test]
#[ignore]
fn kernel_cycles_probe() {
    let mut rng = Rng::new(5);
    let cols = 256 * 64;
    let formats = DType::ALL;
    let mut cases = Vec::new();
    for dtype in formats {
        let w = Weight::quantize(dtype, &rng.normals(cols), 1, cols).unwrap();
        for &isa in Isa::supported() {
            if let Some(dot) = (isa.kernels().dot)(dtype) {
                cases.push((dtype, isa, dot, w.clone()));
            }
        }
    }
    let x = rng.normals(cols);
    let mut best = vec![f64::MAX; cases.len()];
    for _ in 0..40 {
        for (k, (dtype, isa, dot, w)) in cases.iter().enumerate() {
            let plan = Plan::new(w, *isa, 1);
            let mut acts = Acts::default();
            acts.prepare(plan.act, &x, cols, plan.k.quantize);
            let row = [acts.row(&x, 0)];
            let mut out = [0f32; 1];
            let t = std::time::Instant::now();
            for _ in 0..500 {
                unsafe {
                    dot(
                        *dtype,
                        std::hint::black_box(w.plain_rows().1),
                        w.row_bytes(),
                        &row,
                        out.as_mut_ptr(),
                        1,
                    )
                };
                std::hint::black_box(out);
            }
            best[k] = best[k].min(t.elapsed().as_secs_f64() / 500.0 / (cols / 256) as f64);
        }
    }
    for ((dtype, isa, _, _), s) in cases.iter().zip(best) {
        println!("{dtype} {isa:?}: {:.2} ns per 256 values", s * 1e9);
    }
}

#[test]
fn task_starts_cover_every_block_once_with_shrinking_tasks() {
    for (tasks, total) in [(1, 5), (16, 16), (16, 32), (16, 1000), (7, 3)] {
        let starts: Vec<usize> = (0..=tasks).map(|k| task_start(k, tasks, total)).collect();
        assert_eq!((starts[0], starts[tasks]), (0, total), "{tasks} tasks of {total}");
        let sizes: Vec<usize> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(sizes.windows(2).all(|w| w[0] + 1 >= w[1]), "not shrinking: {sizes:?}");
        if total >= 4 * tasks && tasks > 1 {
            assert!(sizes[0] > sizes[tasks - 1], "{sizes:?}");
        }
    }
}
