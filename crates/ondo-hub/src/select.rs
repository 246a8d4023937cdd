//! Which files of a repo a model needs: an HF model's config, tokenizer and safetensors weights;
//! for a repo of GGUF files, the one file named by the id's quant (`org/name:Q4_K_M`, as
//! Ollama and llama.cpp's `-hf` pick it); or, for `ondo pull --include GLOB`, the files matching.

use super::{HubError, HubId, MODEL_FILES, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use std::path::{Path, PathBuf};

/// The quant picked when a GGUF repo has several files and the id names none (llama.cpp's default).
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// The files to download for `id` from a repo holding `siblings`.
pub(crate) fn select_files(id: &HubId, siblings: &[String], include: &[String]) -> Result<Vec<String>, HubError> {
    if !include.is_empty() {
        return matching(id, siblings, include);
    }
    let has = |f: &str| siblings.iter().any(|s| s == f);
    let weights = [WEIGHTS_FILE, WEIGHTS_INDEX_FILE].into_iter().find(|w| has(w));
    match (id.quant(), has("config.json"), weights) {
        (None, true, Some(weights)) => {
            let mut files: Vec<String> = MODEL_FILES.iter().filter(|f| has(f)).map(|f| f.to_string()).collect();
            files.push(weights.to_string());
            Ok(files)
        }
        (quant, ..) if quant.is_some() || siblings.iter().any(|s| is_gguf_name(s)) => {
            Ok(vec![pick_gguf(id, siblings)?])
        }
        _ => Err(no_weights(id, siblings)),
    }
}

/// The `.gguf` of `names` that `id` asks for: the one whose name has the id's quant as a part
/// (`Model-Q4_K_M.gguf`, `model.q4_k_m.gguf`; any case); without a quant, the only GGUF, else
/// [`DEFAULT_QUANT`]. Split GGUFs (`-00001-of-00002`) are not offered.
pub(crate) fn pick_gguf(id: &HubId, names: &[String]) -> Result<String, HubError> {
    let ggufs: Vec<&String> = names.iter().filter(|n| is_gguf_name(n) && !is_split(n)).collect();
    let wanted = id.quant().unwrap_or(DEFAULT_QUANT);
    let found = ggufs
        .iter()
        .find(|n| quant_of(n).is_some_and(|q| q.eq_ignore_ascii_case(wanted)));
    match (found, id.quant(), ggufs.as_slice()) {
        (Some(name), ..) => Ok(name.to_string()),
        (None, None, [only]) => Ok(only.to_string()),
        (None, quant, _) => Err(HubError::NoQuant {
            id: id.without_quant(),
            quant: quant.map(str::to_string),
            available: available(&ggufs),
        }),
    }
}

/// What `resolve_model` returns for a snapshot folder: the folder itself for an HF model, the
/// picked `.gguf` inside it for a GGUF repo or when the id names a quant.
pub(crate) fn model_path(dir: &Path, id: &HubId) -> Result<PathBuf, HubError> {
    if id.quant().is_none() && dir.join("config.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(HubError::io(dir))?
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    Ok(dir.join(pick_gguf(id, &names)?))
}

/// The quant part of a GGUF file name: the last `-`/`.`-separated part that looks like one
/// (`Q4_K_M`, `IQ2_XS`, `F16`, `BF16`, `Q8_0`).
pub fn quant_of(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next()?;
    let stem = base.strip_suffix(".gguf").or_else(|| base.strip_suffix(".GGUF"))?;
    stem.rsplit(['-', '.']).find(|part| is_quant_name(part))
}

fn is_quant_name(part: &str) -> bool {
    let upper = part.to_ascii_uppercase();
    let known = ["F32", "F16", "BF16"].contains(&upper.as_str());
    let quant = (upper.starts_with('Q') || upper.starts_with("IQ") || upper.starts_with("TQ"))
        && upper.chars().any(|c| c.is_ascii_digit())
        && upper.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    known || quant
}

fn is_gguf_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

fn is_split(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("-of-")
        && lower
            .rsplit('-')
            .nth(2)
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn available(ggufs: &[&String]) -> String {
    let mut quants: Vec<&str> = ggufs.iter().map(|n| quant_of(n).unwrap_or(n.as_str())).collect();
    quants.dedup();
    match quants.is_empty() {
        true => "none".into(),
        false => quants.join(", "),
    }
}

/// `--include` globs: the repo files matching any of them.
fn matching(id: &HubId, siblings: &[String], include: &[String]) -> Result<Vec<String>, HubError> {
    let files: Vec<String> = siblings
        .iter()
        .filter(|s| include.iter().any(|g| glob_match(g, s)))
        .cloned()
        .collect();
    match files.is_empty() {
        true => Err(HubError::NoMatch {
            id: id.to_string(),
            patterns: include.join(" "),
        }),
        false => Ok(files),
    }
}

/// Shell-style match of a whole file name: `*` (any run, also across `/`), `?` (one character),
/// everything else literal.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub(crate) fn no_weights(id: &HubId, siblings: &[String]) -> HubError {
    let mut files = siblings.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
    if siblings.len() > 20 {
        files.push_str(", ...");
    }
    HubError::NoWeights {
        id: id.to_string(),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sib(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hub_select_files() {
        let id = HubId::parse("o/n").unwrap();
        let files = select_files(
            &id,
            &sib(&[
                "README.md",
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "pytorch_model.bin",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(files, ["config.json", "tokenizer.json", "model.safetensors"]);
        let sharded = sib(&["config.json", WEIGHTS_INDEX_FILE, "model-00001-of-00002.safetensors"]);
        assert_eq!(
            select_files(&id, &sharded, &[]).unwrap(),
            ["config.json", WEIGHTS_INDEX_FILE]
        );
        let err = select_files(&id, &sib(&["README.md"]), &[]).unwrap_err().to_string();
        assert!(err.contains("o/n") && err.contains("README.md"), "{err}");
    }

    #[test]
    fn hub_gguf_repo_picks_by_quant() {
        let repo = sib(&["README.md", "Tiny-Q8_0.gguf", "Tiny-Q4_K_M.gguf", "tiny.f16.gguf"]);
        let pick = |id: &str| select_files(&HubId::parse(id).unwrap(), &repo, &[]);
        assert_eq!(pick("o/n:Q8_0").unwrap(), ["Tiny-Q8_0.gguf"]);
        assert_eq!(pick("o/n:q4_k_m").unwrap(), ["Tiny-Q4_K_M.gguf"]);
        assert_eq!(pick("o/n:F16").unwrap(), ["tiny.f16.gguf"]);
        assert_eq!(pick("o/n").unwrap(), ["Tiny-Q4_K_M.gguf"], "the default quant");
        let err = pick("o/n:Q2_K").unwrap_err().to_string();
        assert!(
            err.contains("o/n") && err.contains("Q2_K") && err.contains("Q8_0, Q4_K_M, f16"),
            "{err}"
        );
        let one = sib(&["only-Q5_K_S.gguf"]);
        assert_eq!(
            select_files(&HubId::parse("o/n").unwrap(), &one, &[]).unwrap(),
            ["only-Q5_K_S.gguf"]
        );
        let two = sib(&["a-Q8_0.gguf", "a-Q6_K.gguf"]);
        let err = select_files(&HubId::parse("o/n").unwrap(), &two, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("o/n:QUANT") && err.contains("Q8_0, Q6_K"), "{err}");
    }

    #[test]
    fn hub_quant_names_and_splits() {
        assert_eq!(quant_of("Llama-3.2-1B-Instruct-Q4_K_M.gguf"), Some("Q4_K_M"));
        assert_eq!(quant_of("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), Some("q4_k_m"));
        assert_eq!(quant_of("model-IQ2_XS.gguf"), Some("IQ2_XS"));
        assert_eq!(quant_of("gemma-3-270m-BF16.gguf"), Some("BF16"));
        assert_eq!(quant_of("model.gguf"), None);
        assert_eq!(quant_of("config.json"), None);
        assert!(is_split("big-Q4_K_M-00001-of-00003.gguf"));
        assert!(!is_split("small-Q4_K_M.gguf"));
    }

    #[test]
    fn hub_include_globs() {
        assert!(glob_match("*.gguf", "a-Q4_K_M.gguf"));
        assert!(glob_match("*Q4_K_M*", "sub/a-Q4_K_M.gguf"));
        assert!(glob_match("config.???n", "config.json"));
        assert!(!glob_match("*.gguf", "a.gguf.txt"));
        assert!(!glob_match("a*b", "ac"));
        let id = HubId::parse("o/n").unwrap();
        let repo = sib(&["config.json", "a.gguf", "b.gguf", "README.md"]);
        assert_eq!(
            select_files(&id, &repo, &sib(&["*.gguf"])).unwrap(),
            ["a.gguf", "b.gguf"]
        );
        let err = select_files(&id, &repo, &sib(&["*.bin"])).unwrap_err().to_string();
        assert!(err.contains("*.bin") && err.contains("o/n"), "{err}");
    }
}
