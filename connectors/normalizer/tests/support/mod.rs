//! Test support: a **fake, in-memory `SinkRuntime`** (a stand-in for the
//! worker's sink runtime, which these tests cannot start), a driver that
//! delivers records the way the runtime contract describes, a seeded history
//! generator and the changelog checks.
//!
//! The fake keeps committed data only (a transaction applies atomically),
//! leaves one offset per transaction for the commit marker as Kafka does, and
//! can fail a commit (nothing applied) or "crash" right after applying one
//! (it panics, so the task is dropped before its local batch: the in-process
//! equivalent of `kill -9` between the Kafka commit and the local write).

#![allow(dead_code, clippy::unwrap_used, clippy::large_enum_variant)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connect_api::data::{Schema, SchemaType};
use connect_api::record::ConnectRecord;
use connect_api::{
    ConnectError, ConnectResult, ConsumedRecord, Headers, OutputRecord, PartitionChunk, Props,
    SinkRecord, SinkRuntime, SinkTask, SinkTaskContext, TopicPartition, TopicSpec, Value,
};
use connect_normalizer::NormalizerTask;
use tokio_util::sync::CancellationToken;

pub const INPUT: &str = "mongo.shop.orders";
pub const OUTPUT: &str = "mongo.shop.orders.changelog";
pub const CONNECTOR: &str = "norm";

#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub struct PartLog {
    pub records: Vec<Stored>,
    pub next: i64,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub topics: HashMap<String, Vec<PartLog>>,
    pub committed: HashMap<TopicPartition, i64>,
    pub seeks: HashMap<TopicPartition, i64>,
    pub fail_next_commit: bool,
    pub crash_after_commit: bool,
    pub created: Vec<TopicSpec>,
    pub transactions: usize,
    pub paused: Vec<TopicPartition>,
    /// Count output records instead of keeping them (throughput runs).
    pub discard_output: bool,
    pub discarded: usize,
}

/// TEST FAKE of the worker's sink runtime.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    pub state: Mutex<FakeState>,
}

impl FakeRuntime {
    pub fn new(input_partitions: usize) -> Arc<Self> {
        let rt = FakeRuntime::default();
        rt.state.lock().unwrap().topics.insert(
            INPUT.to_string(),
            (0..input_partitions).map(|_| PartLog::default()).collect(),
        );
        Arc::new(rt)
    }

    pub fn take_seek(&self, tp: &TopicPartition) -> Option<i64> {
        self.state.lock().unwrap().seeks.remove(tp)
    }

    pub fn committed_of(&self, tp: &TopicPartition) -> Option<i64> {
        self.state.lock().unwrap().committed.get(tp).copied()
    }

    /// Committed records of one partition of a topic.
    pub fn log(&self, topic: &str, partition: usize) -> Vec<Stored> {
        let st = self.state.lock().unwrap();
        st.topics
            .get(topic)
            .and_then(|p| p.get(partition))
            .map(|l| l.records.clone())
            .unwrap_or_default()
    }

    /// Log compaction: keeps the last record per key (offsets unchanged) and
    /// drops tombstones, as a compacted topic eventually looks.
    pub fn compact(&self, topic: &str) {
        let mut st = self.state.lock().unwrap();
        for part in st.topics.get_mut(topic).unwrap() {
            let mut last: HashMap<Option<Vec<u8>>, i64> = HashMap::new();
            for r in &part.records {
                last.insert(r.key.clone(), r.offset);
            }
            part.records
                .retain(|r| last.get(&r.key) == Some(&r.offset) && r.value.is_some());
        }
    }
}

#[async_trait]
impl SinkRuntime for FakeRuntime {
    fn seek(&self, offsets: HashMap<TopicPartition, i64>) {
        self.state.lock().unwrap().seeks.extend(offsets);
    }

    async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        let st = self.state.lock().unwrap();
        Ok(partitions
            .iter()
            .filter_map(|tp| st.committed.get(tp).map(|o| (tp.clone(), *o)))
            .collect())
    }

    fn pause(&self, partitions: &[TopicPartition]) {
        self.state
            .lock()
            .unwrap()
            .paused
            .extend_from_slice(partitions);
    }

    fn resume(&self, partitions: &[TopicPartition]) {
        self.state
            .lock()
            .unwrap()
            .paused
            .retain(|p| !partitions.contains(p));
    }

    async fn ensure_topics(&self, topics: &[TopicSpec]) -> ConnectResult<()> {
        let mut st = self.state.lock().unwrap();
        for t in topics {
            st.created.push(t.clone());
            let n = t.partitions.unwrap_or(1) as usize;
            st.topics
                .entry(t.name.clone())
                .or_insert_with(|| (0..n).map(|_| PartLog::default()).collect());
        }
        Ok(())
    }

    async fn commit_transaction(
        &self,
        records: Vec<OutputRecord>,
        offsets: HashMap<TopicPartition, i64>,
    ) -> ConnectResult<()> {
        let crash = {
            let mut st = self.state.lock().unwrap();
            if std::mem::take(&mut st.fail_next_commit) {
                return Err(ConnectError::retriable("fake: transaction aborted"));
            }
            // Validate first so that a bad record aborts everything.
            for r in &records {
                let parts = st
                    .topics
                    .get(&r.topic)
                    .ok_or_else(|| ConnectError::fatal(format!("fake: no topic {}", r.topic)))?;
                let p = r.partition.unwrap_or(0) as usize;
                if p >= parts.len() {
                    return Err(ConnectError::fatal(format!(
                        "fake: {} has no partition {p}",
                        r.topic
                    )));
                }
            }
            let mut touched = std::collections::HashSet::new();
            if st.discard_output {
                st.discarded += records.len();
                st.committed.extend(offsets);
                return Ok(());
            }
            for r in records {
                let p = r.partition.unwrap_or(0) as usize;
                let log = &mut st.topics.get_mut(&r.topic).unwrap()[p];
                let offset = log.next;
                log.next += 1;
                log.records.push(Stored {
                    offset,
                    key: r.key,
                    value: r.value,
                });
                touched.insert((r.topic, p));
            }
            // The commit marker takes an offset in every written partition.
            for (t, p) in touched {
                st.topics.get_mut(&t).unwrap()[p].next += 1;
            }
            st.committed.extend(offsets);
            st.transactions += 1;
            std::mem::take(&mut st.crash_after_commit)
        };
        if crash {
            panic!("fake runtime: simulated crash after the transaction committed");
        }
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> ConnectResult<Option<i32>> {
        let st = self.state.lock().unwrap();
        Ok(st.topics.get(topic).map(|p| p.len() as i32))
    }

    async fn read_partition(
        &self,
        tp: &TopicPartition,
        from: i64,
        max_records: usize,
    ) -> ConnectResult<PartitionChunk> {
        let st = self.state.lock().unwrap();
        let Some(log) = st
            .topics
            .get(&tp.topic)
            .and_then(|p| p.get(tp.partition as usize))
        else {
            return Ok(PartitionChunk::default());
        };
        let records: Vec<ConsumedRecord> = log
            .records
            .iter()
            .filter(|r| r.offset >= from)
            .take(max_records)
            .map(|r| ConsumedRecord {
                offset: r.offset,
                key: r.key.clone(),
                value: r.value.clone(),
            })
            .collect();
        let next_offset = if records.len() < max_records {
            log.next
        } else {
            records.last().map_or(log.next, |r| r.offset + 1)
        };
        Ok(PartitionChunk {
            records,
            next_offset,
            end_offset: log.next,
        })
    }
}

/// Deterministic generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One input record as the MongoDB source would write it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    /// `None`: tombstone.
    pub doc: Option<String>,
    pub snapshot: bool,
}

pub fn key_json(k: u64) -> String {
    format!("{{\"_id\": {k}}}")
}

/// A history with inserts, updates, identical updates, deletes, re-inserts
/// and deletes of unknown keys; the first `snapshot` changes are snapshot
/// copies.
pub fn history(rng: &mut Rng, keys: u64, len: usize, snapshot: usize) -> Vec<Change> {
    let mut live: HashMap<u64, String> = HashMap::new();
    let mut out = Vec::with_capacity(len);
    let mut version = 0u64;
    for i in 0..len {
        let is_snapshot = i < snapshot;
        let k = rng.below(keys);
        let roll = rng.below(100);
        let doc = if is_snapshot {
            version += 1;
            Some(format!(
                "{{\"_id\": {k}, \"v\": {version}, \"name\": \"n{}\"}}",
                rng.below(5)
            ))
        } else if roll < 15 {
            // delete: of a live key or (sometimes) an unknown one
            None
        } else if roll < 30 && live.contains_key(&k) {
            // identical re-write of the current document
            live.get(&k).cloned()
        } else {
            version += 1;
            Some(format!(
                "{{\"_id\": {k}, \"v\": {version}, \"name\": \"n{}\", \"tags\": [{}]}}",
                rng.below(5),
                rng.below(3)
            ))
        };
        match &doc {
            Some(d) => {
                live.insert(k, d.clone());
            }
            None => {
                live.remove(&k);
            }
        }
        out.push(Change {
            key: key_json(k),
            doc,
            snapshot: is_snapshot,
        });
    }
    out
}

/// Murmur-free stand-in for the producer partitioner: stable per key.
pub fn partition_of(key: &str, partitions: usize) -> usize {
    key.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) as usize
        % partitions
}

fn string_schema() -> Option<connect_api::SchemaRef> {
    Some(Schema::primitive(SchemaType::String, true))
}

/// The input topic as sink records, per partition. Offsets step by 2 to
/// leave room for transaction markers, as a transactional source would.
pub fn input_records(changes: &[Change], partitions: usize) -> Vec<Vec<SinkRecord>> {
    let mut parts: Vec<Vec<SinkRecord>> = (0..partitions).map(|_| Vec::new()).collect();
    for (i, c) in changes.iter().enumerate() {
        let p = partition_of(&c.key, partitions);
        let offset = parts[p].len() as i64 * 2;
        let mut headers = Headers::new();
        let s = || Some(Schema::primitive(SchemaType::String, false));
        headers.add("mongodb.db", s(), Value::String("shop".into()));
        headers.add("mongodb.coll", s(), Value::String("orders".into()));
        headers.add(
            "mongodb.source",
            s(),
            Value::String(if c.snapshot { "snapshot" } else { "stream" }.into()),
        );
        if !c.snapshot {
            headers.add(
                "mongodb.cluster.time",
                s(),
                Value::String(format!(
                    "Timestamp({}, {})",
                    1_700_000_000 + i as i64,
                    i % 7 + 1
                )),
            );
        }
        parts[p].push(SinkRecord {
            record: ConnectRecord {
                topic: INPUT.to_string(),
                kafka_partition: Some(p as i32),
                key_schema: string_schema(),
                key: Value::String(c.key.clone()),
                value_schema: string_schema(),
                value: c.doc.clone().map(Value::String).unwrap_or(Value::Null),
                timestamp: Some(1_700_000_000_000 + i as i64),
                headers,
            },
            kafka_offset: offset,
            timestamp_type: 1,
            raw_key: Some(c.key.clone().into_bytes()),
            raw_value: c.doc.clone().map(String::into_bytes),
        });
    }
    parts
}

pub fn props(state_dir: &Path, extra: &[(&str, &str)]) -> Props {
    let mut p = Props::new();
    p.insert("topics".into(), INPUT.into());
    p.insert("state.dir".into(), state_dir.display().to_string());
    for (k, v) in extra {
        p.insert((*k).into(), (*v).into());
    }
    p
}

pub fn tps(partitions: usize) -> Vec<TopicPartition> {
    (0..partitions)
        .map(|p| TopicPartition {
            topic: INPUT.to_string(),
            partition: p as i32,
        })
        .collect()
}

pub async fn start_task(
    rt: &Arc<FakeRuntime>,
    props: &Props,
    partitions: usize,
) -> ConnectResult<NormalizerTask> {
    let mut task = NormalizerTask::default();
    let ctx = SinkTaskContext {
        connector: CONNECTOR.into(),
        task_id: 0,
        cancel: CancellationToken::new(),
        runtime: rt.clone(),
    };
    task.start(ctx, props.clone()).await?;
    task.open(&tps(partitions)).await?;
    Ok(task)
}

/// How a driven run ended.
pub enum Outcome {
    /// Every input record was delivered and the task is still alive.
    Done(NormalizerTask),
    /// The fake crashed the task after a commit.
    Crashed,
}

/// Delivers input the way the sink runtime contract says: from the seek
/// position (if the task asked for one), else from the committed offset;
/// after a failed `put`, from the committed offset again. `crash_pct` /
/// `abort_pct` inject crashes after commit and failed transactions.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    rt: &Arc<FakeRuntime>,
    task: NormalizerTask,
    input: &[Vec<SinkRecord>],
    rng: &mut Rng,
    max_batch: u64,
    crash_pct: u64,
    abort_pct: u64,
    stop_after_puts: Option<usize>,
) -> Outcome {
    drive_from(
        rt,
        task,
        input,
        rng,
        max_batch,
        crash_pct,
        abort_pct,
        stop_after_puts,
        &mut HashMap::new(),
    )
    .await
}

/// [`drive`] with the delivery positions kept by the caller, so that a run
/// can be continued on the same (simulated) consumer.
#[allow(clippy::too_many_arguments)]
pub async fn drive_from(
    rt: &Arc<FakeRuntime>,
    mut task: NormalizerTask,
    input: &[Vec<SinkRecord>],
    rng: &mut Rng,
    max_batch: u64,
    crash_pct: u64,
    abort_pct: u64,
    stop_after_puts: Option<usize>,
    pos: &mut HashMap<TopicPartition, i64>,
) -> Outcome {
    let parts = tps(input.len());
    let mut puts = 0usize;
    loop {
        for tp in &parts {
            if let Some(s) = rt.take_seek(tp) {
                pos.insert(tp.clone(), s);
            } else if !pos.contains_key(tp) {
                pos.insert(tp.clone(), rt.committed_of(tp).unwrap_or(0));
            }
        }
        let mut batch = Vec::new();
        for (i, tp) in parts.iter().enumerate() {
            let n = 1 + rng.below(max_batch) as usize;
            batch.extend(
                input[i]
                    .iter()
                    .filter(|r| r.kafka_offset >= pos[tp])
                    .take(n)
                    .cloned(),
            );
        }
        if batch.is_empty() || stop_after_puts.is_some_and(|n| puts >= n) {
            return Outcome::Done(task);
        }
        puts += 1;
        {
            let mut st = rt.state.lock().unwrap();
            st.crash_after_commit = rng.chance(crash_pct);
            st.fail_next_commit = !st.crash_after_commit && rng.chance(abort_pct);
        }
        let sent = batch.clone();
        let handle = tokio::spawn(async move {
            let r = task.put(&sent).await;
            (task, r)
        });
        match handle.await {
            Ok((t, Ok(()))) => {
                task = t;
                for r in &batch {
                    let tp = TopicPartition {
                        topic: r.record.topic.clone(),
                        partition: r.record.kafka_partition.unwrap(),
                    };
                    let e = pos.entry(tp).or_insert(0);
                    *e = (*e).max(r.kafka_offset + 1);
                }
            }
            Ok((t, Err(e))) => {
                assert!(e.is_retriable(), "unexpected put failure: {e}");
                task = t;
                // The runtime rewinds to the committed offsets.
                pos.clear();
            }
            Err(e) if e.is_panic() => {
                let mut st = rt.state.lock().unwrap();
                st.crash_after_commit = false;
                st.seeks.clear();
                return Outcome::Crashed;
            }
            Err(e) => panic!("put task failed: {e}"),
        }
    }
}

/// Runs the whole input through the normalizer, restarting the task after
/// every simulated crash, until everything is processed.
pub async fn run_to_end(
    rt: &Arc<FakeRuntime>,
    props: &Props,
    input: &[Vec<SinkRecord>],
    rng: &mut Rng,
    crash_pct: u64,
    abort_pct: u64,
) -> (NormalizerTask, usize) {
    let mut crashes = 0;
    loop {
        let task = start_task(rt, props, input.len()).await.unwrap();
        match drive(rt, task, input, rng, 6, crash_pct, abort_pct, None).await {
            Outcome::Done(t) => return (t, crashes),
            Outcome::Crashed => crashes += 1,
        }
    }
}

/// One changelog event, decoded from schemaless Debezium JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub key: Vec<u8>,
    pub op: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub input_offset: i64,
}

pub fn changelog(rt: &FakeRuntime, partition: usize) -> Vec<Ev> {
    rt.log(OUTPUT, partition)
        .into_iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.value.unwrap()).unwrap();
            Ev {
                key: r.key.unwrap(),
                op: v["op"].as_str().unwrap().to_string(),
                before: v["before"].clone(),
                after: v["after"].clone(),
                input_offset: v["source"]["offset"].as_i64().unwrap(),
            }
        })
        .collect()
}

/// What the normalizer must emit for one partition, from a plain map
/// (the contract of Flink's ChangelogNormalize, restated independently).
pub fn expected(input: &[SinkRecord]) -> Vec<Ev> {
    let mut state: HashMap<Vec<u8>, String> = HashMap::new();
    let mut out = Vec::new();
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    for r in input {
        let key = r.raw_key.clone().unwrap();
        let snapshot = r
            .record
            .headers
            .last_with_name("mongodb.source")
            .and_then(|h| h.value.as_str())
            == Some("snapshot");
        let ev = |op: &str, before: serde_json::Value, after: serde_json::Value| Ev {
            key: key.clone(),
            op: op.into(),
            before,
            after,
            input_offset: r.kafka_offset,
        };
        match (r.record.value.as_str(), state.get(&key).cloned()) {
            (Some(doc), None) => {
                out.push(ev(
                    if snapshot { "r" } else { "c" },
                    serde_json::Value::Null,
                    parse(doc),
                ));
                state.insert(key.clone(), doc.to_string());
            }
            (Some(doc), Some(old)) if old != doc => {
                out.push(ev("u", parse(&old), parse(doc)));
                state.insert(key.clone(), doc.to_string());
            }
            (Some(_), Some(_)) => {}
            (None, Some(old)) => {
                out.push(ev("d", parse(&old), serde_json::Value::Null));
                state.remove(&key);
            }
            (None, None) => {}
        }
    }
    out
}

/// The fold check, independent of any oracle: replays the changelog into a
/// map, checking each event against it, and returns the final table.
pub fn fold_changelog(events: &[Ev]) -> HashMap<Vec<u8>, serde_json::Value> {
    let mut table: HashMap<Vec<u8>, serde_json::Value> = HashMap::new();
    for e in events {
        match e.op.as_str() {
            "c" | "r" => {
                assert!(e.before.is_null(), "create with a before: {e:?}");
                assert!(
                    table.insert(e.key.clone(), e.after.clone()).is_none(),
                    "create of a live key: {e:?}"
                );
            }
            "u" => {
                let prev = table.insert(e.key.clone(), e.after.clone());
                assert_eq!(
                    prev.as_ref(),
                    Some(&e.before),
                    "update's before is not the previous after: {e:?}"
                );
                assert_ne!(e.before, e.after, "update without change: {e:?}");
            }
            "d" => {
                let prev = table.remove(&e.key);
                assert_eq!(
                    prev.as_ref(),
                    Some(&e.before),
                    "delete's before is not the previous after: {e:?}"
                );
                assert!(e.after.is_null());
            }
            other => panic!("unknown op {other}"),
        }
    }
    table
}

/// The input's final state: last document per key, deleted keys absent.
pub fn upsert_fold(input: &[SinkRecord]) -> HashMap<Vec<u8>, serde_json::Value> {
    let mut table = HashMap::new();
    for r in input {
        let key = r.raw_key.clone().unwrap();
        match r.record.value.as_str() {
            Some(doc) => {
                table.insert(key, serde_json::from_str(doc).unwrap());
            }
            None => {
                table.remove(&key);
            }
        }
    }
    table
}
