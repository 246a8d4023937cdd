//! ondo-text: text in and out of a model.
//!
//! - [`Tokenizer`]: text to token ids and back, from tokenizer.json (HF's `tokenizers` crate, so ids
//!   equal transformers') or from a GGUF vocabulary ([`GgufVocab`], tokenized as llama.cpp does).
//! - [`IncrementalDetokenizer`]: token ids to text deltas for streaming, never half a character.
//! - [`StopMatcher`]: stop strings over streamed text, holding back possible partial matches.
//!
//! ```no_run
//! use ondo_text::{IncrementalDetokenizer, StopMatcher, Tokenizer};
//! # fn main() -> Result<(), ondo_text::Error> {
//! let tok = Tokenizer::from_files("model/tokenizer.json".as_ref(), None)?;
//! let prompt = tok.encode("Once upon a time", true)?;
//! let mut detok = IncrementalDetokenizer::new(&tok, &prompt, true);
//! let mut stops = StopMatcher::new(&["\n\n".to_string()], false);
//! for id in [1_u32, 2, 3] {
//!     let step = stops.push(&detok.push(id)?);
//!     print!("{}", step.text);
//!     if step.stop.is_some() {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod detok;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod gguf_vocab;
pub mod hf_vocab;
mod pretok;
mod spm;
pub mod stop;
pub mod tokenizer;

pub use detok::IncrementalDetokenizer;
pub use error::{Error, Result};
pub use gguf_vocab::{GgufVocab, TokenType};
pub use stop::{StopMatcher, StopStep};
pub use tokenizer::{Tokenizer, SPECIAL_TOKEN_MARKER};

pub mod template;
pub use template::{ChatTemplate, RenderOptions, TemplateError};
