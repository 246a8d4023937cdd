//! ondo-model
