//! The architecture registry: one file per architecture, each exporting one `ArchSpec`, one
//! line each in `REGISTRY`. config.rs, gguf_model.rs, names.rs and the loader dispatch through
//! the spec; nothing else knows architecture names.

mod exaone;
mod gemma2;
mod gemma3;
mod gpt2;
mod gptneox;
mod llama;
mod phi3;
mod weights;

use crate::config::{Fields, Hparams};
use crate::gguf_model::Keys;
use crate::names::Names;
use crate::store::{Format, Tensors};
use crate::{Error, Model};
use ondo_kernels::ops::RopeStyle;

/// Everything ondo knows about one architecture.
pub struct ArchSpec {
    /// ondo's name for it (the first GGUF name).
    pub id: &'static str,
    /// config.json `architectures[0]` values, each with its `model_type`.
    pub hf_archs: &'static [(&'static str, &'static str)],
    /// `general.architecture` values of llama.cpp's GGUF conversion, with the rope layout its
    /// q/k rows have there (llama.cpp permutes llama's rows into interleaved pairs).
    pub gguf_archs: &'static [(&'static str, RopeStyle)],
    /// HF tensor names.
    pub names: &'static Names,
    /// HF architectures `ondo quantize` can write as GGUF: (`architectures[0]`, the
    /// `general.architecture` llama.cpp's converter gives it). Empty: no export.
    pub gguf_export: &'static [(&'static str, &'static str)],
    /// config.json keys this architecture spells differently: (canonical key, its key).
    pub hf_keys: &'static [(&'static str, &'static str)],
    /// Adjusts the shared config.json reading (defaults, patterns, variant fields).
    pub(crate) hf_fixup: fn(&Fields, &mut Hparams) -> Result<(), Error>,
    /// Adjusts the shared GGUF metadata reading.
    pub(crate) gguf_fixup: fn(&Keys, &mut Hparams) -> Result<(), Error>,
    /// Which tensors a layer has and how they are fixed up at load.
    pub(crate) layer: fn(&Hparams, Format) -> LayerSpec,
    /// The tiny checkpoints under fixtures/tiny-models that test it (a test walks the registry).
    pub fixtures: &'static [&'static str],
}

impl std::fmt::Debug for ArchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchSpec({})", self.id)
    }
}

impl PartialEq for ArchSpec {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// Every architecture ondo runs. A test walks this list.
pub static REGISTRY: &[&ArchSpec] = &[
    &llama::SPEC,
    &gemma3::SPEC,
    &gemma2::SPEC,
    &gpt2::SPEC,
    &gptneox::SPEC,
    &phi3::SPEC,
    &exaone::SPEC,
];

/// The spec whose HF `architectures` list has `name`.
pub fn by_hf_name(name: &str) -> Option<&'static ArchSpec> {
    REGISTRY
        .iter()
        .copied()
        .find(|s| s.hf_archs.iter().any(|(a, _)| *a == name))
}

/// The spec and HF architecture name of a config.json `model_type`.
pub fn by_model_type(model_type: &str) -> Option<(&'static ArchSpec, &'static str)> {
    REGISTRY
        .iter()
        .find_map(|s| s.hf_archs.iter().find(|(_, t)| *t == model_type).map(|(a, _)| (*s, *a)))
}

/// The spec of a GGUF `general.architecture`, with its rope layout.
pub fn by_gguf_name(name: &str) -> Option<(&'static ArchSpec, RopeStyle)> {
    REGISTRY.iter().find_map(|s| {
        s.gguf_archs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, style)| (*s, *style))
    })
}

/// Every supported HF architecture name, for errors.
pub fn hf_names() -> Vec<&'static str> {
    REGISTRY.iter().flat_map(|s| s.hf_archs.iter().map(|a| a.0)).collect()
}

/// Every supported `model_type`, for errors.
pub fn model_types() -> Vec<&'static str> {
    REGISTRY.iter().flat_map(|s| s.hf_archs.iter().map(|a| a.1)).collect()
}

/// Every supported GGUF architecture name, for errors.
pub fn gguf_names() -> Vec<&'static str> {
    REGISTRY.iter().flat_map(|s| s.gguf_archs.iter().map(|a| a.0)).collect()
}

/// How q, k and v are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkvLayout {
    /// Three tensors `attn_q`, `attn_k`, `attn_v`.
    Split,
    /// One `attn_qkv` with all q rows, then k, then v.
    Fused,
    /// One `attn_qkv` with q, k, v rows interleaved per head (`[heads, 3, head_dim]`: HF GPT-NeoX).
    FusedPerHead,
}

/// Which tensors a layer has, and the fix-ups done once at load.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Added to every norm weight at load (HF Gemma stores `w` and computes `x * (1 + w)`).
    pub norm_offset: f32,
    pub qk_norm: bool,
    /// Norms of the attention and MLP outputs before their residual adds (Gemma).
    pub sandwich_norms: bool,
    pub qkv: QkvLayout,
    /// Gate and up in one `ffn_up` of 2·intermediate rows, gate first (Phi-3).
    pub gate_up_fused: bool,
    /// Matrices stored `[in, out]` (HF GPT-2's Conv1D): transposed at load.
    pub transposed: bool,
}

impl LayerSpec {
    /// Llama's layer: separate q/k/v and gate/up, no extra norms.
    pub const PLAIN: LayerSpec = LayerSpec {
        norm_offset: 0.0,
        qk_norm: false,
        sandwich_norms: false,
        qkv: QkvLayout::Split,
        gate_up_fused: false,
        transposed: false,
    };
}

/// Build the model `hp.arch` names.
pub fn build(hp: Hparams, tensors: &Tensors) -> Result<Box<dyn Model>, Error> {
    let spec = (hp.arch.layer)(&hp, tensors.format);
    Ok(Box::new(weights::load_decoder(hp, tensors, &spec)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every architecture has a fixture folder with a golden, and no name is claimed twice.
    #[test]
    fn every_architecture_has_a_fixture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models");
        let mut seen = HashSet::new();
        for spec in REGISTRY {
            assert!(!spec.fixtures.is_empty(), "{} has no fixture", spec.id);
            for f in spec.fixtures {
                let dir = root.join(f);
                assert!(
                    dir.join("golden.json").is_file() && dir.join("config.json").is_file(),
                    "{}: fixture {} is missing",
                    spec.id,
                    dir.display()
                );
            }
            for (a, t) in spec.hf_archs {
                assert!(seen.insert(*a), "{a} registered twice");
                assert_eq!(by_model_type(t).map(|x| x.0.id), Some(spec.id), "model_type {t}");
            }
            for (g, _) in spec.gguf_archs {
                assert!(seen.insert(*g), "{g} registered twice");
            }
        }
    }
}
