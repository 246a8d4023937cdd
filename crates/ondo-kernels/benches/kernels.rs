//! `cargo bench -p ondo-kernels --bench kernels [-- FORMAT... [--batch] [--hot]]`: matvec GB/s (and % of
//! measured read bandwidth) and batched GFLOP/s per format, with 1 and 2 threads.

use ondo_kernels::{bench, DType, Isa};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let batch = args.iter().any(|a| a == "--batch");
    let named: Vec<DType> = DType::ALL
        .into_iter()
        .filter(|d| args.iter().any(|a| a.eq_ignore_ascii_case(d.name())))
        .collect();
    let formats = if named.is_empty() {
        vec![
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q8_0,
            DType::Q4_K,
            DType::Q6_K,
            DType::BF16,
            DType::F16,
            DType::F32,
        ]
    } else {
        named
    };
    if args.iter().any(|a| a == "--hot") {
        print!(
            "{}",
            bench::table(&bench::matvec_in_cache(
                &formats,
                std::env::var("HOT_ROWS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(128),
                std::env::var("HOT_COLS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(4096)
            ))
        );
        return;
    }
    let threads = [1, 2];
    println!("isa: {:?}", Isa::detect());
    for t in threads {
        let (best, median) = bench::pool_latency(&ondo_kernels::ThreadPool::new(t));
        println!("pool fork/join, {t} thread(s): best {best:.1} us, median {median:.1} us");
        println!(
            "read bandwidth, {t} thread(s): {:.1} GB/s",
            bench::read_bandwidth(&ondo_kernels::ThreadPool::new(t))
        );
    }
    print!(
        "{}",
        bench::table(&bench::matvec(&formats, &threads, 14336, 4096))
    );
    if batch {
        for n in [64, 512] {
            print!(
                "{}",
                bench::table(&bench::batched(&formats, &threads, n, 4096, 4096))
            );
        }
    }
}
