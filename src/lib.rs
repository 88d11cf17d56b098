//! connectd: a Kafka Connect-compatible worker.
//!
//! The library target lets integration tests start a worker in-process; the
//! `connectd` binary is a thin CLI over [`app`].

pub mod app;
pub mod config;
pub mod group;
pub mod herder;
pub mod logging;
pub mod memory;
pub mod plugins;
pub mod producer;
pub mod rest;
pub mod spawn;
pub mod storage;
pub mod worker;
