//! Throughput/latency benchmark of the simulator through the Rust driver over
//! one connection. Not a timed test: it prints figures.
//!
//! cargo run --release -p mongo-sim --example bench [-- N_DOCS]

use futures::TryStreamExt;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::ClientOptions;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let handle = mongo_sim::Server::start(mongo_sim::Options::default()).await?;
    let mut opts = ClientOptions::parse(handle.uri()).await?;
    opts.max_pool_size = Some(1);
    let client = mongodb::Client::with_options(opts)?;
    let coll = client.database("bench").collection::<Document>("docs");
    let pad = "x".repeat(1000);

    // Inserts: insert_many in batches of 1000 ~1 KB documents.
    let start = Instant::now();
    for b in 0..n / 1000 {
        let docs: Vec<Document> = (0..1000)
            .map(|i| doc! {"_id": (b * 1000 + i) as i64, "n": i as i32, "pad": &pad})
            .collect();
        coll.insert_many(docs).await?;
    }
    let ins = n as f64 / start.elapsed().as_secs_f64();
    println!("inserts (insert_many x1000, 1 KB docs): {ins:.0} docs/s");

    // Finds: full scans in batches of 1000, raw documents on the client side.
    let raw = coll.clone_with_type::<RawDocumentBuf>();
    let rounds = 5;
    let start = Instant::now();
    let mut seen = 0usize;
    for _ in 0..rounds {
        let docs: Vec<RawDocumentBuf> = raw
            .find(doc! {})
            .batch_size(1000)
            .await?
            .try_collect()
            .await?;
        seen += docs.len();
    }
    let finds = seen as f64 / start.elapsed().as_secs_f64();
    println!("finds (batchSize 1000, 1 KB docs, one connection): {finds:.0} docs/s");

    // _id range reads via min/max/hint (index range, not a scan).
    let start = Instant::now();
    let mut got = 0usize;
    for i in 0..200i64 {
        let lo = (i * 397) % (n as i64 - 500);
        let docs: Vec<RawDocumentBuf> = raw
            .find(doc! {})
            .min(doc! {"_id": lo})
            .max(doc! {"_id": lo + 500})
            .hint(mongodb::options::Hint::Keys(doc! {"_id": 1}))
            .batch_size(1000)
            .await?
            .try_collect()
            .await?;
        got += docs.len();
    }
    println!(
        "range reads (min/max/hint, 500 docs each): {:.0} docs/s",
        got as f64 / start.elapsed().as_secs_f64()
    );

    // Change-stream delivery: a writer inserts while a reader drains. The
    // reader has its own client so its awaiting getMore never blocks writes.
    let reader_client = mongodb::Client::with_uri_str(handle.uri()).await?;
    let ev_coll = reader_client
        .database("bench")
        .collection::<Document>("events");
    let mut stream = ev_coll
        .watch()
        .batch_size(1000)
        .max_await_time(Duration::from_millis(1000))
        .await?
        .with_type::<RawDocumentBuf>();
    let total = n.min(50_000) * 2;
    let wc = client.database("bench").collection::<Document>("events");
    let pad2 = pad.clone();
    let wc2 = wc.clone();
    let writer = tokio::spawn(async move {
        for b in 0..total / 1000 {
            let docs: Vec<Document> = (0..1000)
                .map(|i| doc! {"_id": (b * 1000 + i) as i64, "pad": &pad2})
                .collect();
            wc2.insert_many(docs).await?;
        }
        anyhow::Ok(())
    });
    let start = Instant::now();
    let mut count = 0usize;
    while count < total {
        if futures::StreamExt::next(&mut stream)
            .await
            .transpose()?
            .is_some()
        {
            count += 1;
        }
    }
    writer.await??;
    let evs = count as f64 / start.elapsed().as_secs_f64();
    println!("change-stream delivery: {evs:.0} events/s ({count} events)");

    // Commit-to-delivery latency: the reader is parked in an awaiting getMore
    // when each single insert commits.
    let rounds = 300usize;
    let reader = tokio::spawn(async move {
        let mut at = Vec::with_capacity(rounds);
        while at.len() < rounds {
            if futures::StreamExt::next(&mut stream)
                .await
                .transpose()?
                .is_some()
            {
                at.push(Instant::now());
            }
        }
        anyhow::Ok(at)
    });
    let mut sent = Vec::with_capacity(rounds);
    for i in 0..rounds as i64 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        sent.push(Instant::now());
        wc.insert_one(doc! {"_id": -1 - i}).await?;
    }
    let recv = reader.await??;
    let mut lat: Vec<Duration> = recv
        .iter()
        .zip(sent.iter())
        .map(|(r, s)| r.saturating_duration_since(*s))
        .collect();
    lat.sort();
    println!(
        "commit-to-getMore-reply latency (from insert start, insert round trip included): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    drop(reader_client);
    drop(client);
    handle.shutdown().await;
    Ok(())
}
