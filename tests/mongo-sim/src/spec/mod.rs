//! Unified-format specification test runner: `mongo-sim spec-test <dir>`.

pub mod matcher;
pub mod runner;

pub use runner::{run_dir, Summary};
