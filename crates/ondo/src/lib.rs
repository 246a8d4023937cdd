//! ondo
