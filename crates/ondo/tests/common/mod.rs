//! Helpers shared by the CLI tests.

pub mod fake_hub;
