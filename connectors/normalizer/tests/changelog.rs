//! The normalizer end to end against a fake sink runtime (see
//! `support/mod.rs`: an in-memory stand-in for the worker's runtime, which
//! these tests cannot start). Real-broker tests with `kill -9` of the worker
//! belong with the runtime.

#![allow(clippy::unwrap_used)]

mod support;

/// The worker's allocator (see `src/main.rs`), for the throughput figure.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;

use connect_api::SinkTask;
use support::*;

const PARTITIONS: usize = 3;

/// Every partition's changelog equals the independent oracle record for
/// record, folds back to the input's final state, and every update's and
/// delete's `before` is the previous image of that key.
fn check_all(rt: &FakeRuntime, input: &[Vec<connect_api::SinkRecord>]) -> usize {
    let mut events = 0;
    for (p, part) in input.iter().enumerate() {
        let got = changelog(rt, p);
        let want = expected(part);
        assert_eq!(
            got.len(),
            want.len(),
            "partition {p}: event count (duplicate or gap)"
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "partition {p}, event {i}");
        }
        let table = fold_changelog(&got);
        assert_eq!(
            table,
            upsert_fold(part),
            "partition {p}: folded changelog != input final state"
        );
        events += got.len();
    }
    events
}

#[tokio::test]
async fn oracle_over_generated_histories() {
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let changes = history(&mut rng, 25, 600, 40);
        let input = input_records(&changes, PARTITIONS);
        let rt = FakeRuntime::new(PARTITIONS);
        let props = props(dir.path(), &[]);
        let (mut task, crashes) = run_to_end(&rt, &props, &input, &mut rng, 0, 0).await;
        assert_eq!(crashes, 0);
        let events = check_all(&rt, &input);
        assert!(events > 300, "seed {seed}: only {events} events");
        // Every op kind and every skip kind occurred.
        let ops: Vec<String> = (0..PARTITIONS)
            .flat_map(|p| changelog(&rt, p))
            .map(|e| e.op)
            .collect();
        for op in ["r", "c", "u", "d"] {
            assert!(ops.iter().any(|o| o == op), "seed {seed}: no {op}");
        }
        let m = connect_normalizer::metrics::progress(CONNECTOR).unwrap();
        assert!(m["skipped_identical"].as_u64().unwrap() > 0);
        assert!(m["skipped_unknown_delete"].as_u64().unwrap() > 0);
        task.stop().await.unwrap();
    }
}

#[tokio::test]
async fn output_keeps_key_bytes_partition_and_source_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(42);
    let changes = history(&mut rng, 10, 120, 5);
    let input = input_records(&changes, PARTITIONS);
    let rt = FakeRuntime::new(PARTITIONS);
    let (mut task, _) = run_to_end(&rt, &props(dir.path(), &[]), &input, &mut rng, 0, 0).await;
    for (p, part) in input.iter().enumerate() {
        let by_offset: HashMap<i64, &connect_api::SinkRecord> =
            part.iter().map(|r| (r.kafka_offset, r)).collect();
        for rec in rt.log(OUTPUT, p) {
            let v: serde_json::Value = serde_json::from_slice(rec.value.as_ref().unwrap()).unwrap();
            let src = &v["source"];
            assert_eq!(src["topic"], INPUT);
            assert_eq!(src["partition"], p as i64);
            let inp = by_offset[&src["offset"].as_i64().unwrap()];
            assert_eq!(rec.key, inp.raw_key, "key bytes must pass through");
            assert_eq!(src["db"], "shop");
            assert_eq!(src["collection"], "orders");
            let snapshot = inp
                .record
                .headers
                .last_with_name("mongodb.source")
                .unwrap()
                .value
                .as_str()
                == Some("snapshot");
            assert_eq!(src["snapshot"], if snapshot { "true" } else { "false" });
            if v["op"] == "r" {
                assert!(snapshot, "r only while snapshotting");
            }
            if snapshot {
                assert!(src["cluster_time"].is_null());
            } else {
                let ct = src["cluster_time"].as_str().unwrap();
                // The MongoDB source's form: `Timestamp(secs, inc)`.
                let secs: i64 = ct
                    .trim_start_matches("Timestamp(")
                    .split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(src["ts_ms"], secs * 1000);
                assert!(src["ord"].as_i64().unwrap() >= 1);
            }
            assert!(v["ts_ms"].as_i64().unwrap() > 1_600_000_000_000);
            assert!(v["transaction"].is_null());
        }
    }
    // Created topics: the changelog with delete policy and the input's
    // partition count; the compacted state topic.
    let created = rt.state.lock().unwrap().created.clone();
    let out = created.iter().find(|t| t.name == OUTPUT).unwrap();
    assert_eq!(out.partitions, Some(PARTITIONS as i32));
    assert!(out
        .configs
        .contains(&("cleanup.policy".into(), "delete".into())));
    let state = created
        .iter()
        .find(|t| t.name == format!("{CONNECTOR}.{INPUT}.state"))
        .unwrap();
    assert!(state
        .configs
        .contains(&("cleanup.policy".into(), "compact".into())));
    assert!(task.pre_commit(&HashMap::new()).await.unwrap().is_empty());
    task.stop().await.unwrap();
}

#[tokio::test]
async fn crash_between_commit_and_local_batch_replays_without_duplicate_or_gap() {
    for seed in 100..106u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let changes = history(&mut rng, 20, 500, 30);
        let input = input_records(&changes, PARTITIONS);
        let rt = FakeRuntime::new(PARTITIONS);
        let props = props(dir.path(), &[]);
        let (mut task, crashes) = run_to_end(&rt, &props, &input, &mut rng, 12, 8).await;
        assert!(crashes >= 3, "seed {seed}: only {crashes} crashes injected");
        check_all(&rt, &input);
        task.stop().await.unwrap();
    }
    let m = connect_normalizer::metrics::progress(CONNECTOR).unwrap();
    assert!(
        m["replayed"].as_u64().unwrap() > 0,
        "no crash gap was replayed: {m}"
    );
}

#[tokio::test]
async fn a_crash_gap_is_replayed_from_the_local_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let changes = history(&mut rng, 8, 60, 0);
    let input = input_records(&changes, 1);
    let rt = FakeRuntime::new(1);
    let props = props(dir.path(), &[]);
    let tp = &tps(1)[0];
    // Two clean batches, then a crash right after the third commits.
    let task = start_task(&rt, &props, 1).await.unwrap();
    let Outcome::Done(mut task) = drive(&rt, task, &input, &mut rng, 5, 0, 0, Some(2)).await else {
        panic!("no crash expected");
    };
    let (local, _) = task.local_state(tp).unwrap().unwrap();
    task.stop().await.unwrap();
    drop(task);
    let committed_before = rt.committed_of(tp).unwrap();
    assert_eq!(local, Some(committed_before));
    rt.state.lock().unwrap().crash_after_commit = true;
    let mut batch: Vec<_> = input[0]
        .iter()
        .filter(|r| r.kafka_offset >= committed_before)
        .take(4)
        .cloned()
        .collect();
    let mut t = start_task(&rt, &props, 1).await.unwrap();
    let crashed = tokio::spawn(async move { t.put(&std::mem::take(&mut batch)).await }).await;
    assert!(crashed.unwrap_err().is_panic());
    let committed = rt.committed_of(tp).unwrap();
    assert!(committed > committed_before);
    let out_len = changelog(&rt, 0).len();
    // Restart: the task asks to be fed from its local offset, not the
    // committed one, and re-applies the gap without emitting.
    rt.state.lock().unwrap().seeks.clear();
    let task = start_task(&rt, &props, 1).await.unwrap();
    assert_eq!(
        rt.state.lock().unwrap().seeks.get(tp),
        Some(&committed_before)
    );
    let mut pos = HashMap::new();
    let Outcome::Done(task) =
        drive_from(&rt, task, &input, &mut rng, 5, 0, 0, Some(1), &mut pos).await
    else {
        panic!("no crash expected")
    };
    // Nothing was emitted again for the gap.
    let after = changelog(&rt, 0);
    assert!(after[..out_len].iter().all(|e| e.input_offset < committed));
    assert!(after[out_len..].iter().all(|e| e.input_offset >= committed));
    let Outcome::Done(mut task) =
        drive_from(&rt, task, &input, &mut rng, 5, 0, 0, None, &mut pos).await
    else {
        panic!("no crash expected")
    };
    check_all(&rt, &input);
    task.stop().await.unwrap();
}

#[tokio::test]
async fn a_rewind_past_an_unfinished_gap_is_sought_back() {
    // Partition 0 has a crash gap; a failed transaction makes the runtime
    // rewind every partition to its committed offset while that gap is only
    // partly replayed. The task must seek back rather than skip the rest.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(5);
    let changes = history(&mut rng, 12, 300, 0);
    let input = input_records(&changes, 2);
    let rt = FakeRuntime::new(2);
    let props = props(dir.path(), &[]);
    let task = start_task(&rt, &props, 2).await.unwrap();
    let Outcome::Done(mut task) = drive(&rt, task, &input, &mut rng, 4, 0, 0, Some(3)).await else {
        panic!()
    };
    task.stop().await.unwrap();
    drop(task);
    // Crash after a commit that covers 6 more records of partition 0.
    let tp0 = &tps(2)[0];
    let c0 = rt.committed_of(tp0).unwrap();
    let batch: Vec<_> = input[0]
        .iter()
        .filter(|r| r.kafka_offset >= c0)
        .take(6)
        .cloned()
        .collect();
    rt.state.lock().unwrap().crash_after_commit = true;
    let mut t = start_task(&rt, &props, 2).await.unwrap();
    assert!(tokio::spawn(async move { t.put(&batch).await })
        .await
        .unwrap_err()
        .is_panic());
    rt.state.lock().unwrap().seeks.clear();
    // Restart; the first put replays 2 gap records of partition 0 and has new
    // records of partition 1, and its transaction fails.
    let mut task = start_task(&rt, &props, 2).await.unwrap();
    let seeks = rt.state.lock().unwrap().seeks.clone();
    let gap: Vec<_> = input[0]
        .iter()
        .filter(|r| r.kafka_offset >= seeks[tp0])
        .take(2)
        .cloned()
        .collect();
    let tp1 = &tps(2)[1];
    let new1: Vec<_> = input[1]
        .iter()
        .filter(|r| r.kafka_offset >= seeks[tp1])
        .take(2)
        .cloned()
        .collect();
    rt.state.lock().unwrap().fail_next_commit = true;
    rt.state.lock().unwrap().seeks.clear();
    let err = task.put(&[gap, new1].concat()).await.unwrap_err();
    assert!(err.is_retriable());
    // The runtime rewinds both partitions to their committed offsets, so
    // partition 0 is next delivered past its unfinished gap: nothing may be
    // emitted for it, and the task seeks back to its local offset.
    let l0 = seeks[tp0];
    let gap_end = input[0]
        .iter()
        .filter(|r| r.kafka_offset >= l0)
        .nth(1)
        .unwrap()
        .kafka_offset
        + 1;
    let c0_now = rt.committed_of(tp0).unwrap();
    assert!(gap_end < c0_now, "the gap must be unfinished");
    let out_before = changelog(&rt, 0).len();
    let past: Vec<_> = input[0]
        .iter()
        .filter(|r| r.kafka_offset >= c0_now)
        .take(3)
        .cloned()
        .collect();
    task.put(&past).await.unwrap();
    assert_eq!(changelog(&rt, 0).len(), out_before);
    assert_eq!(rt.state.lock().unwrap().seeks.get(tp0), Some(&gap_end));
    let mut pos: HashMap<_, _> = tps(2)
        .into_iter()
        .map(|tp| {
            let c = rt.committed_of(&tp).unwrap();
            (tp, c)
        })
        .collect();
    let Outcome::Done(mut task) =
        drive_from(&rt, task, &input, &mut rng, 4, 0, 0, None, &mut pos).await
    else {
        panic!()
    };
    check_all(&rt, &input);
    task.stop().await.unwrap();
}

#[tokio::test]
async fn deleted_local_state_is_rebuilt_from_the_compacted_state_topic() {
    for seed in 200..204u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let changes = history(&mut rng, 30, 700, 50);
        let input = input_records(&changes, PARTITIONS);
        let rt = FakeRuntime::new(PARTITIONS);
        let props = props(dir.path(), &[]);
        let task = start_task(&rt, &props, PARTITIONS).await.unwrap();
        let Outcome::Done(mut task) = drive(&rt, task, &input, &mut rng, 8, 0, 0, Some(40)).await
        else {
            panic!()
        };
        task.stop().await.unwrap();
        drop(task);
        // Lose the disk; compaction has run on the state topic meanwhile.
        std::fs::remove_dir_all(dir.path()).unwrap();
        rt.compact(&format!("{CONNECTOR}.{INPUT}.state"));
        let (mut task, crashes) = run_to_end(&rt, &props, &input, &mut rng, 5, 5).await;
        let _ = crashes;
        check_all(&rt, &input);
        task.stop().await.unwrap();
    }
    let m = connect_normalizer::metrics::progress(CONNECTOR).unwrap();
    assert!(m["restored_keys"].as_u64().unwrap() > 0, "{m}");
}

#[tokio::test]
async fn without_a_state_topic_missing_state_stops_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(9);
    let changes = history(&mut rng, 10, 100, 0);
    let input = input_records(&changes, 1);
    let rt = FakeRuntime::new(1);
    let props = props(dir.path(), &[("state.topic.enable", "false")]);
    let task = start_task(&rt, &props, 1).await.unwrap();
    let Outcome::Done(mut task) = drive(&rt, task, &input, &mut rng, 5, 0, 0, Some(3)).await else {
        panic!()
    };
    task.stop().await.unwrap();
    // No state topic was written or created.
    assert!(rt
        .state
        .lock()
        .unwrap()
        .topics
        .keys()
        .all(|t| !t.ends_with(".state")));
    drop(task);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let err = start_task(&rt, &props, 1)
        .await
        .err()
        .expect("must refuse to start");
    let msg = err.to_string();
    assert!(
        msg.contains("state.topic.enable=false") && msg.contains("state.rebuild.from.input"),
        "{msg}"
    );
}

#[tokio::test]
async fn rebuild_from_input_is_an_explicit_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let changes = history(&mut rng, 10, 150, 0);
    let input = input_records(&changes, 1);
    let rt = FakeRuntime::new(1);
    let props = props(
        dir.path(),
        &[
            ("state.topic.enable", "false"),
            ("state.rebuild.from.input", "true"),
        ],
    );
    let task = start_task(&rt, &props, 1).await.unwrap();
    let Outcome::Done(mut task) = drive(&rt, task, &input, &mut rng, 5, 0, 0, Some(5)).await else {
        panic!()
    };
    task.stop().await.unwrap();
    drop(task);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let (mut task, _) = run_to_end(&rt, &props, &input, &mut rng, 0, 0).await;
    check_all(&rt, &input);
    task.stop().await.unwrap();
}

/// Not a timed assertion: prints the task's own throughput (fold, store,
/// JSON envelope) with a runtime that drops the output, so the state store
/// can be measured without Kafka's share and noise. Run with
/// `cargo test --release -p connect-normalizer --test changelog throughput -- --ignored --nocapture`;
/// `THROUGHPUT_KEYS` / `THROUGHPUT_CHANGES` (default 20,000 / 200,000) and
/// `THROUGHPUT_PROPS` (`k=v,k=v` connector settings) change the run.
#[tokio::test]
#[ignore = "measurement, run by hand in release mode"]
async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let keys = env("THROUGHPUT_KEYS", 20_000);
    let n = env("THROUGHPUT_CHANGES", 200_000) as usize;
    let extra = std::env::var("THROUGHPUT_PROPS").unwrap_or_default();
    let extra: Vec<(&str, &str)> = extra
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let mut rng = Rng(1);
    // Poorly compressible padding, as in bench.py: with a repeated
    // character the store's LZ4 shrinks every block and its writes cost
    // far less than for real documents.
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let pads: Vec<String> = (0..997)
        .map(|_| {
            (0..900)
                .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len() as u64) as usize]))
                .collect()
        })
        .collect();
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            let k = rng.below(keys);
            let pad = &pads[i % pads.len()];
            Change {
                key: key_json(k),
                doc: Some(format!("{{\"_id\": {k}, \"v\": {i}, \"pad\": \"{pad}\"}}")),
                snapshot: false,
            }
        })
        .collect();
    let input = input_records(&changes, 1);
    let rt = FakeRuntime::new(1);
    rt.state.lock().unwrap().discard_output = true;
    let mut task = start_task(&rt, &props(dir.path(), &extra), 1)
        .await
        .unwrap();
    let cpu0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    for chunk in input[0].chunks(2_000) {
        task.put(chunk).await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let out = rt.state.lock().unwrap().discarded;
    eprintln!(
        "{n} records ({keys} keys, ~1 KB documents): {:.0} records/s, {:.1} CPU-s per million records, {out} output records (changelog + state topic)",
        n as f64 / secs,
        cpu / n as f64 * 1e6
    );
    task.stop().await.unwrap();
}

/// User + system CPU time of this process, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
