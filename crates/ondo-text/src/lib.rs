//! ondo-text

pub mod template;
pub use template::{ChatTemplate, RenderOptions, TemplateError};
