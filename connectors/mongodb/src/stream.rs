//! The change-stream phase.
//!
//! One stream, as narrow as the selection allows (collection, database or
//! cluster, with a pushed-down `$match` on `ns.db`), resumed with
//! `startAfter` so that a stored token of an `invalidate` still works.
//! Errors are classified as the change-streams specification says
//! ([`crate::error::is_resumable`]): resumable ones reopen the stream from
//! the last token with exponential backoff and jitter; 286/280 (history
//! lost) go back to the task, which applies `resume.token.expired.policy`;
//! anything else fails the task.
//!
//! While snapshot chunks' high watermarks are newer than the stream's
//! position, [`Skip`] drops events that a chunk already reflects.

use std::time::{Duration, Instant};

use connect_api::record::{OffsetMap, SourceRecord};
use mongodb::bson::{Bson, Document, Timestamp};
use mongodb::change_stream::event::ResumeToken;
use mongodb::change_stream::ChangeStream;
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use mongodb::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bsonx;
use crate::config::{MongoConfig, Scope};
use crate::error::{is_history_lost, is_resumable, ConversionError, MongoError};
use crate::offsets;
use crate::progress;
use crate::records;
use crate::spawn::spawn_named;

/// Where a stream starts.
#[derive(Debug, Clone)]
pub enum Start {
    After(Document),
    At(Timestamp),
    Now,
}

pub type Item = Result<Vec<SourceRecord>, MongoError>;

pub fn token_doc(t: &ResumeToken) -> Option<Document> {
    match mongodb::bson::to_bson(t).ok()? {
        Bson::Document(d) => Some(d),
        _ => None,
    }
}

fn resume_token(d: &Document) -> Option<ResumeToken> {
    mongodb::bson::from_bson(Bson::Document(d.clone())).ok()
}

fn full_document(v: &str) -> FullDocumentType {
    match v {
        "updateLookup" => FullDocumentType::UpdateLookup,
        "whenAvailable" => FullDocumentType::WhenAvailable,
        "required" => FullDocumentType::Required,
        other => FullDocumentType::Other(other.to_string()),
    }
}

fn before_change(v: &str) -> FullDocumentBeforeChangeType {
    match v {
        "whenAvailable" => FullDocumentBeforeChangeType::WhenAvailable,
        "required" => FullDocumentBeforeChangeType::Required,
        "off" => FullDocumentBeforeChangeType::Off,
        other => FullDocumentBeforeChangeType::Other(other.to_string()),
    }
}

/// Opens the connector's change stream at `start`.
pub async fn open(
    client: &Client,
    cfg: &MongoConfig,
    start: &Start,
    await_ms: u64,
) -> Result<ChangeStream<Document>, mongodb::error::Error> {
    let mut pipeline: Vec<Document> = cfg.selection.match_stage().into_iter().collect();
    pipeline.extend(cfg.pipeline.iter().cloned());
    if cfg.split_large_events {
        // Must be the last stage (the server rejects it anywhere else).
        pipeline.push(split_stage());
    }
    let mut opts = mongodb::options::ChangeStreamOptions::default();
    opts.full_document = cfg.full_document.as_deref().map(full_document);
    opts.full_document_before_change = cfg
        .full_document_before_change
        .as_deref()
        .map(before_change);
    opts.max_await_time = Some(Duration::from_millis(await_ms));
    opts.batch_size = (cfg.batch_size > 0).then_some(cfg.batch_size);
    opts.show_expanded_events = cfg.show_expanded_events.then_some(true);
    match start {
        Start::After(t) => opts.start_after = resume_token(t),
        Start::At(ts) => opts.start_at_operation_time = Some(*ts),
        Start::Now => {}
    }
    let cs = match cfg.selection.scope() {
        Scope::Collection(db, c) => {
            client
                .database(&db)
                .collection::<Document>(&c)
                .watch()
                .pipeline(pipeline)
                .with_options(opts)
                .await?
        }
        Scope::Database(db) => {
            client
                .database(&db)
                .watch()
                .pipeline(pipeline)
                .with_options(opts)
                .await?
        }
        Scope::Cluster => client.watch().pipeline(pipeline).with_options(opts).await?,
    };
    Ok(cs.with_type::<Document>())
}

/// The current position of the change stream: the postBatchResumeToken of an
/// empty stream opened now.
pub async fn current_token(client: &Client, cfg: &MongoConfig) -> Result<Document, MongoError> {
    let cs = open(client, cfg, &Start::Now, 10).await.map_err(|e| {
        MongoError::mongo("opening a change stream to read the current position", e)
    })?;
    cs.resume_token()
        .as_ref()
        .and_then(token_doc)
        .ok_or_else(|| {
            MongoError::Fatal(
                "the server returned no postBatchResumeToken; MongoDB 4.0.7 or newer is required"
                    .into(),
            )
        })
}

/// The `$changeStreamSplitLargeEvent` stage (`change.stream.split.large.events`).
pub fn split_stage() -> Document {
    mongodb::bson::doc! {"$changeStreamSplitLargeEvent": {}}
}

/// What [`Reassembler::push`] made of a stream document.
#[derive(Debug, PartialEq)]
pub enum Joined {
    /// A whole event: an unsplit one, or the fragments joined.
    Event(Document),
    /// A fragment; more follow.
    Partial,
    /// The fragments did not arrive as 1..=of in a row (e.g. a resume in the
    /// middle of a split event); the caller re-reads from the last complete
    /// event.
    Broken(String),
}

/// Joins `$changeStreamSplitLargeEvent` fragments (`splitEvent: {fragment,
/// of}`, each holding some of the event's top-level fields) back into one
/// event. The joined event keeps the fields in fragment order, drops
/// `splitEvent`, and its `_id` is the **last** fragment's resume token, so
/// resuming after a published event never re-reads part of it. While
/// fragments are pending the stream position must not move past the last
/// complete event ([`Reassembler::is_pending`]).
#[derive(Debug, Default)]
pub struct Reassembler {
    /// The fields so far, the next expected fragment and the total.
    pending: Option<(Document, i32, i32)>,
}

impl Reassembler {
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    pub fn push(&mut self, mut ev: Document) -> Joined {
        let split = match ev.remove("splitEvent") {
            Some(Bson::Document(s)) => s,
            _ => {
                if self.pending.take().is_some() {
                    return Joined::Broken(
                        "an unsplit event arrived before the last fragment of a split event".into(),
                    );
                }
                return Joined::Event(ev);
            }
        };
        let num = |k: &str| match split.get(k) {
            Some(Bson::Int32(n)) => *n,
            Some(Bson::Int64(n)) => i32::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        let (fragment, of) = (num("fragment"), num("of"));
        let acc = match self.pending.take() {
            None if fragment == 1 => ev,
            Some((mut acc, next, total)) if fragment == next && of == total => {
                // `_id` is replaced in place (it stays the first field); the
                // other fields of a fragment are new and appended in order.
                for (k, v) in ev {
                    acc.insert(k, v);
                }
                acc
            }
            _ => {
                return Joined::Broken(format!(
                    "fragment {fragment} of {of} of a split change event arrived out of order"
                ))
            }
        };
        if fragment >= of {
            Joined::Event(acc)
        } else {
            self.pending = Some((acc, fragment + 1, of));
            Joined::Partial
        }
    }
}

/// A chunk's reconciliation window: stream events for a key in
/// `[min, max)` of `db.coll` at or before `high` are already in the chunk.
#[derive(Debug, Clone)]
pub struct SkipRange {
    pub db: String,
    pub coll: String,
    pub min: Bson,
    pub max: Bson,
    pub high: Timestamp,
}

/// The events the stream phase must not publish again.
#[derive(Debug, Default)]
pub struct Skip {
    ranges: Vec<SkipRange>,
    max_high: Option<(u32, u32)>,
}

impl Skip {
    pub fn new(ranges: Vec<SkipRange>) -> Self {
        let max_high = ranges.iter().map(|r| bsonx::ts_key(r.high)).max();
        Skip { ranges, max_high }
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether a snapshot chunk already reflects this event.
    pub fn reflected(&mut self, ev: &Document) -> bool {
        let Some(max_high) = self.max_high else {
            return false;
        };
        let Ok(t) = ev.get_timestamp("clusterTime") else {
            return false;
        };
        if bsonx::ts_key(t) > max_high {
            // Past every high watermark: nothing can match any more.
            self.ranges.clear();
            self.max_high = None;
            return false;
        }
        let Some(id) = ev
            .get_document("documentKey")
            .ok()
            .and_then(|k| k.get("_id"))
        else {
            return false;
        };
        let Ok(ns) = ev.get_document("ns") else {
            return false;
        };
        let (db, coll) = (
            ns.get_str("db").unwrap_or_default(),
            ns.get_str("coll").unwrap_or_default(),
        );
        self.ranges.iter().any(|r| {
            r.db == db
                && r.coll == coll
                && bsonx::ts_key(t) <= bsonx::ts_key(r.high)
                && bsonx::in_range(id, &r.min, &r.max)
        })
    }
}

/// Backoff with full jitter: 100 ms doubling to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(7)).min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(cap / 2 + u64::from(nanos) % (cap / 2 + 1))
}

/// How a stream run ended (other than by cancellation).
pub enum Ended {
    Cancelled,
    /// The start token is gone from the oplog; `from` is the lost token.
    HistoryLost {
        from: Option<Document>,
        error: String,
    },
}

/// What the stream's reader hands to the streamer.
enum Fetched {
    Event(Document),
    /// A getMore returned no event; the postBatchResumeToken after it.
    Idle(Option<Document>),
    /// The reader stops after reporting an error.
    Failed(mongodb::error::Error),
    /// Not sent by the reader: a fragment the streamer took into its
    /// [`Reassembler`].
    Fragment,
}

/// Events read ahead of the streamer (at most this many). Small on purpose:
/// the streamer drains continuously, so a deeper buffer adds no throughput,
/// and it bounds memory with large events (each up to 16 MiB).
const FETCH_AHEAD: usize = 256;

/// Reads a change stream in its own task. Why: the driver does not say
/// whether the next `next_if_any` is served from the current server batch or
/// starts an awaiting getMore (up to `poll.await.time.ms`), and a getMore
/// cannot be cancelled without losing the cursor. With the reads on their
/// own task, the streamer publishes whatever has arrived as soon as nothing
/// more is buffered, instead of waiting on a getMore with records in hand.
/// Dropping the fetcher cancels its task, which closes the cursor.
struct Fetcher {
    rx: mpsc::Receiver<Fetched>,
    stop: CancellationToken,
}

impl Fetcher {
    fn start(mut cs: ChangeStream<Document>, cancel: &CancellationToken, name: String) -> Self {
        let stop = cancel.child_token();
        let (tx, rx) = mpsc::channel(FETCH_AHEAD);
        let s = stop.clone();
        // Detached: it ends when `stop` is cancelled (drop) or the receiver is gone.
        drop(spawn_named(name, async move {
            loop {
                let r = tokio::select! {
                    _ = s.cancelled() => return,
                    r = cs.next_if_any() => r,
                };
                let (item, failed) = match r {
                    Ok(Some(ev)) => (Fetched::Event(ev), false),
                    Ok(None) => (
                        Fetched::Idle(cs.resume_token().as_ref().and_then(token_doc)),
                        false,
                    ),
                    Err(e) => (Fetched::Failed(e), true),
                };
                let sent = tokio::select! {
                    _ = s.cancelled() => return,
                    r = tx.send(item) => r.is_ok(),
                };
                if failed || !sent {
                    return;
                }
            }
        }));
        Fetcher { rx, stop }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub struct Streamer<'a> {
    pub client: &'a Client,
    pub cfg: &'a MongoConfig,
    pub partition: OffsetMap,
    pub gen: u64,
    pub skip: Skip,
    pub tx: &'a mpsc::Sender<Item>,
    pub cancel: &'a CancellationToken,
    /// Counts published change events (for the resnapshot loop guard).
    pub published: u64,
    /// For dead letter queue context headers.
    pub task_id: u32,
}

impl Streamer<'_> {
    /// With `errors.tolerance=all`: an event that cannot be converted is
    /// logged and counted, and becomes its dead letter queue record or,
    /// without a DLQ, a heartbeat-topic marker; either carries the event's
    /// offset, so the stored position moves past it.
    fn tolerated(
        &self,
        ev: &Document,
        token: &Document,
        e: &ConversionError,
        off: OffsetMap,
    ) -> SourceRecord {
        let policy = &self.cfg.errors;
        tracing::warn!(connector = %self.cfg.name, ns = %e.ns, id = %e.id, operation = %e.op, cause = %e.cause, dlq = ?policy.dlq_topic, "change event not converted; skipped (errors.tolerance=all)");
        if policy.log {
            let event = Bson::Document(ev.clone()).into_relaxed_extjson();
            tracing::error!(connector = %self.cfg.name, error = %e, event = %event, "conversion error");
        }
        progress::incr(&self.cfg.name, "errors_skipped");
        match &policy.dlq_topic {
            Some(topic) => {
                progress::incr(&self.cfg.name, "errors_dlq");
                records::dlq_record(self.cfg, self.task_id, topic, ev, e, &self.partition, off)
            }
            None => records::marker_record(
                self.cfg,
                bsonx::token_json(token),
                self.partition.clone(),
                off,
            ),
        }
    }

    async fn send(&self, batch: Vec<SourceRecord>) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            r = self.tx.send(Ok(batch)) => r.is_ok(),
        }
    }

    /// Streams from `start` until cancelled or the position is lost.
    ///
    /// # Errors
    /// Non-resumable server errors.
    pub async fn run(&mut self, start: Start) -> Result<Ended, MongoError> {
        let mut start = start;
        let mut last: Option<Document> = match &start {
            Start::After(t) => Some(t.clone()),
            _ => None,
        };
        let mut attempt = 0u32;
        let heartbeat = (self.cfg.heartbeat_interval_ms > 0)
            .then(|| Duration::from_millis(self.cfg.heartbeat_interval_ms));
        let mut last_emit = Instant::now();
        let mut last_heartbeat_token: Option<Document> = None;
        'open: loop {
            let opened = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(Ended::Cancelled),
                r = open(self.client, self.cfg, &start, self.cfg.poll_await_ms) => r,
            };
            let cs = match opened {
                Ok(cs) => cs,
                Err(e) if is_history_lost(&e) => {
                    return Ok(Ended::HistoryLost {
                        from: last,
                        error: e.to_string(),
                    })
                }
                Err(e) if is_resumable(&e) => {
                    let d = backoff(attempt);
                    tracing::warn!(connector = %self.cfg.name, error = %e, attempt, delay_ms = d.as_millis() as u64, "opening the change stream failed with a resumable error; retrying");
                    attempt += 1;
                    tokio::select! { _ = self.cancel.cancelled() => return Ok(Ended::Cancelled), _ = tokio::time::sleep(d) => {} }
                    continue 'open;
                }
                Err(e) => return Err(MongoError::mongo("opening the change stream", e)),
            };
            tracing::info!(connector = %self.cfg.name, start = ?start, "change stream opened");
            let mut fetcher = Fetcher::start(
                cs,
                self.cancel,
                format!("mongodb-stream-fetch-{}", self.cfg.name),
            );
            let mut joiner = Reassembler::default();
            loop {
                let mut batch = Vec::new();
                let mut invalidated = None;
                let mut idle_token = None;
                // Wait for the next item, then take only what the fetcher has
                // already buffered: a batch goes out as soon as nothing more
                // is waiting, so an event waits for one getMore at most, not
                // for `poll.max.batch.size` events to accumulate.
                let mut next = tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(Ended::Cancelled),
                    r = fetcher.rx.recv() => r,
                };
                loop {
                    // Split events are joined first: nothing below (offsets,
                    // `last`, skip checks) ever sees a fragment.
                    let item = match next {
                        Some(Fetched::Event(frag)) if self.cfg.split_large_events => {
                            match joiner.push(frag) {
                                Joined::Event(ev) => Some(Fetched::Event(ev)),
                                Joined::Partial => Some(Fetched::Fragment),
                                Joined::Broken(why) => {
                                    // Re-read from the last complete event:
                                    // the server sends all its fragments again.
                                    tracing::warn!(connector = %self.cfg.name, reason = %why, "incomplete split change event; resuming from the last complete event");
                                    if !batch.is_empty()
                                        && !self.send(std::mem::take(&mut batch)).await
                                    {
                                        return Ok(Ended::Cancelled);
                                    }
                                    start = last.clone().map_or(start.clone(), Start::After);
                                    continue 'open;
                                }
                            }
                        }
                        other => other,
                    };
                    match item {
                        Some(Fetched::Fragment) => {}
                        Some(Fetched::Event(ev)) => {
                            attempt = 0;
                            let token = ev.get_document("_id").cloned().ok();
                            if let Some(t) = &token {
                                last = Some(t.clone());
                            }
                            let op = ev.get_str("operationType").unwrap_or_default();
                            if op == "invalidate" {
                                tracing::warn!(connector = %self.cfg.name, "change stream invalidated (the watched collection or database was dropped or renamed); continuing after the invalidate event");
                                invalidated = token;
                                break;
                            }
                            if matches!(op, "drop" | "rename" | "dropDatabase") {
                                tracing::warn!(connector = %self.cfg.name, operation = op, ns = ?ev.get("ns"), to = ?ev.get("to"), "namespace change event");
                            }
                            if self.in_selection(&ev) && !self.skip.reflected(&ev) {
                                if let Some(t) = token {
                                    let off = offsets::stream_offset(
                                        &bsonx::token_json(&t),
                                        self.gen,
                                        false,
                                    );
                                    match records::event_records(
                                        self.cfg,
                                        &ev,
                                        &self.partition,
                                        off.clone(),
                                    ) {
                                        Ok(rs) => batch.extend(rs),
                                        Err(e) if self.cfg.errors.tolerate => {
                                            batch.push(self.tolerated(&ev, &t, &e, off));
                                        }
                                        Err(e) => {
                                            // What came before is published, so
                                            // the stored offset ends right
                                            // before this event.
                                            if !batch.is_empty()
                                                && !self.send(std::mem::take(&mut batch)).await
                                            {
                                                return Ok(Ended::Cancelled);
                                            }
                                            return Err(MongoError::Fatal(format!(
                                                "{e}. errors.tolerance=none: the task stops before \
                                                 this event (its offset is not stored, a restart \
                                                 reads it again); errors.tolerance=all would log it, \
                                                 send it to errors.deadletterqueue.topic.name and go on"
                                            )));
                                        }
                                    }
                                }
                            }
                        }
                        Some(Fetched::Idle(t)) => {
                            // A position inside a split event is not a
                            // place to resume from or to store.
                            if !joiner.is_pending() {
                                idle_token = t;
                            }
                            break;
                        }
                        Some(Fetched::Failed(e)) if is_history_lost(&e) => {
                            return Ok(Ended::HistoryLost {
                                from: last,
                                error: e.to_string(),
                            })
                        }
                        Some(Fetched::Failed(e)) if !is_resumable(&e) => {
                            return Err(MongoError::mongo("reading the change stream", e))
                        }
                        failed => {
                            // A resumable error, or the fetcher ended (it only
                            // does so after reporting an error): publish what
                            // was read, then reopen from the last token.
                            let error = match failed {
                                Some(Fetched::Failed(e)) => e.to_string(),
                                _ => "the change stream reader ended".to_string(),
                            };
                            if !batch.is_empty() && !self.send(std::mem::take(&mut batch)).await {
                                return Ok(Ended::Cancelled);
                            }
                            let d = backoff(attempt);
                            tracing::warn!(connector = %self.cfg.name, error = %error, attempt, delay_ms = d.as_millis() as u64, "change stream failed with a resumable error; resuming from the last token");
                            attempt += 1;
                            tokio::select! { _ = self.cancel.cancelled() => return Ok(Ended::Cancelled), _ = tokio::time::sleep(d) => {} }
                            start = last.clone().map_or(start.clone(), Start::After);
                            continue 'open;
                        }
                    }
                    if batch.len() >= self.cfg.poll_max_batch {
                        break;
                    }
                    next = match fetcher.rx.try_recv() {
                        Ok(item) => Some(item),
                        Err(_) => break,
                    };
                }
                if !batch.is_empty() {
                    self.published += batch.len() as u64;
                    if !self.send(batch).await {
                        return Ok(Ended::Cancelled);
                    }
                    last_emit = Instant::now();
                } else if let Some(pbrt) = idle_token {
                    // Idle: a later resume starts from the postBatchResumeToken
                    // (less to rescan), and with heartbeats on it is published
                    // so that the stored offset keeps up too.
                    last = Some(pbrt.clone());
                    if let Some(every) = heartbeat {
                        if last_emit.elapsed() >= every
                            && last_heartbeat_token.as_ref() != Some(&pbrt)
                        {
                            let tj = bsonx::token_json(&pbrt);
                            let rec = records::marker_record(
                                self.cfg,
                                tj.clone(),
                                self.partition.clone(),
                                offsets::stream_offset(&tj, self.gen, true),
                            );
                            if !self.send(vec![rec]).await {
                                return Ok(Ended::Cancelled);
                            }
                            last_heartbeat_token = Some(pbrt);
                            last_emit = Instant::now();
                        }
                    }
                }
                if let Some(t) = invalidated {
                    drop(fetcher);
                    start = Start::After(t);
                    continue 'open;
                }
            }
        }
    }

    fn in_selection(&self, ev: &Document) -> bool {
        let Ok(ns) = ev.get_document("ns") else {
            return true;
        };
        let db = ns.get_str("db").unwrap_or_default();
        self.cfg.selection.matches(db, ns.get_str("coll").ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn ev(db: &str, coll: &str, id: Bson, secs: u32) -> Document {
        doc! {"operationType": "update", "ns": {"db": db, "coll": coll}, "documentKey": {"_id": id},
        "clusterTime": Timestamp { time: secs, increment: 1 }}
    }

    #[test]
    fn skips_only_events_a_chunk_reflects() {
        let mut s = Skip::new(vec![
            SkipRange {
                db: "d".into(),
                coll: "c".into(),
                min: Bson::MinKey,
                max: Bson::Int32(100),
                high: Timestamp {
                    time: 10,
                    increment: 5,
                },
            },
            SkipRange {
                db: "d".into(),
                coll: "c".into(),
                min: Bson::Int32(100),
                max: Bson::MaxKey,
                high: Timestamp {
                    time: 20,
                    increment: 0,
                },
            },
        ]);
        // In the first chunk, at/before its high watermark: reflected.
        assert!(s.reflected(&ev("d", "c", Bson::Int32(5), 10)));
        // Same key after the first chunk's high watermark: published.
        assert!(!s.reflected(&ev("d", "c", Bson::Int32(5), 11)));
        // Strings sort after numbers: second chunk, before its watermark.
        assert!(s.reflected(&ev("d", "c", Bson::String("x".into()), 15)));
        // Other collection: never reflected.
        assert!(!s.reflected(&ev("d", "other", Bson::Int32(5), 1)));
        // Past every watermark the ranges are dropped.
        assert!(!s.reflected(&ev("d", "c", Bson::Int32(500), 21)));
        assert!(s.is_empty());
    }

    fn frag(token: &str, n: i32, of: i32, field: &str) -> Document {
        doc! {"_id": {"_data": token}, "splitEvent": {"fragment": n, "of": of}, field: n}
    }

    #[test]
    fn fragments_join_in_order_with_the_last_token() {
        let mut r = Reassembler::default();
        let plain = doc! {"_id": {"_data": "01"}, "operationType": "insert"};
        assert_eq!(r.push(plain.clone()), Joined::Event(plain));
        assert_eq!(r.push(frag("a1", 1, 3, "operationType")), Joined::Partial);
        assert!(r.is_pending());
        assert_eq!(
            r.push(frag("a2", 2, 3, "updateDescription")),
            Joined::Partial
        );
        let Joined::Event(ev) = r.push(frag("a3", 3, 3, "fullDocument")) else {
            panic!("not joined")
        };
        assert!(!r.is_pending());
        assert_eq!(
            ev,
            doc! {"_id": {"_data": "a3"}, "operationType": 1, "updateDescription": 2, "fullDocument": 3}
        );
        // A lone fragment 1 of 1 is a whole event.
        assert!(matches!(r.push(frag("b1", 1, 1, "x")), Joined::Event(_)));
    }

    #[test]
    fn fragments_out_of_order_are_reported() {
        let mut r = Reassembler::default();
        // Starting in the middle (e.g. resumed from a fragment's token).
        assert!(matches!(r.push(frag("a2", 2, 2, "x")), Joined::Broken(_)));
        assert_eq!(r.push(frag("a1", 1, 3, "x")), Joined::Partial);
        assert!(matches!(r.push(frag("a3", 3, 3, "y")), Joined::Broken(_)));
        assert!(!r.is_pending());
        assert_eq!(r.push(frag("a1", 1, 2, "x")), Joined::Partial);
        let plain = doc! {"_id": {"_data": "02"}};
        assert!(matches!(r.push(plain), Joined::Broken(_)));
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        for a in 0..20 {
            let d = backoff(a);
            assert!(
                d <= Duration::from_millis(10_000) && d >= Duration::from_millis(50),
                "{d:?}"
            );
        }
    }
}
