//! The `connectd` command line: `connectd distributed <worker.properties>` or
//! `connectd standalone <worker.properties> [connector.properties|.json ...]`.
//!
//! Exit status: 0 after a clean shutdown, 2 for a bad command line or worker
//! config (one line naming the key and the problem), 1 for any other failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connectd::app;
use connectd::config::properties::{load_connector_file, load_properties_file};
use connectd::config::worker::{Mode, WorkerConfig};
use connectd::logging::Loggers;

/// glibc's malloc serialises on an arena lock when records are allocated on
/// one thread and freed on another (poll thread → acker / librdkafka), which
/// the worker does for every record; mimalloc's thread-local heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "connectd",
    version,
    about = "A Kafka Connect-compatible worker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a worker of a distributed Connect cluster.
    Distributed {
        /// The worker properties file (same keys as the Java worker).
        worker_properties: PathBuf,
    },
    /// Run a standalone worker with the given connectors.
    Standalone {
        /// The worker properties file (needs offset.storage.file.filename).
        worker_properties: PathBuf,
        /// Connector configs, as .properties or .json files.
        connectors: Vec<PathBuf>,
    },
}

fn usage_error(message: String) -> ExitCode {
    eprintln!("connectd: {message}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    connectd::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    let (mode, worker_file, connector_files) = match cli.command {
        Command::Distributed { worker_properties } => {
            (Mode::Distributed, worker_properties, vec![])
        }
        Command::Standalone {
            worker_properties,
            connectors,
        } => (Mode::Standalone, worker_properties, connectors),
    };
    let props = match load_properties_file(&worker_file) {
        Ok(p) => p,
        Err(e) => return usage_error(format!("reading {}: {e}", worker_file.display())),
    };
    let config = match WorkerConfig::from_props(mode, props) {
        Ok(c) => c,
        Err(e) => return usage_error(e.to_string()),
    };
    let mut connectors = Vec::new();
    for f in &connector_files {
        match load_connector_file(f) {
            Ok(c) => connectors.push(c),
            Err(e) => return usage_error(format!("reading connector file {}: {e}", f.display())),
        }
    }
    let level = std::env::var("CONNECTD_LOG").unwrap_or_else(|_| "info".to_string());
    let loggers = Loggers::init(&level);

    let handle = match app::start(config, connectors, loggers).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("connectd: failed to start: {e}");
            return ExitCode::from(1);
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down: stopping tasks and flushing offsets");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
