//! Where tests find their assets, and what they do when an asset is missing.
//!
//! `../shared` sits beside the repository (CI has it); larger models are fetched by
//! `../shared/models/fetch.sh` into `$ONDO_TEST_MODELS` (default `~/.cache/ondo-test-models`).
//! A missing asset makes a test print why and skip, except under CI (`CI=true`), where it panics.
//!
//! ```no_run
//! let Some(dir) = ondo_testdata::shared("models/stories260K") else { return };
//! assert!(dir.join("stories260K.gguf").exists());
//! ```

pub mod fuzz;

use std::path::PathBuf;

/// The `shared` folder beside the repository.
pub fn shared_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// The folder fetched models live in.
pub fn models_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ONDO_TEST_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/ondo-test-models")
}

/// `../shared/<rel>`, or None (after printing why) when absent. Panics under CI.
pub fn shared(rel: &str) -> Option<PathBuf> {
    require(shared_root().join(rel), "../shared is not beside the repository")
}

/// A fetched model `<models_root>/<rel>`, or None when absent. Panics under CI.
pub fn fetched(rel: &str) -> Option<PathBuf> {
    require(models_root().join(rel), "run ../shared/models/fetch.sh to get it")
}

fn require(path: PathBuf, hint: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let msg = format!("test asset {} is missing ({hint})", path.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI must have every asset");
    }
    eprintln!("skipping: {msg}");
    None
}

/// A global allocator that counts allocations (for tests that check a loop allocates nothing).
/// Install it in a test binary with `harness = false` (libtest's threads allocate on their own):
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: ondo_testdata::CountingAlloc = ondo_testdata::CountingAlloc;
/// let before = ondo_testdata::allocations();
/// // ... the loop under test ...
/// assert_eq!(ondo_testdata::allocations(), before);
/// ```
pub struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Allocations made through `CountingAlloc` so far, on every thread.
pub fn allocations() -> usize {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        std::alloc::System.dealloc(p, l)
    }
}

/// The index of the largest value (the first of equals): greedy decoding in tests.
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}
