//! `mongo-sim`: an in-memory MongoDB 7.0 one-member replica-set simulator for
//! integration tests, checked against MongoDB's unified specification tests.
//!
//! ```no_run
//! # async fn demo() -> mongo_sim::Result<()> {
//! let handle = mongo_sim::Server::start(mongo_sim::Options::default()).await?;
//! println!("{}", handle.uri()); // mongodb://127.0.0.1:PORT/?replicaSet=rs0
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

pub mod agg;
pub mod bsonutil;
pub mod changestream;
pub mod commands;
pub mod error;
pub mod failpoint;
pub mod query;
pub mod server;
pub mod spec;
pub mod state;
pub mod update;
pub mod wire;

pub use error::{CmdError, Error, Result};
pub use server::{Options, Server, ServerHandle};
