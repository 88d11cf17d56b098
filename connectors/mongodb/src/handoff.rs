//! Reading one snapshot chunk, and handing it over to the stream exactly.
//!
//! # Design (Flink CDC's watermark algorithm, per chunk)
//!
//! ```text
//!   change stream ──────●L────────────────────●H──────────────▶ time
//!                        │  find(min,max,hint) │
//!                        │  reads the chunk    │
//!                        └─ replay (L, H] ─────┘ into the chunk buffer
//! ```
//!
//! 1. **Low watermark L**: open a collection change stream now; its
//!    postBatchResumeToken is L. The stream stays open, buffering events.
//! 2. **Read** the chunk with `find().min({_id: a}).max({_id: b}).hint({_id: 1})`
//!    into a buffer keyed by `_id`. Each document is read at some moment in
//!    `[L, H]`, not at one consistent point — hence step 4.
//! 3. **High watermark H**: the postBatchResumeToken of a second stream
//!    opened after the read; its cluster time is H.
//! 4. **Backfill**: read the first stream from L until its position passes
//!    H. Every event with cluster time ≤ H whose `_id` lies in `[a, b)` is
//!    applied to the buffer: insert/replace/update (with its post-image)
//!    upsert, delete removes. Re-applying an event the read already saw is
//!    harmless (it sets the same state), and an event the read missed is
//!    now in. The buffer is the chunk's state as of H (or later, for an
//!    update whose looked-up post-image is newer — later stream events then
//!    re-apply in order).
//! 5. **Emit** the buffer as snapshot reads, then a chunk-done marker whose
//!    offset records H.
//!
//! The stream phase starts from the plan's start token (taken before any
//! chunk's L, so no event is missed) and drops an event when its `_id` lies
//! in a chunk and its cluster time is ≤ that chunk's H
//! ([`crate::stream::Skip`]). Every event after H is published. So each
//! change is published exactly once: inside the chunk (≤ H) or by the
//! stream (> H) — no gap and no duplicate at the boundary.
//!
//! # Memory
//!
//! A chunk is held in memory from read to emit, already turned into records
//! (the documents are converted as they come off the cursor, so the BSON is
//! never copied), so a task holds at most `snapshot.parallelism` chunks of
//! about twice `snapshot.chunk.size.mb` each (a JSON record with its headers
//! is about twice its BSON). The
//! backfill adds at most `snapshot.backfill.max.events` events (each applied
//! immediately, so the buffer only grows by inserted documents). A chunk
//! that changes more than that while it is read is read again (the window
//! is usually shorter the second time), up to three times, and then the
//! task fails and asks for smaller chunks — it never silently degrades.
//!
//! With `snapshot.handoff=at_least_once` steps 1, 3 and 4 are skipped: the
//! stream replays everything since the plan's start token, so changes made
//! during the copy may be published twice (never lost).
//!
//! # Restarts
//!
//! A chunk that a crashed run had partly (or fully, but uncommitted)
//! published is re-read at-least-once: its earlier read records cannot be
//! retracted, so a document deleted between the two reads is only removed
//! downstream if the stream publishes the delete — which it does, because
//! such a chunk gets no skip range and the stream replays its changes since
//! the plan's start token. A task commits a marker listing its chunks before
//! it publishes any chunk record, which is how a later run knows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document, RawDocument, RawDocumentBuf, Timestamp};
use mongodb::options::Hint;
use mongodb::Client;

use crate::bsonx;
use crate::config::{Handoff, MongoConfig};
use crate::error::MongoError;
use crate::plan::ChunkSpec;
use crate::stream::{token_doc, Joined, Reassembler};

/// A read chunk: one item per document (in `_id` order, then backfilled
/// inserts) and its high watermark (`None` for at-least-once).
pub struct ChunkData<T> {
    /// What the caller made of each document as it came off the cursor
    /// (records, written straight from the server's BSON): the driver's
    /// reply is never copied into an owned document per row.
    pub docs: Vec<T>,
    pub high: Option<Timestamp>,
    /// Change events applied by the backfill.
    pub replayed: usize,
}

/// Turns a document as read into the caller's item.
pub type MakeItem<'a, T> = dyn Fn(&RawDocument) -> Result<T, MongoError> + Send + Sync + 'a;

/// Items keyed by `_id`, in read order. The key is the BSON of
/// `{_id: <id>}`: exact per type and value like the `_id` index, and built
/// without decoding the document. The index is built only when the backfill
/// first looks an `_id` up: most chunks do not change while they are read,
/// and hashing every key of every chunk was ~3 % of a snapshot's CPU.
struct Buffer<T> {
    items: Vec<(Vec<u8>, Option<T>)>,
    index: Option<HashMap<Vec<u8>, usize>>,
}

impl<T> Default for Buffer<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: None,
        }
    }
}

fn raw_id_key(d: &RawDocument) -> Vec<u8> {
    let mut k = RawDocumentBuf::new();
    if let Ok(Some(id)) = d.get("_id") {
        k.append_ref("_id", id);
    }
    k.into_bytes()
}

fn id_key(id: &Bson) -> Vec<u8> {
    RawDocumentBuf::from_document(&doc! {"_id": id.clone()})
        .map(RawDocumentBuf::into_bytes)
        .unwrap_or_default()
}

impl<T> Buffer<T> {
    /// A document of the range read: `_id`s are unique there (the `_id`
    /// index is), so no lookup is needed.
    fn push(&mut self, key: Vec<u8>, item: T) {
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.items.len());
        }
        self.items.push((key, Some(item)));
    }

    fn index(&mut self) -> &mut HashMap<Vec<u8>, usize> {
        let items = &mut self.items;
        self.index.get_or_insert_with(|| {
            let mut index = HashMap::with_capacity(items.len());
            for (i, (k, _)) in items.iter().enumerate() {
                index.insert(k.clone(), i);
            }
            index
        })
    }

    fn upsert(&mut self, key: Vec<u8>, item: T) {
        match self.index().get(&key).copied() {
            Some(i) => self.items[i].1 = Some(item),
            None => self.push(key, item),
        }
    }

    fn remove(&mut self, id: &Bson) {
        if let Some(i) = self.index().get(&id_key(id)).copied() {
            self.items[i].1 = None;
        }
    }

    fn into_items(self) -> Vec<T> {
        self.items
            .into_iter()
            .filter_map(|(_, item)| item)
            .collect()
    }
}

/// Reads the chunk's range, handing each document to `each` as it comes
/// off the cursor.
async fn read_range(
    client: &Client,
    cfg: &MongoConfig,
    c: &ChunkSpec,
    mut each: impl FnMut(&RawDocument) -> Result<(), MongoError> + Send,
) -> Result<(), MongoError> {
    let coll = client.database(&c.db).collection::<RawDocumentBuf>(&c.coll);
    let (min, max) = (c.min_bson(), c.max_bson());
    let mut find = coll
        .find(cfg.snapshot_filter(&c.db, &c.coll))
        .hint(Hint::Keys(doc! {"_id": 1}))
        .sort(doc! {"_id": 1});
    // MinKey/MaxKey bounds are open ends: leaving them out also keeps a
    // (theoretical) MaxKey `_id` in the last chunk.
    if !matches!(min, Bson::MinKey) {
        find = find.min(doc! {"_id": min});
    }
    if !matches!(max, Bson::MaxKey) {
        find = find.max(doc! {"_id": max});
    }
    if cfg.batch_size > 0 {
        find = find.batch_size(cfg.batch_size);
    }
    let action = || format!("reading snapshot chunk {} of {}", c.n, c.ns());
    let mut cursor = find.await.map_err(|e| MongoError::mongo(action(), e))?;
    while cursor
        .advance()
        .await
        .map_err(|e| MongoError::mongo(action(), e))?
    {
        each(cursor.current())?;
    }
    Ok(())
}

/// Reads one chunk, reconciled with the change stream when the handoff is exact.
///
/// # Errors
/// Server errors, and a chunk that changes more than
/// `snapshot.backfill.max.events` times while it is read (after retries).
///
/// `at_least_once` forces the cheap read (no watermarks) for a chunk that an
/// earlier run may have partly published (see the module doc, "Restarts").
pub async fn read_chunk<T: Send>(
    client: &Client,
    cfg: &MongoConfig,
    c: &ChunkSpec,
    at_least_once: bool,
    make: &MakeItem<'_, T>,
) -> Result<ChunkData<T>, MongoError> {
    if at_least_once || cfg.handoff == Handoff::AtLeastOnce {
        let mut docs = Vec::new();
        read_range(client, cfg, c, |d| {
            docs.push(make(d)?);
            Ok(())
        })
        .await?;
        return Ok(ChunkData {
            docs,
            high: None,
            replayed: 0,
        });
    }
    let mut last_err = None;
    for attempt in 0..3 {
        match read_exact(client, cfg, c, make).await {
            Ok(d) => return Ok(d),
            Err(ReadError::TooBusy(n)) => {
                tracing::warn!(chunk = c.n, ns = %c.ns(), events = n, attempt, "chunk changed too much while being read; reading it again");
                last_err = Some(n);
            }
            Err(ReadError::Other(e)) => return Err(e),
        }
    }
    Err(MongoError::Fatal(format!(
        "snapshot chunk {} of {} received more than {} changes while it was read, three times; set a smaller snapshot.chunk.size.mb or a larger snapshot.backfill.max.events (last attempt saw {} events)",
        c.n,
        c.ns(),
        cfg.backfill_max_events,
        last_err.unwrap_or_default()
    )))
}

enum ReadError {
    TooBusy(usize),
    Other(MongoError),
}

impl From<MongoError> for ReadError {
    fn from(e: MongoError) -> Self {
        ReadError::Other(e)
    }
}

async fn open_coll_stream(
    client: &Client,
    cfg: &MongoConfig,
    c: &ChunkSpec,
    what: &str,
) -> Result<mongodb::change_stream::ChangeStream<Document>, MongoError> {
    let coll = client.database(&c.db).collection::<Document>(&c.coll);
    // Looked-up post-images make events larger, so the replay asks for
    // fragments too when the connector does.
    let pipeline: Vec<Document> = if cfg.split_large_events {
        vec![crate::stream::split_stage()]
    } else {
        Vec::new()
    };
    let cs = coll
        .watch()
        .pipeline(pipeline)
        .full_document(mongodb::options::FullDocumentType::UpdateLookup)
        .max_await_time(Duration::from_millis(100))
        .await
        .map_err(|e| {
            MongoError::mongo(
                format!(
                    "opening the {what} change stream of chunk {} of {}",
                    c.n,
                    c.ns()
                ),
                e,
            )
        })?;
    Ok(cs.with_type::<Document>())
}

fn time_of(
    cs: &mongodb::change_stream::ChangeStream<Document>,
    c: &ChunkSpec,
    what: &str,
) -> Result<Timestamp, MongoError> {
    cs.resume_token()
        .as_ref()
        .and_then(token_doc)
        .as_ref()
        .and_then(bsonx::token_time)
        .ok_or_else(|| MongoError::Fatal(format!("the {what} watermark of chunk {} of {} has no decodable cluster time; use snapshot.handoff=at_least_once with this server", c.n, c.ns())))
}

async fn read_exact<T: Send>(
    client: &Client,
    cfg: &MongoConfig,
    c: &ChunkSpec,
    make: &MakeItem<'_, T>,
) -> Result<ChunkData<T>, ReadError> {
    let mut low = open_coll_stream(client, cfg, c, "low watermark").await?;
    let mut buf = Buffer::default();
    read_range(client, cfg, c, |d| {
        buf.push(raw_id_key(d), make(d)?);
        Ok(())
    })
    .await?;
    let high_cs = open_coll_stream(client, cfg, c, "high watermark").await?;
    let high = time_of(&high_cs, c, "high")?;
    drop(high_cs);
    let (min, max) = (c.min_bson(), c.max_bson());
    let mut replayed = 0usize;
    let mut joiner = Reassembler::default();
    let started = Instant::now();
    loop {
        let next = low.next_if_any().await.map_err(|e| {
            MongoError::mongo(
                format!("replaying changes into chunk {} of {}", c.n, c.ns()),
                e,
            )
        })?;
        let next = match next {
            Some(frag) if cfg.split_large_events => match joiner.push(frag) {
                Joined::Event(ev) => Some(ev),
                Joined::Partial => continue,
                Joined::Broken(why) => {
                    // The window has to be replayed whole; read the chunk again.
                    tracing::warn!(chunk = c.n, ns = %c.ns(), reason = %why, "incomplete split change event while replaying a chunk");
                    return Err(ReadError::TooBusy(replayed));
                }
            },
            other => other,
        };
        match next {
            Some(ev) => {
                let Ok(t) = ev.get_timestamp("clusterTime") else {
                    continue;
                };
                if bsonx::ts_key(t) > bsonx::ts_key(high) {
                    break;
                }
                let op = ev.get_str("operationType").unwrap_or_default();
                if op == "invalidate" {
                    break;
                }
                let Some(id) = ev
                    .get_document("documentKey")
                    .ok()
                    .and_then(|k| k.get("_id"))
                    .cloned()
                else {
                    continue;
                };
                if !bsonx::in_range(&id, &min, &max) {
                    continue;
                }
                replayed += 1;
                if replayed > cfg.backfill_max_events {
                    return Err(ReadError::TooBusy(replayed));
                }
                match (op, ev.get("fullDocument")) {
                    ("delete", _) => buf.remove(&id),
                    (_, Some(Bson::Document(fd))) => {
                        let raw = RawDocumentBuf::from_document(fd).map_err(|e| {
                            MongoError::Fatal(format!(
                                "replaying into chunk {} of {}: a post-image does not encode as BSON: {e}",
                                c.n,
                                c.ns()
                            ))
                        })?;
                        buf.upsert(raw_id_key(&raw), make(&raw)?);
                    }
                    // An update whose document is already gone: its delete
                    // follows (here or in the stream) and removes it.
                    _ => {}
                }
            }
            None => {
                if !joiner.is_pending()
                    && time_of(&low, c, "low")
                        .is_ok_and(|t| bsonx::ts_key(t) >= bsonx::ts_key(high))
                {
                    break;
                }
                if started.elapsed() > Duration::from_secs(120) {
                    return Err(ReadError::Other(MongoError::Fatal(format!(
                        "replaying changes into chunk {} of {} did not reach the high watermark {} within 120 s",
                        c.n,
                        c.ns(),
                        bsonx::ts_string(high)
                    ))));
                }
            }
        }
    }
    Ok(ChunkData {
        docs: buf.into_items(),
        high: Some(high),
        replayed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: Bson, v: &str) -> RawDocumentBuf {
        RawDocumentBuf::from_document(&doc! {"_id": id, "v": v}).expect("raw")
    }

    fn v(d: &RawDocumentBuf) -> String {
        d.get_str("v").expect("v").to_string()
    }

    #[test]
    fn backfill_replaces_in_place_appends_new_ids_and_removes_deleted_ones() {
        let mut buf = Buffer::default();
        for (id, val) in [
            (Bson::Int32(1), "a"),
            (Bson::Int32(2), "b"),
            (Bson::Int32(3), "c"),
        ] {
            let d = raw(id, val);
            buf.push(raw_id_key(&d), d);
        }
        // The index is built on first use, after the range read.
        let d = raw(Bson::Int32(2), "b2");
        buf.upsert(raw_id_key(&d), d);
        // Same number, other type: another `_id` (the `_id` index tells them apart).
        let d = raw(Bson::Int64(2), "long");
        buf.upsert(raw_id_key(&d), d);
        buf.remove(&Bson::Int32(1));
        buf.remove(&Bson::Int32(99));
        let d = raw(Bson::Int32(4), "d");
        buf.upsert(raw_id_key(&d), d);
        let d = raw(Bson::Int32(1), "again");
        buf.upsert(raw_id_key(&d), d);
        let got: Vec<String> = buf.into_items().iter().map(v).collect();
        assert_eq!(got, ["again", "b2", "c", "long", "d"]);
    }
}
