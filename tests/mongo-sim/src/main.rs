//! `mongo-sim` binary: run the simulator, or run a directory of unified
//! specification tests against an in-process simulator.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mongo-sim", about = "MongoDB replica-set simulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 27017)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Replica set name.
    #[arg(long, default_value = "rs0")]
    repl_set: String,
    /// Bound the oplog to this many entries.
    #[arg(long, conflicts_with = "oplog_max_bytes")]
    oplog_max_events: Option<usize>,
    /// Bound the oplog to this many bytes.
    #[arg(long)]
    oplog_max_bytes: Option<usize>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every unified-format test file in DIR against an in-process server.
    SpecTest {
        dir: std::path::PathBuf,
        /// Only run tests whose description contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Print details of each failure.
        #[arg(long, short)]
        verbose: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Some(Cmd::SpecTest {
                dir,
                filter,
                verbose,
            }) => {
                let summary = mongo_sim::spec::run_dir(&dir, filter.as_deref(), verbose).await?;
                println!(
                    "{} passed, {} failed, {} skipped",
                    summary.passed, summary.failed, summary.skipped
                );
                if summary.failed > 0 {
                    std::process::exit(1);
                }
                Ok(())
            }
            None => {
                let opts = mongo_sim::Options {
                    port: cli.port,
                    bind: cli.bind,
                    repl_set: cli.repl_set,
                    oplog_max_events: cli.oplog_max_events,
                    oplog_max_bytes: cli.oplog_max_bytes,
                };
                let h = mongo_sim::Server::start(opts).await?;
                println!("mongo-sim listening; export MONGODB_URI={}", h.uri());
                tokio::signal::ctrl_c().await?;
                h.shutdown().await;
                Ok(())
            }
        }
    })
}
