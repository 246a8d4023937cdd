//! Replaying the fuzz targets' kept inputs on stable: `fuzz/regressions/<target>/` at the
//! repository root holds every input a target crashed on and a small slice of its corpus. Each
//! crate's `tests/fuzz_replay.rs` feeds them to the same `fuzz` entry the target calls.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long one input may take before it counts as a hang (a guard, not a speed check: real
/// inputs take milliseconds, and the sandboxes bound the worst at about a second).
const HANG: Duration = Duration::from_secs(60);

/// `fuzz/regressions/<target>/`.
pub fn regressions_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target)
}

/// The kept inputs of `target`, sorted by name. Panics when there are none.
pub fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = regressions_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no kept inputs in {}", dir.display());
    files
}

/// Feeds every kept input of `target` to `entry`, each on its own thread: each must return
/// without panicking and within [`HANG`], and an error must say something. Returns how many
/// inputs gave `Ok` and how many a clean `Err`; panics naming the file otherwise.
pub fn replay<T, E: std::fmt::Display>(
    target: &str,
    entry: impl Fn(&[u8]) -> Result<T, E> + Send + Sync + 'static,
) -> (usize, usize) {
    let entry = Arc::new(entry);
    let (mut ok, mut err) = (0, 0);
    for path in inputs(target) {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (tx, rx) = mpsc::channel();
        let entry = entry.clone();
        std::thread::spawn(move || {
            let outcome = entry(&data).map(|_| ()).map_err(|e| e.to_string());
            let _ = tx.send(outcome);
        });
        match rx.recv_timeout(HANG) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                assert!(!msg.trim().is_empty(), "{}: an error without a message", path.display());
                err += 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{} panicked (see above)", path.display()),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{} ran past {HANG:?}", path.display()),
        }
    }
    eprintln!("{target}: {ok} inputs gave Ok, {err} a clean error");
    (ok, err)
}
