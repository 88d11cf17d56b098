//! Shared helpers: every Mongo-facing test talks to `MONGODB_URI` when it is
//! set (a real replica set) and to an in-process simulator otherwise.

#![allow(dead_code)]

use mongo_sim::{Options, Server, ServerHandle};
use mongodb::Client;

pub struct Target {
    pub uri: String,
    pub client: Client,
    /// Present when the test runs against the in-process simulator.
    pub sim: Option<ServerHandle>,
}

impl Target {
    pub async fn new() -> Target {
        Self::with_options(Options::default()).await
    }

    pub async fn with_options(opts: Options) -> Target {
        let (uri, sim) = match std::env::var("MONGODB_URI") {
            Ok(u) if !u.is_empty() => (u, None),
            _ => {
                let h = Server::start(opts).await.expect("start simulator");
                (h.uri(), Some(h))
            }
        };
        let client = Client::with_uri_str(&uri).await.expect("client");
        Target { uri, client, sim }
    }

    /// True when simulator-only commands are available; prints why not.
    pub fn sim_only(&self, what: &str) -> bool {
        if self.sim.is_none() {
            println!(
                "skipping {what}: simulator-only command, MONGODB_URI points at a real server"
            );
            return false;
        }
        true
    }

    pub async fn shutdown(self) {
        drop(self.client);
        if let Some(h) = self.sim {
            h.shutdown().await;
        }
    }
}

/// A database name unique to this test run, so runs against a real server
/// do not collide.
pub fn unique_db(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}", n % 1_000_000_000)
}
