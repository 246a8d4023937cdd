//! `cargo bench -p ondo-kernels --bench kernels [-- FORMAT... [--batch] [--hot]]`: pool latency,
//! read bandwidth, batch-1 matvec GB/s (and % of the measured bandwidth) and batched GFLOP/s
//! per format, with 1 and 2 threads (`BATCHES=8,16`: batched tables at those sizes only, over
//! `SHAPE=rows,cols` if given). `--hot` measures matvec on a cache-resident matrix
//! (`HOT_ROWS` x `HOT_COLS`, default 128 x 4096): the kernels' compute ceiling.

use ondo_kernels::{bench, DType};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let named: Vec<DType> = DType::ALL
        .into_iter()
        .filter(|d| args.iter().any(|a| a.eq_ignore_ascii_case(d.name())))
        .collect();
    let formats = if named.is_empty() {
        bench::DEFAULT_FORMATS.to_vec()
    } else {
        named
    };
    // BATCHES=8,16: only batched tables at those sizes (e.g. where a decode step of 8-16 sequences is)
    if let Ok(list) = std::env::var("BATCHES") {
        // SHAPE=rows,cols: another matrix than 4096 x 14336 (e.g. 151936,1536: Qwen2.5-1.5B's LM head)
        let shape: Vec<usize> = std::env::var("SHAPE")
            .map(|s| s.split(',').filter_map(|v| v.trim().parse().ok()).collect())
            .unwrap_or_default();
        let (rows, cols) = match shape[..] {
            [r, c] => (r, c),
            _ => (4096, 14336),
        };
        for n in list.split(',').filter_map(|b| b.trim().parse().ok()) {
            print!("{}", bench::table(&bench::batched(&formats, &[1, 2], n, rows, cols)));
        }
        return;
    }
    if args.iter().any(|a| a == "--hot") {
        let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let rows = bench::matvec_in_cache(&formats, env("HOT_ROWS", 128), env("HOT_COLS", 4096));
        print!("{}", bench::table(&rows));
        return;
    }
    print!(
        "{}",
        bench::report(&formats, &[1, 2], args.iter().any(|a| a == "--batch"))
    );
}
