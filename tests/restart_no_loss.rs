//! Nothing is lost across restarts: a worker process is killed with SIGKILL
//! mid-stream and restarted, then stopped with SIGTERM and restarted again.
//! The topic must hold every sequence number with no gap; duplicates may only
//! come from the interval after the last offset flush before the SIGKILL,
//! and a graceful stop (final flush) must add none.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

fn seqnos(topic: &str) -> Vec<i64> {
    read_topic(topic)
        .iter()
        .map(|r| {
            let v = r.value_json();
            v.as_i64()
                .unwrap_or_else(|| panic!("value is not a bare seqno: {v}"))
        })
        .collect()
}

async fn wait_records(topic: &str, at_least: usize) {
    eventually(Duration::from_secs(60), || async move {
        try_read_topic(topic).map_or(0, |r| r.len()) >= at_least
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_loses_nothing() {
    let dir = temp_dir("restart");
    let cluster = Cluster::new();
    let port = 18000 + (std::process::id() % 1000) as u16;
    let listeners = format!("http://127.0.0.1:{port}");
    // schemas off: the value is the bare seqno.
    let props = cluster.write_props(
        &dir,
        &[
            ("listeners", &listeners),
            ("offset.flush.interval.ms", "1000"),
            ("value.converter.schemas.enable", "false"),
            ("key.converter.schemas.enable", "false"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let topic = unique("seq");
    let name = unique("verifiable");
    let throughput = 400;

    let mut w1 = spawn_worker(&props, &dir.join("w1.log"));
    eventually(Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http(&base, "GET", "/health", None, "application/json")
                .await
                .0
                == 200
    })
    .await;
    let create = json!({"name": name, "config": {
        "connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector",
        "tasks.max": "1", "topic": topic, "throughput": throughput.to_string()}});
    eventually(Duration::from_secs(30), || async {
        http(
            &base,
            "POST",
            "/connectors",
            Some(&create.to_string()),
            "application/json",
        )
        .await
        .0 == 201
    })
    .await;
    wait_records(&topic, 1500).await;

    // SIGKILL mid-stream.
    w1.kill().expect("kill -9");
    let _ = w1.wait();
    let before_kill = seqnos(&topic);
    let max_before = *before_kill.iter().max().expect("records before kill");

    let mut w2 = spawn_worker(&props, &dir.join("w2.log"));
    wait_records(&topic, before_kill.len() + 1500).await;
    sigterm(&mut w2);
    let after_term = seqnos(&topic);

    let mut w3 = spawn_worker(&props, &dir.join("w3.log"));
    wait_records(&topic, after_term.len() + 800).await;
    sigterm(&mut w3);

    let all = seqnos(&topic);
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &all {
        *counts.entry(*s).or_default() += 1;
    }
    let max = *counts.keys().last().unwrap();
    let missing: Vec<i64> = (0..=max).filter(|s| !counts.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "lost sequence numbers: {:?}",
        &missing[..missing.len().min(20)]
    );

    // Duplicates only from the unflushed interval before the SIGKILL: at most
    // (flush interval + flush latency) worth of records, all <= max_before.
    let dups: Vec<i64> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(s, _)| *s)
        .collect();
    assert!(
        dups.iter().all(|s| *s <= max_before),
        "duplicates after the SIGKILL window: {dups:?}"
    );
    assert!(
        dups.len() <= throughput * 3,
        "{} duplicates, more than ~3 flush intervals",
        dups.len()
    );
    // The SIGTERM restarts must add no duplicate: records produced by w2 and
    // w3 appear once.
    let max_after_term = *after_term.iter().max().unwrap();
    assert!(
        counts.range(max_before + 1..).all(|(_, c)| *c == 1),
        "a graceful restart duplicated records"
    );
    assert!(max > max_after_term, "the third run produced nothing new");
    eprintln!(
        "records {} max seqno {} duplicates {} (from the SIGKILL interval)",
        all.len(),
        max,
        dups.len()
    );
}

#[tokio::test]
async fn bad_worker_config_exits_2_with_one_line() {
    let dir = temp_dir("badcfg");
    let path = write_props(
        &dir,
        "w.properties",
        &[("bootstrap.servers".to_string(), "127.0.0.1:1".to_string())]
            .into_iter()
            .collect(),
    );
    let out = Command::new(connectd_bin())
        .arg("distributed")
        .arg(&path)
        .output()
        .expect("run connectd");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("group.id")
            || stderr.contains("key.converter")
            || stderr.contains("storage.topic"),
        "{stderr}"
    );

    let out = Command::new(connectd_bin())
        .arg("distributed")
        .arg(dir.join("missing.properties"))
        .output()
        .expect("run connectd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.properties"));
}
