//! `matmul` and the pool allocate nothing once warm (the scratch buffers only grow).
//!
//! Runs without the libtest harness (`harness = false`): the allocator counts every thread, and
//! the harness's own threads allocate at times of their choosing.

use ondo_kernels::{matmul, matmul_multi, testutil::Rng, DType, ThreadPool, Weight};

#[global_allocator]
static GLOBAL: ondo_testdata::CountingAlloc = ondo_testdata::CountingAlloc;

fn main() {
    warm_matmul_does_not_allocate();
    warm_matmul_multi_does_not_allocate();
    println!("no_alloc: ok");
}

fn warm_matmul_does_not_allocate() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng::new(1);
    let (rows, cols) = (64, 512);
    for dtype in [
        DType::Q4_0,
        DType::Q4_K,
        DType::Q6_K,
        DType::BF16,
        DType::F32,
        DType::Q3_K,
    ] {
        let w = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols)
            .unwrap()
            .for_matmul();
        for n in [1, 7] {
            let x = rng.normals(n * cols);
            let mut y = vec![0f32; n * rows];
            for _ in 0..20 {
                matmul(&pool, &x, &w, &mut y); // warm: every thread's scratch grows here
            }
            let before = ondo_testdata::allocations();
            for _ in 0..5 {
                matmul(&pool, &x, &w, &mut y);
            }
            assert_eq!(ondo_testdata::allocations(), before, "{dtype} n={n} allocated");
        }
    }
}

fn warm_matmul_multi_does_not_allocate() {
    let pool = ThreadPool::new(2);
    let mut rng = Rng::new(2);
    let cols = 256;
    let (q, k, v) = (
        Weight::quantize(DType::Q4_K, &rng.normals(64 * cols), 64, cols)
            .unwrap()
            .for_matmul(),
        Weight::quantize(DType::Q6_K, &rng.normals(16 * cols), 16, cols)
            .unwrap()
            .for_matmul(),
        Weight::quantize(DType::Q8_0, &rng.normals(16 * cols), 16, cols).unwrap(),
    );
    let x = rng.normals(3 * cols);
    let (mut yq, mut yk, mut yv) = (vec![0f32; 3 * 64], vec![0f32; 3 * 16], vec![0f32; 3 * 16]);
    let mut run = || {
        matmul_multi(
            &pool,
            &x,
            &mut [(&q, &mut yq[..]), (&k, &mut yk[..]), (&v, &mut yv[..])],
        )
    };
    for _ in 0..20 {
        run();
    }
    let before = ondo_testdata::allocations();
    for _ in 0..5 {
        run();
    }
    assert_eq!(ondo_testdata::allocations(), before, "matmul_multi allocated");
}
