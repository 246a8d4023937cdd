//! ondo-text
