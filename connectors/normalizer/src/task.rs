//! The sink task: fold each input partition's records against its local
//! store and write the changelog exactly once.
//!
//! ## Exactly-once design
//!
//! Names: `L` = the next input offset recorded in a partition's local store,
//! `C` = the consumer group's committed offset for that partition.
//!
//! * Per `put` batch: fold every record (lookups go through an in-batch
//!   overlay, then the store), then hand the changelog records, the state
//!   topic records and the next input offsets to
//!   [`SinkRuntime::commit_transaction`]: one Kafka transaction, so output,
//!   state topic and `C` move together or not at all. Only after it returns
//!   `Ok` are the state changes and the new `L` written in one atomic local
//!   batch. The local store is therefore never ahead of Kafka and never needs
//!   a rollback; `pre_commit` returns nothing so the runtime never commits
//!   offsets outside a transaction.
//! * A crash (or a failed local write) after the commit leaves `L < C`. On
//!   `open` the task seeks to `L` and re-applies the records in `[L, C)` to
//!   state without emitting (their output is already committed), writing them
//!   locally before any new transaction. Records below `L` that are delivered
//!   again (the runtime rewinds to `C` after a failed transaction, which is
//!   `L` by then) are skipped.
//! * A failed transaction leaves the store untouched (`L == C`); the runtime
//!   rewinds delivery to `C` and the batch is folded again from the same
//!   state, producing the same records.
//! * A missing store (new machine, wiped disk, or `L > C` which can only
//!   follow an operator's offset reset) is rebuilt from the compacted state
//!   topic: it is written in the same transactions as the output, so its
//!   committed end is exactly the state at `C` even after compaction. Without
//!   a state topic the task refuses to start unless
//!   `state.rebuild.from.input` explicitly allows replaying the input from
//!   its beginning (never silently: a compacted input would give wrong
//!   `before` images).
//!
//! The replay of `[L, C)` assumes those input records still exist
//! uncompacted, which holds for the normal crash gap of one batch; set the
//! input topic's `min.compaction.lag.ms` well above the batch interval.
//!
//! Store calls are synchronous: fjall writes go to a memtable and an
//! unsynced journal, and a sink task runs on its own worker task.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use connect_api::{
    ConnectError, ConnectResult, OutputRecord, Props, SinkRecord, SinkTask, SinkTaskContext,
    TopicPartition, TopicSpec,
};
use tracing::{info, warn};

use crate::config::NormalizerConfig;
use crate::envelope::{EnvelopeEncoder, SourceInfo};
use crate::error::NormalizerError;
use crate::fold::{fold, Event, Input, StateChange};
use crate::metrics::{self, BatchCounts, Metrics};
use crate::store::{FjallStore, StateStore, Write};

/// Header the MongoDB source sets to `snapshot` while copying existing data.
pub const SOURCE_HEADER: &str = "mongodb.source";
pub const CLUSTER_TIME_HEADER: &str = "mongodb.cluster.time";
pub const DB_HEADER: &str = "mongodb.db";
pub const COLL_HEADER: &str = "mongodb.coll";
/// Records per `read_partition` call while restoring from the state topic,
/// and per local write batch: bounds memory during a restore.
const RESTORE_CHUNK: usize = 10_000;

/// An input record's key bytes and fold input.
type KeyedInput = (Vec<u8>, Input<Vec<u8>>);

struct PartitionState {
    store: Box<dyn StateStore>,
    /// `L`: the next input offset the store covers.
    next_offset: Option<i64>,
    /// `C` while `[L, C)` is being replayed silently.
    replay_until: Option<i64>,
    /// The `L` this task last re-sought to because delivery skipped part of
    /// the gap (see `put`).
    resought_at: Option<i64>,
}

struct Running {
    ctx: SinkTaskContext,
    cfg: NormalizerConfig,
    encoder: EnvelopeEncoder,
    metrics: Arc<Metrics>,
}

/// The normalizer's sink task.
#[derive(Default)]
pub struct NormalizerTask {
    running: Option<Running>,
    partitions: HashMap<TopicPartition, PartitionState>,
    /// Input topics whose changelog and state topics were ensured.
    topics_ready: HashSet<String>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn header_str<'a>(r: &'a SinkRecord, key: &str) -> Option<&'a str> {
    r.record
        .headers
        .last_with_name(key)
        .and_then(|h| h.value.as_str())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn tp_name(tp: &TopicPartition) -> String {
    format!("{}-{}", tp.topic, tp.partition)
}

impl NormalizerTask {
    fn running(&self) -> ConnectResult<&Running> {
        self.running
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("normalizer task used before start()"))
    }

    /// Where a partition's store lives.
    pub fn store_path(state_dir: &str, connector: &str, tp: &TopicPartition) -> PathBuf {
        PathBuf::from(state_dir)
            .join(sanitize(connector))
            .join(format!("{}-{}", sanitize(&tp.topic), tp.partition))
    }

    async fn ensure_topics(&mut self, input: &str) -> ConnectResult<()> {
        if self.topics_ready.contains(input) {
            return Ok(());
        }
        let run = self.running()?;
        let partitions = match run.cfg.output_partitions {
            Some(n) => Some(n),
            None => match run.ctx.runtime.partition_count(input).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(topic = input, error = %e, "cannot read the input's partition count; new changelog and state topics get the broker default, which must not be smaller");
                    None
                }
            },
        };
        let mut specs = vec![TopicSpec {
            name: run.cfg.output_topic_for(input),
            partitions,
            replication_factor: run.cfg.output_replication,
            // Compaction would drop the before/after history consumers need.
            configs: vec![("cleanup.policy".into(), "delete".into())],
        }];
        if let Some(state) = run.cfg.state_topic_for(&run.ctx.connector, input) {
            specs.push(TopicSpec {
                name: state,
                partitions,
                replication_factor: run.cfg.state_replication,
                configs: vec![("cleanup.policy".into(), "compact".into())],
            });
        }
        run.ctx.runtime.ensure_topics(&specs).await?;
        self.topics_ready.insert(input.to_string());
        Ok(())
    }

    /// Opens a partition's store and decides how to catch up (module docs).
    async fn open_partition(
        &self,
        tp: &TopicPartition,
        committed: Option<i64>,
    ) -> ConnectResult<PartitionState> {
        let run = self.running()?;
        let path = Self::store_path(&run.cfg.state_dir, &run.ctx.connector, tp);
        let store: Box<dyn StateStore> =
            Box::new(FjallStore::open(&path, run.cfg.state_cache_bytes)?);
        let local = store.next_offset()?;
        let mut ps = PartitionState {
            store,
            next_offset: local,
            replay_until: None,
            resought_at: None,
        };
        match (local, committed) {
            (Some(l), None) => {
                // Group offsets expired or were deleted: the store is the
                // only record of progress.
                warn!(partition = %tp_name(tp), local = l, "no committed offset; resuming from the local state");
                run.ctx.runtime.seek(HashMap::from([(tp.clone(), l)]));
            }
            (Some(l), Some(c)) if l == c => {
                run.ctx.runtime.seek(HashMap::from([(tp.clone(), c)]));
            }
            (Some(l), Some(c)) if l < c => {
                info!(partition = %tp_name(tp), local = l, committed = c, "local state behind the committed offset; replaying the gap without emitting");
                ps.replay_until = Some(c);
                run.ctx.runtime.seek(HashMap::from([(tp.clone(), l)]));
            }
            (Some(l), Some(c)) => {
                warn!(partition = %tp_name(tp), local = l, committed = c, "local state ahead of the committed offset (offsets reset?); rebuilding it");
                self.rebuild(tp, &mut ps, c).await?;
            }
            (None, Some(c)) => {
                info!(partition = %tp_name(tp), committed = c, "no local state; rebuilding it");
                self.rebuild(tp, &mut ps, c).await?;
            }
            (None, None) => {
                // A first start, or a rebuild that never finished: start empty.
                ps.store.clear()?;
                self.check_state_topic_empty(tp).await?;
            }
        }
        Ok(ps)
    }

    /// Without committed offsets the state topic must be empty too, or the
    /// group's offsets were lost and starting empty would emit wrong events.
    async fn check_state_topic_empty(&self, tp: &TopicPartition) -> ConnectResult<()> {
        let run = self.running()?;
        let Some(topic) = run.cfg.state_topic_for(&run.ctx.connector, &tp.topic) else {
            return Ok(());
        };
        let stp = TopicPartition {
            topic,
            partition: tp.partition,
        };
        match run.ctx.runtime.read_partition(&stp, 0, 1).await {
            Ok(chunk) if !chunk.records.is_empty() => Err(NormalizerError::Recovery {
                partition: tp_name(tp),
                message: format!(
                    "the state topic {} holds state but the consumer group has no committed offset for this partition (offsets expired or reset?); restore the group's offsets or delete the state topic to start over",
                    stp.topic
                ),
            }
            .into()),
            Ok(_) => Ok(()),
            Err(e) => {
                warn!(partition = %tp_name(tp), error = %e, "cannot check that the state topic is empty");
                Ok(())
            }
        }
    }

    /// Replaces the store's content with the state at `committed`.
    async fn rebuild(
        &self,
        tp: &TopicPartition,
        ps: &mut PartitionState,
        committed: i64,
    ) -> ConnectResult<()> {
        let run = self.running()?;
        ps.store.clear()?;
        ps.next_offset = None;
        if let Some(topic) = run.cfg.state_topic_for(&run.ctx.connector, &tp.topic) {
            let stp = TopicPartition {
                topic,
                partition: tp.partition,
            };
            let mut from = 0;
            let mut keys = 0u64;
            loop {
                let chunk = run
                    .ctx
                    .runtime
                    .read_partition(&stp, from, RESTORE_CHUNK)
                    .await?;
                let writes: Vec<Write> = chunk
                    .records
                    .into_iter()
                    .filter_map(|r| r.key.map(|k| (k, r.value)))
                    .collect();
                keys += writes.len() as u64;
                // No offset until the end: an interrupted restore leaves a
                // store without offset, which the next open rebuilds.
                ps.store.write(&writes, None)?;
                if chunk.next_offset <= from && chunk.next_offset < chunk.end_offset {
                    return Err(ConnectError::fatal(format!(
                        "reading {}-{} made no progress at offset {from}",
                        stp.topic, stp.partition
                    )));
                }
                from = chunk.next_offset;
                if from >= chunk.end_offset {
                    break;
                }
            }
            ps.store.write(&[], Some(committed))?;
            ps.next_offset = Some(committed);
            run.metrics
                .restored_keys
                .fetch_add(keys, std::sync::atomic::Ordering::Relaxed);
            info!(partition = %tp_name(tp), state_topic = %stp.topic, records = keys, committed, "state restored from the state topic");
            run.ctx
                .runtime
                .seek(HashMap::from([(tp.clone(), committed)]));
            Ok(())
        } else if run.cfg.rebuild_from_input {
            warn!(partition = %tp_name(tp), committed, "no state topic: replaying the input from its beginning without emitting (state.rebuild.from.input=true)");
            ps.replay_until = Some(committed);
            run.ctx.runtime.seek(HashMap::from([(tp.clone(), 0)]));
            Ok(())
        } else {
            Err(NormalizerError::Recovery {
                partition: tp_name(tp),
                message: format!(
                    "local state is missing or invalid, the group has committed offset {committed}, and state.topic.enable=false; rebuilding from the (possibly compacted) input topic could emit wrong 'before' images, so set state.rebuild.from.input=true only if no input record was ever compacted or deleted"
                ),
            }
            .into())
        }
    }

    /// The key bytes and fold input of a record; `None` when it has no key.
    fn input_of(encoder: &EnvelopeEncoder, r: &SinkRecord) -> ConnectResult<Option<KeyedInput>> {
        let Some(key) = r.raw_key.clone() else {
            return Ok(None);
        };
        if r.record.value.is_null() {
            return Ok(Some((key, Input::Delete)));
        }
        let doc = encoder.encode_doc(r.record.value_schema.as_ref(), &r.record.value)?;
        let snapshot = header_str(r, SOURCE_HEADER) == Some("snapshot");
        Ok(Some((key, Input::Upsert { doc, snapshot })))
    }
}

fn source_info(r: &SinkRecord, tp: &TopicPartition, snapshot: bool) -> SourceInfo {
    SourceInfo {
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset: r.kafka_offset,
        timestamp: r.record.timestamp,
        snapshot,
        db: header_str(r, DB_HEADER).map(str::to_string),
        collection: header_str(r, COLL_HEADER).map(str::to_string),
        cluster_time: header_str(r, CLUSTER_TIME_HEADER).map(str::to_string),
    }
}

/// Which list of a [`PartitionBatch`] holds a key's latest change.
enum Latest {
    Replay(usize),
    Write(usize),
}

/// What one partition's part of a batch produced.
#[derive(Default)]
struct PartitionBatch {
    /// Changes of records in `[L, C)`: already committed, written at once.
    replay: Vec<Write>,
    replay_next: Option<i64>,
    replayed: u64,
    /// Changes of new records: written after the transaction commits.
    writes: Vec<Write>,
    next: Option<i64>,
    /// Delivery skipped part of `[L, C)`: seek back to this `L` and ignore
    /// the partition's remaining records in this batch.
    rewind: Option<i64>,
    /// The gap ended early: the input no longer has its last records.
    gap_closed: bool,
    /// Where the latest change of a key within this batch is (ahead of
    /// the store): an index into `replay` or `writes`, so that a document is
    /// not copied once more for the rare key that changes twice in a batch.
    overlay: HashMap<Vec<u8>, Latest>,
}

#[async_trait]
impl SinkTask for NormalizerTask {
    async fn start(&mut self, ctx: SinkTaskContext, props: Props) -> ConnectResult<()> {
        let cfg = NormalizerConfig::parse(&props)?;
        let encoder =
            EnvelopeEncoder::new(&ctx.connector, cfg.format, cfg.document, &cfg.avro_props)?;
        let metrics = metrics::for_connector(&ctx.connector);
        self.running = Some(Running {
            ctx,
            cfg,
            encoder,
            metrics,
        });
        Ok(())
    }

    async fn open(&mut self, partitions: &[TopicPartition]) -> ConnectResult<()> {
        for tp in partitions {
            self.ensure_topics(&tp.topic).await?;
        }
        let committed = self.running()?.ctx.runtime.committed(partitions).await?;
        for tp in partitions {
            if self.partitions.contains_key(tp) {
                continue;
            }
            let ps = self.open_partition(tp, committed.get(tp).copied()).await?;
            self.partitions.insert(tp.clone(), ps);
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let run = self
            .running
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("normalizer task used before start()"))?;
        let now = now_ns();
        let mut outputs: Vec<OutputRecord> = Vec::new();
        let mut counts = BatchCounts::default();
        // Per input partition of the batch, in order of first appearance; a
        // batch holds few partitions, so a scan beats hashing every record's
        // topic name.
        let mut batches: Vec<(TopicPartition, &PartitionState, PartitionBatch)> = Vec::new();
        // Output and state topic names per input topic.
        let mut names: HashMap<String, (String, Option<String>)> = HashMap::new();
        for r in records {
            let partition = r.record.kafka_partition.ok_or_else(|| {
                ConnectError::fatal(format!(
                    "record at offset {} of {} has no partition",
                    r.kafka_offset, r.record.topic
                ))
            })?;
            let at = batches
                .iter()
                .position(|(tp, _, _)| tp.partition == partition && tp.topic == r.record.topic);
            let at = match at {
                Some(i) => i,
                None => {
                    let tp = TopicPartition {
                        topic: r.record.topic.clone(),
                        partition,
                    };
                    let ps = self.partitions.get(&tp).ok_or_else(|| {
                        ConnectError::fatal(format!(
                            "record for {} which was not opened",
                            tp_name(&tp)
                        ))
                    })?;
                    batches.push((tp, ps, PartitionBatch::default()));
                    batches.len() - 1
                }
            };
            let (tp, ps, batch) = &mut batches[at];
            let (tp, ps) = (&*tp, &**ps);
            let off = r.kafka_offset;
            // Already applied (redelivered after a rewind).
            if batch.rewind.is_some()
                || ps.next_offset.is_some_and(|l| off < l)
                || batch.next.is_some_and(|n| off < n)
                || batch.replay_next.is_some_and(|n| off < n)
            {
                continue;
            }
            // The last record of a gap is at `C - 1` (C was committed as its
            // offset + 1), so a record at or past `C` before the gap is done
            // means delivery skipped part of it: the runtime rewound to `C`
            // after a failed transaction of another partition, or ignored
            // the seek. Seek back once; if delivery again starts past `C`,
            // the rest of the gap is gone from the input (compacted or
            // deleted) and there is nothing left to replay.
            if let Some(c) = ps.replay_until {
                let done = batch.gap_closed || batch.replay_next.is_some_and(|n| n >= c);
                if off >= c && !done {
                    let l = batch.replay_next.or(ps.next_offset).unwrap_or(0);
                    if ps.resought_at == Some(l) {
                        warn!(partition = %tp_name(tp), local = l, committed = c, "the rest of the replay gap is no longer in the input; continuing from the committed offset");
                        batch.gap_closed = true;
                    } else {
                        batch.rewind = Some(l);
                        continue;
                    }
                }
            }
            let replaying = ps.replay_until.is_some_and(|c| off < c) && !batch.gap_closed;
            let Some((key, input)) = Self::input_of(&run.encoder, r)? else {
                if !replaying {
                    counts.skipped_null_key += 1;
                    warn!(partition = %tp_name(tp), offset = off, "record without key bytes skipped: it cannot be normalized");
                    batch.next = Some(off + 1);
                } else {
                    batch.replay_next = Some(off + 1);
                }
                continue;
            };
            let snapshot = matches!(input, Input::Upsert { snapshot: true, .. });
            let stored = match batch.overlay.get(&key) {
                Some(Latest::Replay(i)) => batch.replay[*i].1.clone(),
                Some(Latest::Write(i)) => batch.writes[*i].1.clone(),
                None => ps.store.get(&key)?,
            };
            let (change, event) = fold(stored, input);
            let write = match change {
                StateChange::Put(d) => Some((key.clone(), Some(d))),
                StateChange::Remove => Some((key.clone(), None)),
                StateChange::Keep => None,
            };
            if replaying {
                batch.replayed += 1;
                batch.replay_next = Some(off + 1);
                if let Some(w) = write {
                    batch
                        .overlay
                        .insert(key, Latest::Replay(batch.replay.len()));
                    batch.replay.push(w);
                }
                continue;
            }
            batch.next = Some(off + 1);
            match &event {
                Event::Create { snapshot: true, .. } => counts.read += 1,
                Event::Create { .. } => counts.created += 1,
                Event::Update { .. } => counts.updated += 1,
                Event::Delete { .. } => counts.deleted += 1,
                Event::SkippedIdentical => counts.skipped_identical += 1,
                Event::SkippedUnknownDelete => {
                    counts.skipped_unknown_delete += 1;
                    warn!(partition = %tp_name(tp), offset = off, "delete of a key with no stored document ignored");
                }
            }
            let (output_topic, state_topic) = names
                .entry(tp.topic.clone())
                .or_insert_with(|| {
                    (
                        run.cfg.output_topic_for(&tp.topic),
                        run.cfg.state_topic_for(&run.ctx.connector, &tp.topic),
                    )
                })
                .clone();
            let src = source_info(r, tp, snapshot);
            if let Some(value) = run.encoder.encode(&output_topic, &event, &src, now).await? {
                outputs.push(OutputRecord {
                    topic: output_topic.clone(),
                    partition: Some(partition),
                    key: Some(key.clone()),
                    value: Some(value),
                    headers: Vec::new(),
                });
                if run.cfg.tombstones && matches!(event, Event::Delete { .. }) {
                    outputs.push(OutputRecord {
                        topic: output_topic,
                        partition: Some(partition),
                        key: Some(key.clone()),
                        value: None,
                        headers: Vec::new(),
                    });
                }
            }
            if let Some(w) = write {
                if let Some(state_topic) = state_topic {
                    outputs.push(OutputRecord {
                        topic: state_topic,
                        partition: Some(partition),
                        key: Some(w.0.clone()),
                        value: w.1.clone(),
                        headers: Vec::new(),
                    });
                }
                batch.overlay.insert(key, Latest::Write(batch.writes.len()));
                batch.writes.push(w);
            }
        }

        // 1. The replayed part is already in committed output: store it now,
        //    so that a failed transaction below leaves `L == C`.
        let mut batches: Vec<(TopicPartition, PartitionBatch)> =
            batches.into_iter().map(|(tp, _, b)| (tp, b)).collect();
        for (tp, batch) in &mut batches {
            let Some(ps) = self.partitions.get_mut(tp) else {
                continue;
            };
            if let Some(next) = batch.replay_next {
                ps.store
                    .write(&std::mem::take(&mut batch.replay), Some(next))?;
                ps.next_offset = Some(next);
                if ps.replay_until.is_some_and(|c| next >= c) {
                    info!(partition = %tp_name(tp), next, "replay complete");
                    ps.replay_until = None;
                }
                run.metrics
                    .replayed
                    .fetch_add(batch.replayed, std::sync::atomic::Ordering::Relaxed);
            }
            if batch.gap_closed {
                ps.replay_until = None;
            }
            if let Some(l) = batch.rewind {
                info!(partition = %tp_name(tp), local = l, "delivery skipped part of the replay gap; seeking back");
                ps.resought_at = Some(l);
                run.ctx.runtime.seek(HashMap::from([(tp.clone(), l)]));
            }
        }

        // 2. Output, state topic and offsets in one Kafka transaction.
        let offsets: HashMap<TopicPartition, i64> = batches
            .iter()
            .filter_map(|(tp, b)| b.next.map(|n| (tp.clone(), n)))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        run.ctx.runtime.commit_transaction(outputs, offsets).await?;

        // 3. Only now the local batch: state changes and `L`, atomically.
        for (tp, batch) in batches {
            if let (Some(next), Some(ps)) = (batch.next, self.partitions.get_mut(&tp)) {
                ps.store.write(&batch.writes, Some(next))?;
                ps.next_offset = Some(next);
            }
        }
        run.metrics.add(&counts);
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        _current: &HashMap<TopicPartition, i64>,
    ) -> ConnectResult<HashMap<TopicPartition, i64>> {
        // Offsets are committed inside each transaction, never separately.
        Ok(HashMap::new())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> ConnectResult<()> {
        for tp in partitions {
            if let Some(ps) = self.partitions.remove(tp) {
                ps.store.flush()?;
            }
        }
        Ok(())
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        let open: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        self.close(&open).await
    }
}

impl NormalizerTask {
    /// The local state of an open partition: (`L`, number of keys). For tests
    /// and diagnostics.
    pub fn local_state(&self, tp: &TopicPartition) -> ConnectResult<Option<(Option<i64>, usize)>> {
        match self.partitions.get(tp) {
            Some(ps) => Ok(Some((ps.next_offset, ps.store.key_count()?))),
            None => Ok(None),
        }
    }
}
