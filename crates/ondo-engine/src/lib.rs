//! ondo-engine
