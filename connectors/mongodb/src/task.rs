//! The source task: a phase machine (snapshot chunks → wait for the other
//! tasks' chunks → stream) run by one named background task that hands
//! batches to `poll` through a bounded channel.
//!
//! Why a background task: a MongoDB getMore can wait `poll.await.time.ms`,
//! and `poll` must be cancel-safe (the runtime drops it on stop or pause).
//! Receiving from a channel is cancel-safe; a half-finished getMore is not.
//! The channel holds at most `startup.mode.copy.existing.queue.size`
//! documents' worth of batches, so a slow producer pauses the readers.
//!
//! Task 0 also streams; other tasks (`tasks.max` > 1) only copy chunks and
//! then idle. The stream cannot start before every chunk is finished,
//! because it needs each chunk's high watermark to drop the events that
//! chunk already reflects; task 0 reads the other tasks' chunk offsets until
//! all are done.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connect_api::config::Props;
use connect_api::error::{ConnectError, ConnectResult};
use connect_api::record::{OffsetMap, SourceRecord};
use connect_api::{CommitRequester, OffsetReader, SourceTask, SourceTaskContext};
use mongodb::bson::{Document, RawDocument, Timestamp};
use mongodb::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bsonx;
use crate::config::{
    ExpiredPolicy, Handoff, MongoConfig, Startup, TASK_CHUNKS, TASK_INDEX, TASK_PLAN,
};
use crate::error::MongoError;
use crate::handoff;
use crate::offsets;
use crate::plan::{self, ChunkSpec, Plan};
use crate::progress;
use crate::records;
use crate::spawn::spawn_named;
use crate::stream::{self, Ended, Item, Skip, SkipRange, Start, Streamer};

/// Task indexes whose snapshot markers are read at start (tasks.max above
/// this loses the partly-published detection for the extra tasks' chunks).
const MAX_TASK_MARKERS: u32 = 64;

#[derive(Default)]
pub struct MongoSourceTask {
    rx: Option<mpsc::Receiver<Item>>,
    cancel: Option<CancellationToken>,
    handle: Option<JoinHandle<()>>,
    connector: String,
    task_id: u32,
}

pub async fn connect(cfg: &MongoConfig) -> Result<Client, MongoError> {
    let mut opts = mongodb::options::ClientOptions::parse(&cfg.uri)
        .await
        .map_err(|e| MongoError::mongo("parsing connection.uri", e))?;
    opts.app_name
        .get_or_insert_with(|| format!("connectd-{}", cfg.name));
    Client::with_options(opts).map_err(|e| MongoError::mongo("creating the MongoDB client", e))
}

#[async_trait]
impl SourceTask for MongoSourceTask {
    async fn start(&mut self, ctx: SourceTaskContext, props: Props) -> ConnectResult<()> {
        let cfg = MongoConfig::parse(&props).map_err(MongoError::into_connect)?;
        let index: u32 = props
            .get(TASK_INDEX)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let plan = props.get(TASK_PLAN).and_then(|p| Plan::from_json(p));
        let chunks: Vec<usize> = props
            .get(TASK_CHUNKS)
            .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
            .unwrap_or_default();
        let client = connect(&cfg).await.map_err(MongoError::into_connect)?;
        let capacity = (props
            .get("startup.mode.copy.existing.queue.size")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(16000)
            / cfg.poll_max_batch)
            .max(2);
        let (tx, rx) = mpsc::channel(capacity);
        let cancel = ctx.cancel.child_token();
        self.connector = ctx.connector.clone();
        self.task_id = ctx.task_id;
        let driver = Driver {
            client,
            cfg: Arc::new(cfg),
            connector: ctx.connector.clone(),
            task_id: ctx.task_id,
            index,
            plan,
            chunks,
            offsets: ctx.offsets.clone(),
            commits: ctx.commits.clone(),
            tx: tx.clone(),
            cancel: cancel.clone(),
        };
        let name = format!("mongodb-source-{}-{}", ctx.connector, ctx.task_id);
        self.handle = Some(spawn_named(name, async move {
            if let Err(e) = driver.run().await {
                tracing::error!(error = %e, "MongoDB source task failed");
                let _ = tx.send(Err(e)).await;
            }
        }));
        self.rx = Some(rx);
        self.cancel = Some(cancel);
        Ok(())
    }

    async fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(Vec::new());
        };
        tokio::select! {
            item = rx.recv() => match item {
                Some(Ok(batch)) => Ok(batch),
                Some(Err(e)) => Err(e.into_connect()),
                None if self.cancel.as_ref().is_some_and(CancellationToken::is_cancelled) => Ok(Vec::new()),
                None => Err(ConnectError::fatal("the MongoDB reader of this task ended unexpectedly")),
            },
            // Return now and then so the runtime can act on state changes.
            _ = tokio::time::sleep(Duration::from_secs(1)) => Ok(Vec::new()),
        }
    }

    async fn stop(&mut self) -> ConnectResult<()> {
        if let Some(c) = self.cancel.take() {
            c.cancel();
        }
        if let Some(h) = self.handle.take() {
            // The driver ends at its next await point once cancelled.
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        progress::remove(&self.connector, self.task_id);
        Ok(())
    }
}

struct Driver {
    client: Client,
    cfg: Arc<MongoConfig>,
    connector: String,
    task_id: u32,
    index: u32,
    plan: Option<Plan>,
    chunks: Vec<usize>,
    offsets: Arc<dyn OffsetReader>,
    commits: Arc<dyn CommitRequester>,
    tx: mpsc::Sender<Item>,
    cancel: CancellationToken,
}

/// Hands a batch to the task's poll side; false once the task is stopping.
async fn send_batch(
    tx: &mpsc::Sender<Item>,
    cancel: &CancellationToken,
    batch: Vec<SourceRecord>,
) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        r = tx.send(Ok(batch)) => r.is_ok(),
    }
}

/// The stored offsets of some chunks, in the order given.
async fn read_chunk_offsets<'a>(
    reader: &dyn OffsetReader,
    chunks: impl Iterator<Item = &'a ChunkSpec>,
) -> Result<Vec<Option<OffsetMap>>, MongoError> {
    let parts: Vec<_> = chunks
        .map(|c| offsets::chunk_partition(&c.db, &c.coll, c.n))
        .collect();
    reader
        .offsets(&parts)
        .await
        .map_err(|e| fatal("reading chunk offsets", e))
}

fn fatal(what: &str, e: ConnectError) -> MongoError {
    MongoError::Fatal(format!("{what} failed: {e}"))
}

impl Driver {
    async fn send(&self, batch: Vec<SourceRecord>) -> bool {
        send_batch(&self.tx, &self.cancel, batch).await
    }

    async fn run(self) -> Result<(), MongoError> {
        let mut plan = self.plan.clone();
        let mut highs: HashMap<usize, Option<Timestamp>> = HashMap::new();
        if let Some(p) = &plan {
            let mine: Vec<ChunkSpec> = p
                .chunks
                .iter()
                .filter(|c| self.chunks.contains(&c.n))
                .cloned()
                .collect();
            highs = self.snapshot(p, mine).await?;
        } else {
            progress::start(&self.connector, self.task_id, 0, 0);
        }
        if self.cancel.is_cancelled() {
            return Ok(());
        }
        if self.index != 0 {
            progress::phase(&self.connector, self.task_id, "done");
            tracing::info!(connector = %self.connector, task = self.task_id, "snapshot chunks of this task are done; task 0 streams");
            self.cancel.cancelled().await;
            return Ok(());
        }
        let stream_part = offsets::stream_partition(&self.cfg.offset_partition_name);
        let mut now_override: Option<Document> = None;
        loop {
            let gen = plan.as_ref().map_or(0, |p| p.gen);
            let stored = self
                .offsets
                .offset(&stream_part)
                .await
                .map_err(|e| fatal("reading the stored stream offset", e))?;
            let stored_token = stored
                .as_ref()
                .filter(|o| offsets::gen_of(o) >= gen)
                .and_then(|o| {
                    o.get("_id")
                        .and_then(|v| v.as_str())
                        .and_then(bsonx::token_from_json)
                });
            let skip = match &plan {
                Some(p) => self.skip_ranges(p, &highs).await?,
                None => Skip::default(),
            };
            let start = if let Some(t) = now_override.take() {
                Start::After(t)
            } else if let Some(t) = stored_token {
                Start::After(t)
            } else if let Some(p) = &plan {
                bsonx::token_from_json(&p.start).map_or(Start::Now, Start::After)
            } else {
                match &self.cfg.startup {
                    Startup::Timestamp(ts) => Start::At(*ts),
                    _ => Start::Now,
                }
            };
            progress::phase(&self.connector, self.task_id, "stream");
            tracing::info!(connector = %self.connector, gen, skip_ranges = skip.len(), "streaming");
            let mut streamer = Streamer {
                client: &self.client,
                cfg: &self.cfg,
                partition: stream_part.clone(),
                gen,
                skip,
                tx: &self.tx,
                cancel: &self.cancel,
                published: 0,
                task_id: self.task_id,
            };
            let (from, error) = match streamer.run(start).await? {
                Ended::Cancelled => return Ok(()),
                Ended::HistoryLost { from, error } => (from, error),
            };
            let from_time = from
                .as_ref()
                .and_then(bsonx::token_time)
                .map_or_else(|| "unknown".to_string(), bsonx::ts_string);
            match self.cfg.expired_policy {
                ExpiredPolicy::Fail => {
                    return Err(MongoError::HistoryLost(format!(
                        "the change stream of connector {} cannot resume: its stored resume token (cluster time {from_time}) is no longer in the oplog ({error}). Changes made after that time were not captured and can no longer be read from the oplog. Two ways out: set resume.token.expired.policy=resnapshot to copy the current state of the selected collections again and then stream, or set resume.token.expired.policy=skip to continue from now and accept the gap (its bounds are logged). To prevent this, make the oplog window longer than the longest downtime and set heartbeat.interval.ms so idle streams keep a fresh token.",
                        self.connector
                    )));
                }
                ExpiredPolicy::Skip => {
                    let now = stream::current_token(&self.client, &self.cfg).await?;
                    let to_time = bsonx::token_time(&now)
                        .map_or_else(|| "unknown".to_string(), bsonx::ts_string);
                    tracing::error!(connector = %self.connector, gap_from = %from_time, gap_to = %to_time, error = %error,
                        "resume token expired; resume.token.expired.policy=skip: continuing from now. Changes between gap_from and gap_to were NOT published");
                    now_override = Some(now);
                }
                ExpiredPolicy::Resnapshot => {
                    // Loop guard: a re-snapshot whose own start token expired
                    // before the stream published anything would loop forever.
                    if plan.as_ref().is_some_and(|p| p.reason == "resnapshot")
                        && streamer.published == 0
                        && from.as_ref().map(bsonx::token_json)
                            == plan.as_ref().map(|p| p.start.clone())
                    {
                        return Err(MongoError::HistoryLost(format!(
                            "connector {}: the re-snapshot took longer than the oplog window (its start token, cluster time {from_time}, expired before streaming began), so re-snapshotting again would loop. Enlarge the oplog, raise snapshot.parallelism or tasks.max, or narrow the selection",
                            self.connector
                        )));
                    }
                    let next_gen = gen + 1;
                    tracing::warn!(connector = %self.connector, expired_at = %from_time, gen = next_gen, error = %error,
                        "resume token expired; resume.token.expired.policy=resnapshot: copying the selected collections again");
                    let start =
                        bsonx::token_json(&stream::current_token(&self.client, &self.cfg).await?);
                    let p = plan::make_plan(&self.client, &self.cfg, next_gen, start, "resnapshot")
                        .await?;
                    highs = self.snapshot(&p, p.chunks.clone()).await?;
                    if self.cancel.is_cancelled() {
                        return Ok(());
                    }
                    plan = Some(p);
                }
            }
        }
    }

    /// Reads this task's unfinished chunks, `snapshot.parallelism` at a time.
    /// Returns the high watermark of each chunk read in this run.
    async fn snapshot(
        &self,
        p: &Plan,
        mine: Vec<ChunkSpec>,
    ) -> Result<HashMap<usize, Option<Timestamp>>, MongoError> {
        let plan_rec = records::marker_record(
            &self.cfg,
            format!("{{\"plan\":{}}}", p.gen),
            offsets::plan_partition(&self.cfg.offset_partition_name),
            offsets::plan_offset(&p.to_json(), p.gen),
        );
        if !self.send(vec![plan_rec]).await {
            return Ok(HashMap::new());
        }
        // Chunks an earlier run of any task may have partly published: a
        // re-read cannot retract those records, and a document deleted
        // between the two reads would stay in the topic if the stream
        // skipped its delete. Such chunks are read at-least-once instead (no
        // skip range: the stream replays their changes since the plan's start).
        let task_parts: Vec<_> = (0..MAX_TASK_MARKERS)
            .map(|i| offsets::task_partition(&self.cfg.offset_partition_name, i))
            .collect();
        let mut earlier: HashSet<usize> = HashSet::new();
        let markers = self
            .offsets
            .offsets(&task_parts)
            .await
            .map_err(|e| fatal("reading task snapshot markers", e))?;
        for o in markers.into_iter().flatten() {
            if offsets::gen_of(&o) == p.gen {
                let list = o.get("chunks").and_then(|v| v.as_str()).unwrap_or_default();
                earlier.extend(
                    list.split(',')
                        .filter_map(|n| n.trim().parse::<usize>().ok()),
                );
            }
        }
        let mine_list: Vec<String> = mine.iter().map(|c| c.n.to_string()).collect();
        let mine_list = mine_list.join(",");
        let task_part = offsets::task_partition(&self.cfg.offset_partition_name, self.index);
        let task_rec = records::marker_record(
            &self.cfg,
            format!("{{\"task\":{}}}", self.index),
            task_part.clone(),
            offsets::task_offset(p.gen, &mine_list),
        );
        if !self.send(vec![task_rec]).await {
            return Ok(HashMap::new());
        }
        // Wait until that marker is committed, so that no chunk record can
        // be published without a later run knowing about it.
        let mut waited = false;
        loop {
            let o = self
                .offsets
                .offset(&task_part)
                .await
                .map_err(|e| fatal("reading the task snapshot marker", e))?;
            if o.as_ref().is_some_and(|o| {
                offsets::gen_of(o) == p.gen
                    && o.get("chunks").and_then(|v| v.as_str()) == Some(mine_list.as_str())
            }) {
                break;
            }
            // Ask for the commit instead of waiting up to a whole
            // offset.flush.interval.ms (60 s by default); repeated because
            // the marker may not have been acknowledged by Kafka yet.
            self.commits.request_commit();
            if !waited {
                tracing::debug!(connector = %self.connector, task = self.task_id, "waiting for the snapshot start marker to be committed");
                waited = true;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(HashMap::new()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        let stored = read_chunk_offsets(&*self.offsets, mine.iter()).await?;
        let pending: VecDeque<ChunkSpec> = mine
            .iter()
            .zip(stored)
            .filter(|(_, o)| {
                o.as_ref()
                    .and_then(|o| offsets::chunk_finished(o, p.gen))
                    .is_none()
            })
            .map(|(c, _)| c.clone())
            .collect();
        let skipped = mine.len() - pending.len();
        let reread: HashSet<usize> = pending
            .iter()
            .map(|c| c.n)
            .filter(|n| earlier.contains(n))
            .collect();
        if !reread.is_empty() {
            tracing::warn!(connector = %self.connector, task = self.task_id, chunks = reread.len(), "re-reading chunks an earlier run had started; their changes since the plan's start are replayed by the stream (at-least-once for these chunks)");
        }
        let reread = Arc::new(reread);
        progress::start(&self.connector, self.task_id, mine.len(), skipped);
        tracing::info!(connector = %self.connector, task = self.task_id, gen = p.gen, chunks = mine.len(), already_done = skipped, "snapshot starting");
        let workers = self.cfg.snapshot_parallelism.min(pending.len());
        let queue = Arc::new(Mutex::new(pending));
        let highs = Arc::new(Mutex::new(HashMap::new()));
        let mut handles = Vec::new();
        for w in 0..workers {
            let ctx = ChunkWorker {
                client: self.client.clone(),
                cfg: self.cfg.clone(),
                connector: self.connector.clone(),
                task_id: self.task_id,
                gen: p.gen,
                queue: queue.clone(),
                highs: highs.clone(),
                reread: reread.clone(),
                tx: self.tx.clone(),
                cancel: self.cancel.clone(),
            };
            handles.push(spawn_named(
                format!("mongodb-snapshot-{}-{}-{w}", self.connector, self.task_id),
                ctx.run(),
            ));
        }
        let mut first_err = None;
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // Stop the other readers: the task is failing.
                    self.cancel.cancel();
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(MongoError::Fatal(format!(
                        "a snapshot reader panicked: {e}"
                    )));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let out = highs.lock().map(|h| h.clone()).unwrap_or_default();
        Ok(out)
    }

    /// Skip ranges for every chunk of the plan; waits for chunks read by
    /// other tasks to be recorded as finished in the offsets.
    async fn skip_ranges(
        &self,
        p: &Plan,
        own: &HashMap<usize, Option<Timestamp>>,
    ) -> Result<Skip, MongoError> {
        let mut known: HashMap<usize, Option<Timestamp>> = own.clone();
        let mut logged = false;
        loop {
            let missing: Vec<&ChunkSpec> = p
                .chunks
                .iter()
                .filter(|c| !known.contains_key(&c.n))
                .collect();
            if missing.is_empty() {
                break;
            }
            let stored = read_chunk_offsets(&*self.offsets, missing.iter().copied()).await?;
            for (c, o) in missing.iter().zip(stored) {
                if let Some(h) = o.as_ref().and_then(|o| offsets::chunk_finished(o, p.gen)) {
                    known.insert(c.n, bsonx::ts_parse(&h));
                }
            }
            let still = p.chunks.len() - known.len();
            if still == 0 {
                break;
            }
            if !logged {
                tracing::info!(connector = %self.connector, chunks = still, "waiting for snapshot chunks of other tasks before streaming");
                logged = true;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(Skip::default()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        if self.cfg.handoff == Handoff::AtLeastOnce {
            return Ok(Skip::default());
        }
        Ok(Skip::new(
            p.chunks
                .iter()
                .filter_map(|c| {
                    known.get(&c.n).copied().flatten().map(|high| SkipRange {
                        db: c.db.clone(),
                        coll: c.coll.clone(),
                        min: c.min_bson(),
                        max: c.max_bson(),
                        high,
                    })
                })
                .collect(),
        ))
    }
}

struct ChunkWorker {
    client: Client,
    cfg: Arc<MongoConfig>,
    connector: String,
    task_id: u32,
    gen: u64,
    queue: Arc<Mutex<VecDeque<ChunkSpec>>>,
    highs: Arc<Mutex<HashMap<usize, Option<Timestamp>>>>,
    reread: Arc<HashSet<usize>>,
    tx: mpsc::Sender<Item>,
    cancel: CancellationToken,
}

impl ChunkWorker {
    async fn send(&self, batch: Vec<SourceRecord>) -> bool {
        send_batch(&self.tx, &self.cancel, batch).await
    }

    async fn run(self) -> Result<(), MongoError> {
        loop {
            let next = self.queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some(c) = next else { return Ok(()) };
            let part = offsets::chunk_partition(&c.db, &c.coll, c.n);
            let topic = self.cfg.topic(&c.db, Some(&c.coll));
            // Every copied document of a chunk has the same source offset
            // ("copying"); it rides on the chunk's first record only (below).
            // Records with an empty partition and offset commit nothing, so
            // the committed state is the same, without two maps per document.
            let none = OffsetMap::new();
            let make = |d: &RawDocument| {
                records::snapshot_record_raw(
                    &self.cfg,
                    (&topic, &c.db, &c.coll),
                    d,
                    &none,
                    OffsetMap::new(),
                )
            };
            let mut data = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                r = handoff::read_chunk(&self.client, &self.cfg, &c, self.reread.contains(&c.n), &make) => r?,
            };
            if let Some(first) = data.docs.first_mut() {
                first.source_partition = part.clone();
                first.source_offset = offsets::chunk_copying(self.gen);
            }
            let count = data.docs.len() as u64;
            let mut docs = data.docs.into_iter().peekable();
            while docs.peek().is_some() {
                let batch: Vec<SourceRecord> =
                    docs.by_ref().take(self.cfg.poll_max_batch).collect();
                if !self.send(batch).await {
                    return Ok(());
                }
            }
            let high = data.high.map(bsonx::ts_string);
            let marker = records::marker_record(
                &self.cfg,
                format!("{{\"ns\":\"{}\",\"chunk\":{}}}", c.ns(), c.n),
                part,
                offsets::chunk_done(self.gen, high.as_deref()),
            );
            if !self.send(vec![marker]).await {
                return Ok(());
            }
            if let Ok(mut h) = self.highs.lock() {
                h.insert(c.n, data.high);
            }
            tracing::debug!(connector = %self.connector, chunk = c.n, ns = %c.ns(), docs = count, replayed = data.replayed, high = ?high, "chunk copied");
            progress::chunk_done(&self.connector, self.task_id, count);
        }
    }
}
