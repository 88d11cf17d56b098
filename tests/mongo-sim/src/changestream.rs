//! Change streams.
//!
//! Design:
//! * **Oplog.** Every write appends an `OplogEntry` to a `VecDeque` with a
//!   monotonically increasing sequence number and a unique cluster time
//!   (`Timestamp{secs, inc}`, one per write, as on a one-member replica set).
//!   The deque may be bounded by event count or bytes; evicting from the
//!   front moves the start of the "oplog window". Entries keep `Arc`s of the
//!   pre/post images, so logging a write never copies a document.
//! * **Resume tokens.** `_id._data` is a fixed-width upper-case hex string
//!   `82 | secs(8) | inc(8) | kind(2) | fragment(2)` so tokens sort
//!   lexicographically in event order. `kind` is 01 for an event, 02 for the
//!   invalidate that follows it and FF for a "high-water mark" (the
//!   `postBatchResumeToken` of a batch that ended past the last event:
//!   everything up to and including that time was scanned). Resuming from a
//!   token whose time is older than the first retained entry fails with 286
//!   `ChangeStreamHistoryLost`; an event token inside the window that matches
//!   no entry fails with 280 `ChangeStreamFatalError` ("resume token was not
//!   found"), and a token that does not decode fails with 260
//!   `InvalidResumeToken` – the errors mongod gives in those cases.
//! * **Cursors.** A change-stream cursor remembers the sequence number to
//!   scan from, so a getMore only looks at new entries (no re-reading of the
//!   whole oplog). Events are built lazily from entries for the cursor's
//!   options (fullDocument, pre-images, showExpandedEvents) and then passed
//!   through the user's pipeline stages.
//! * **Waiting.** The server publishes the latest sequence number on a
//!   `tokio::sync::watch` channel. A getMore that finds nothing subscribes
//!   before releasing the state lock (so no write can slip in between) and
//!   awaits `changed()` with the `maxAwaitTimeMS` timeout: no busy polling,
//!   and a commit wakes waiting getMores immediately.

use crate::bsonutil::doc_size;
use crate::error::{CmdError, CmdResult};
use crate::state::State;
use bson::{doc, Bson, Document, Timestamp};
use std::collections::VecDeque;
use std::sync::Arc;

pub const MAX_BSON: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum OpKind {
    Noop,
    Insert {
        doc: Arc<Document>,
        pre_post: bool,
    },
    Update {
        pre: Arc<Document>,
        post: Arc<Document>,
        desc: Document,
        pre_post: bool,
    },
    Replace {
        pre: Arc<Document>,
        post: Arc<Document>,
        pre_post: bool,
    },
    Delete {
        pre: Arc<Document>,
        pre_post: bool,
    },
    Drop,
    Rename {
        to_db: String,
        to_coll: String,
        uuid: bson::Binary,
    },
    DropDatabase,
    Create {
        uuid: bson::Binary,
        options: Document,
        is_view: bool,
    },
    CreateIndexes {
        indexes: Vec<Document>,
    },
    DropIndexes {
        indexes: Vec<Document>,
    },
    Modify {
        desc: Document,
    },
}

#[derive(Debug)]
pub struct OplogEntry {
    pub seq: u64,
    pub ts: Timestamp,
    pub wall: bson::DateTime,
    pub db: String,
    pub coll: String,
    pub op: OpKind,
    pub size: usize,
    /// UUID of the collection at the time of the write (it may be renamed
    /// or dropped before the event is read).
    pub uuid: Option<bson::Binary>,
}

impl OplogEntry {
    pub fn new(ts: Timestamp, db: String, coll: String, op: OpKind) -> Self {
        let size = 64
            + db.len()
            + coll.len()
            + match &op {
                OpKind::Insert { doc, .. } => doc_size(doc),
                OpKind::Update { post, desc, .. } => doc_size(post) + doc_size(desc),
                OpKind::Replace { post, .. } => doc_size(post),
                OpKind::Delete { pre, .. } => pre.get("_id").map(|_| 32).unwrap_or(16),
                _ => 64,
            };
        OplogEntry {
            seq: 0,
            ts,
            wall: bson::DateTime::now(),
            db,
            coll,
            op,
            size,
            uuid: None,
        }
    }
}

pub struct Oplog {
    pub entries: VecDeque<Arc<OplogEntry>>,
    pub next_seq: u64,
    pub bytes: usize,
    pub max_events: Option<usize>,
    pub max_bytes: Option<usize>,
    pub notify: tokio::sync::watch::Sender<u64>,
}

impl Oplog {
    pub fn new(max_events: Option<usize>, max_bytes: Option<usize>) -> Self {
        Oplog {
            entries: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            max_events,
            max_bytes,
            notify: tokio::sync::watch::channel(0).0,
        }
    }

    pub fn push(&mut self, mut e: OplogEntry) {
        e.seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += e.size;
        self.entries.push_back(Arc::new(e));
        while self.entries.len() > 1
            && (self.max_events.is_some_and(|m| self.entries.len() > m)
                || self.max_bytes.is_some_and(|m| self.bytes > m))
        {
            self.pop_front();
        }
        // send_replace never fails, even without receivers.
        self.notify.send_replace(self.next_seq);
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes = self.bytes.saturating_sub(e.size);
        }
    }

    /// Keep only the newest `keep` entries (simulator-only `simTruncateOplog`).
    pub fn truncate_keep_last(&mut self, keep: usize) -> usize {
        let mut n = 0;
        while self.entries.len() > keep {
            self.pop_front();
            n += 1;
        }
        n
    }

    pub fn first_seq(&self) -> u64 {
        self.entries.front().map(|e| e.seq).unwrap_or(self.next_seq)
    }

    pub fn get(&self, seq: u64) -> Option<&Arc<OplogEntry>> {
        let first = self.first_seq();
        if seq < first {
            return None;
        }
        self.entries.get((seq - first) as usize)
    }

    /// Sequence number of the first entry with ts >= `ts`.
    pub fn seq_at_or_after(&self, ts: Timestamp) -> u64 {
        let idx = self
            .entries
            .partition_point(|e| (e.ts.time, e.ts.increment) < (ts.time, ts.increment));
        self.first_seq() + idx as u64
    }
}

// ---------------------------------------------------------------- tokens

pub const KIND_EVENT: u8 = 0x01;
pub const KIND_INVALIDATE: u8 = 0x02;
pub const KIND_HWM: u8 = 0xFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub time: u32,
    pub inc: u32,
    pub kind: u8,
    pub frag: u8,
}

impl Pos {
    pub fn token(&self) -> Document {
        doc! {"_data": format!("82{:08X}{:08X}{:02X}{:02X}", self.time, self.inc, self.kind, self.frag)}
    }
    pub fn ts(&self) -> Timestamp {
        Timestamp {
            time: self.time,
            increment: self.inc,
        }
    }
    pub fn decode(tok: &Bson) -> CmdResult<Pos> {
        let bad = || {
            CmdError::new(
                260,
                "Invalid resume token: could not decode the _data field",
            )
        };
        let data = match tok {
            Bson::Document(d) => d.get_str("_data").map_err(|_| bad())?,
            _ => {
                return Err(CmdError::new(
                    260,
                    "Invalid resume token: the token must be an object",
                ))
            }
        };
        if data.len() != 22 || !data.starts_with("82") {
            return Err(bad());
        }
        let h = |r: std::ops::Range<usize>| u32::from_str_radix(&data[r], 16).map_err(|_| bad());
        Ok(Pos {
            time: h(2..10)?,
            inc: h(10..18)?,
            kind: h(18..20)? as u8,
            frag: h(20..22)? as u8,
        })
    }
}

// ---------------------------------------------------------------- update description

/// Compute `updateDescription` the way the server's v2 update diff reports
/// it: changed/added fields (recursing into sub-documents and arrays
/// element-wise), removed fields, and arrays truncated to a shorter size.
pub fn update_description(old: &Document, new: &Document) -> Document {
    let mut updated = Document::new();
    let mut removed: Vec<Bson> = Vec::new();
    let mut truncated: Vec<Bson> = Vec::new();
    let mut ambiguous: Vec<(String, Vec<Bson>)> = Vec::new();
    diff_docs(
        old,
        new,
        "",
        &[],
        &mut updated,
        &mut removed,
        &mut truncated,
        &mut ambiguous,
    );
    let mut d =
        doc! {"updatedFields": updated, "removedFields": removed, "truncatedArrays": truncated};
    if !ambiguous.is_empty() {
        let mut dp = Document::new();
        for (p, comps) in ambiguous {
            dp.insert(p, comps);
        }
        // Stored under a private key; only shown with showExpandedEvents.
        d.insert("__disambiguatedPaths", dp);
    }
    d
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}.{k}")
    }
}

#[allow(clippy::too_many_arguments)]
fn note_path(path: &str, comps: &[Bson], amb: &mut Vec<(String, Vec<Bson>)>) {
    // A path is ambiguous when a field name contains '.' or is numeric
    // (could be read as an array index), or when it passes through an array.
    let is_amb = comps.iter().any(|c| match c {
        Bson::String(s) => {
            s.contains('.') || (!s.is_empty() && s.chars().all(|ch| ch.is_ascii_digit()))
        }
        _ => true,
    });
    if is_amb && !amb.iter().any(|(p, _)| p == path) {
        amb.push((path.to_string(), comps.to_vec()));
    }
}

#[allow(clippy::too_many_arguments)]
fn diff_docs(
    old: &Document,
    new: &Document,
    prefix: &str,
    comps: &[Bson],
    updated: &mut Document,
    removed: &mut Vec<Bson>,
    truncated: &mut Vec<Bson>,
    amb: &mut Vec<(String, Vec<Bson>)>,
) {
    for (k, nv) in new {
        let path = join(prefix, k);
        let mut c = comps.to_vec();
        c.push(Bson::String(k.clone()));
        match old.get(k) {
            Some(ov) if ov == nv => {}
            Some(Bson::Document(od)) if matches!(nv, Bson::Document(_)) => {
                if let Bson::Document(nd) = nv {
                    diff_docs(od, nd, &path, &c, updated, removed, truncated, amb);
                }
            }
            Some(Bson::Array(oa)) if matches!(nv, Bson::Array(_)) => {
                if let Bson::Array(na) = nv {
                    diff_arrays(oa, na, &path, &c, updated, removed, truncated, amb);
                }
            }
            _ => {
                note_path(&path, &c, amb);
                updated.insert(path, nv.clone());
            }
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            let path = join(prefix, k);
            let mut c = comps.to_vec();
            c.push(Bson::String(k.clone()));
            note_path(&path, &c, amb);
            removed.push(Bson::String(path));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn diff_arrays(
    old: &[Bson],
    new: &[Bson],
    prefix: &str,
    comps: &[Bson],
    updated: &mut Document,
    removed: &mut Vec<Bson>,
    truncated: &mut Vec<Bson>,
    amb: &mut Vec<(String, Vec<Bson>)>,
) {
    if new.len() < old.len() {
        truncated.push(Bson::Document(
            doc! {"field": prefix, "newSize": new.len() as i32},
        ));
    }
    for (i, nv) in new.iter().enumerate() {
        let path = format!("{prefix}.{i}");
        let mut c = comps.to_vec();
        c.push(Bson::Int32(i as i32));
        match old.get(i) {
            Some(ov) if ov == nv => {}
            Some(Bson::Document(od)) if matches!(nv, Bson::Document(_)) => {
                if let Bson::Document(nd) = nv {
                    diff_docs(od, nd, &path, &c, updated, removed, truncated, amb);
                }
            }
            _ => {
                note_path(&path, &c, amb);
                updated.insert(path, nv.clone());
            }
        }
    }
}

// ---------------------------------------------------------------- cursors

#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Collection { db: String, coll: String },
    Database { db: String },
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageMode {
    Off,
    Default,
    UpdateLookup,
    WhenAvailable,
    Required,
}

pub struct ChangeStreamCursor {
    pub scope: Scope,
    /// Sequence number of the next oplog entry to scan.
    pub next_seq: u64,
    /// Position of the last thing returned or scanned (for PBRT).
    pub pos: Pos,
    pub full_document: ImageMode,
    pub before_change: ImageMode,
    pub expanded: bool,
    pub pipeline: Vec<Document>,
    pub split: bool,
    /// Events already built but not yet returned (e.g. fragments, invalidate).
    pub pending: VecDeque<(Pos, Document)>,
    /// The stream hit an invalidate; the cursor closes after returning it.
    pub invalidated: bool,
    /// Skip events at or before this position (resume inside one entry).
    pub skip_through: Option<Pos>,
    pub ns: String,
}

fn image_mode(v: Option<&Bson>, field: &str) -> CmdResult<ImageMode> {
    Ok(match v {
        None => {
            if field == "fullDocument" {
                ImageMode::Default
            } else {
                ImageMode::Off
            }
        }
        Some(Bson::String(s)) => match s.as_str() {
            "default" => ImageMode::Default,
            "off" => ImageMode::Off,
            "updateLookup" if field == "fullDocument" => ImageMode::UpdateLookup,
            "whenAvailable" => ImageMode::WhenAvailable,
            "required" => ImageMode::Required,
            other => {
                return Err(CmdError::bad_value(format!(
                    "unknown {field} mode: '{other}'"
                )))
            }
        },
        Some(_) => return Err(CmdError::type_mismatch(format!("{field} must be a string"))),
    })
}

/// Open a change stream for `aggregate` on `db`/`coll` (`coll` None for a
/// database or cluster stream).
pub fn open(
    st: &mut State,
    db: &str,
    coll: Option<&str>,
    spec: &Document,
    rest: &[Document],
) -> CmdResult<ChangeStreamCursor> {
    let all = spec.get_bool("allChangesForCluster").unwrap_or(false);
    let scope = match coll {
        Some(c) => {
            if db == "admin" || db == "config" || db == "local" {
                return Err(CmdError::new(
                    73,
                    format!("$changeStream may not be opened on the internal {db} database"),
                ));
            }
            Scope::Collection {
                db: db.into(),
                coll: c.into(),
            }
        }
        None if all => {
            if db != "admin" {
                return Err(CmdError::new(
                    73,
                    "$changeStream must be run against the 'admin' database with {aggregate: 1} when allChangesForCluster is true",
                ));
            }
            Scope::Cluster
        }
        None => {
            if db == "admin" || db == "config" || db == "local" {
                return Err(CmdError::new(
                    73,
                    format!("$changeStream may not be opened on the internal {db} database"),
                ));
            }
            Scope::Database { db: db.into() }
        }
    };
    for k in spec.keys() {
        if !matches!(
            k.as_str(),
            "resumeAfter"
                | "startAfter"
                | "startAtOperationTime"
                | "fullDocument"
                | "fullDocumentBeforeChange"
                | "allChangesForCluster"
                | "showExpandedEvents"
                | "showMigrationEvents"
                | "showSystemEvents"
                | "allowToRunOnConfigDB"
                | "showRawUpdateDescription"
                | "comment"
        ) {
            return Err(CmdError::new(
                40415,
                format!("BSON field '$changeStream.{k}' is an unknown field."),
            ));
        }
    }
    let mut split = false;
    let mut pipeline = Vec::new();
    for (i, s) in rest.iter().enumerate() {
        let name = s.keys().next().map(String::as_str).unwrap_or("");
        match name {
            "$changeStreamSplitLargeEvent" => {
                if i + 1 != rest.len() {
                    return Err(CmdError::new(
                        7182802,
                        "$changeStreamSplitLargeEvent must be the last stage in the pipeline",
                    ));
                }
                split = true;
            }
            "$match" | "$project" | "$addFields" | "$set" | "$unset" | "$replaceRoot"
            | "$replaceWith" | "$redact" => pipeline.push(s.clone()),
            "$changeStream" => {
                return Err(CmdError::new(
                    40602,
                    "$changeStream is only valid as the first stage in a pipeline",
                ))
            }
            "$group" | "$sort" | "$limit" | "$skip" | "$count" | "$out" | "$merge" | "$lookup"
            | "$unwind" => {
                return Err(CmdError::new(
                    ErrorCodeNotAllowed::CODE,
                    format!("Stage {name} is not permitted in a $changeStream pipeline"),
                ))
            }
            _ => {
                return Err(CmdError::new(
                    40324,
                    format!("Unrecognized pipeline stage name: '{name}'"),
                ))
            }
        }
    }
    let full_document = image_mode(spec.get("fullDocument"), "fullDocument")?;
    let before_change = image_mode(
        spec.get("fullDocumentBeforeChange"),
        "fullDocumentBeforeChange",
    )?;
    let expanded = spec.get_bool("showExpandedEvents").unwrap_or(false);

    let oldest_ts = st.oplog.entries.front().map(|e| e.ts).unwrap_or(st.last_ts);
    let lost = |p: Pos| (p.time, p.inc) < (oldest_ts.time, oldest_ts.increment);
    let history_lost = || {
        CmdError::new(
            286,
            "Executor error during aggregate command on namespace :: caused by :: Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
        )
    };
    let set_count = ["resumeAfter", "startAfter", "startAtOperationTime"]
        .iter()
        .filter(|k| spec.contains_key(**k))
        .count();
    if set_count > 1 {
        return Err(CmdError::new(
            40674,
            "Only one type of resume option is allowed, but multiple were found.",
        ));
    }
    let (next_seq, pos, skip_through) = if let Some(tok) =
        spec.get("resumeAfter").or_else(|| spec.get("startAfter"))
    {
        let p = Pos::decode(tok)?;
        if p.kind == KIND_INVALIDATE && spec.contains_key("resumeAfter") {
            return Err(CmdError::new(
                260,
                "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.",
            ));
        }
        if lost(p) {
            return Err(history_lost());
        }
        let seq = st.oplog.seq_at_or_after(p.ts());
        match p.kind {
            KIND_HWM => {
                let mut s = seq;
                if st.oplog.get(s).is_some_and(|e| e.ts == p.ts()) {
                    s += 1;
                }
                (s, p, None)
            }
            _ => {
                // Like mongod: a token past the newest entry just waits; a
                // token inside the window that matches no event is fatal.
                let beyond_end = st.oplog.get(seq).is_none();
                let found = st.oplog.get(seq).filter(|e| e.ts == p.ts());
                if found.is_none() && !beyond_end {
                    let data = p.token().get_str("_data").unwrap_or("").to_string();
                    return Err(CmdError::new(
                        280,
                        format!("PlanExecutor error during aggregation :: caused by :: cannot resume stream; the resume token was not found. {{_data: \"{data}\"}}"),
                    ));
                }
                if p.kind == KIND_INVALIDATE {
                    (seq + 1, p, None)
                } else {
                    (seq, p, Some(p))
                }
            }
        }
    } else if let Some(t) = spec.get("startAtOperationTime") {
        let ts = match t {
            Bson::Timestamp(ts) => *ts,
            _ => {
                return Err(CmdError::type_mismatch(
                    "startAtOperationTime must be a timestamp",
                ))
            }
        };
        let p = Pos {
            time: ts.time,
            inc: ts.increment,
            kind: 0,
            frag: 0,
        };
        if lost(p) {
            return Err(history_lost());
        }
        (st.oplog.seq_at_or_after(ts), p, None)
    } else {
        let ts = st.last_ts;
        (
            st.oplog.next_seq,
            Pos {
                time: ts.time,
                inc: ts.increment,
                kind: KIND_HWM,
                frag: 0,
            },
            None,
        )
    };
    let ns = match &scope {
        Scope::Collection { db, coll } => format!("{db}.{coll}"),
        Scope::Database { db } => format!("{db}.$cmd.aggregate"),
        Scope::Cluster => "admin.$cmd.aggregate".to_string(),
    };
    Ok(ChangeStreamCursor {
        scope,
        next_seq,
        pos,
        full_document,
        before_change,
        expanded,
        pipeline,
        split,
        pending: VecDeque::new(),
        invalidated: false,
        skip_through,
        ns,
    })
}

/// Error code for stages not allowed in a change stream pipeline.
struct ErrorCodeNotAllowed;
impl ErrorCodeNotAllowed {
    const CODE: i32 = 31134;
}

fn internal_db(db: &str) -> bool {
    matches!(db, "admin" | "config" | "local")
}

enum Visible {
    No,
    Yes,
    /// Yes, and the stream is invalidated after it.
    Invalidating,
}

fn visible(scope: &Scope, e: &OplogEntry, expanded: bool) -> Visible {
    let sys = e.coll.starts_with("system.");
    let ddl_expanded = matches!(
        e.op,
        OpKind::Create { .. }
            | OpKind::CreateIndexes { .. }
            | OpKind::DropIndexes { .. }
            | OpKind::Modify { .. }
    );
    if ddl_expanded && !expanded {
        return Visible::No;
    }
    match scope {
        Scope::Collection { db, coll } => {
            if &e.db != db {
                return Visible::No;
            }
            if matches!(e.op, OpKind::DropDatabase) {
                return Visible::Invalidating;
            }
            if &e.coll != coll {
                return Visible::No;
            }
            match e.op {
                OpKind::Drop | OpKind::Rename { .. } => Visible::Invalidating,
                OpKind::Noop => Visible::No,
                _ => Visible::Yes,
            }
        }
        Scope::Database { db } => {
            if &e.db != db || sys {
                return Visible::No;
            }
            match e.op {
                OpKind::DropDatabase => Visible::Invalidating,
                OpKind::Noop => Visible::No,
                _ => Visible::Yes,
            }
        }
        Scope::Cluster => {
            if internal_db(&e.db) || sys || matches!(e.op, OpKind::Noop) {
                Visible::No
            } else {
                Visible::Yes
            }
        }
    }
}

/// Build the change event for `e` (None if this entry has no event for
/// the scope, e.g. dropDatabase on a collection stream, which only invalidates).
fn build_event(
    st: &State,
    cur: &ChangeStreamCursor,
    e: &OplogEntry,
) -> CmdResult<Option<Document>> {
    let pos = Pos {
        time: e.ts.time,
        inc: e.ts.increment,
        kind: KIND_EVENT,
        frag: 0,
    };
    let mut ev = Document::new();
    ev.insert("_id", pos.token());
    let ns = doc! {"db": &e.db, "coll": &e.coll};
    let coll_uuid = e
        .uuid
        .clone()
        .or_else(|| st.coll(&e.db, &e.coll).map(|c| c.uuid.clone()))
        .map(Bson::Binary);
    let key_of = |d: &Document| doc! {"_id": d.get("_id").cloned().unwrap_or(Bson::Null)};
    let (op_type, ns_doc): (&str, Document) = match &e.op {
        OpKind::Insert { .. } => ("insert", ns),
        OpKind::Update { .. } => ("update", ns),
        OpKind::Replace { .. } => ("replace", ns),
        OpKind::Delete { .. } => ("delete", ns),
        OpKind::Drop => ("drop", ns),
        OpKind::Rename { .. } => ("rename", ns),
        OpKind::DropDatabase => {
            if matches!(cur.scope, Scope::Collection { .. }) {
                return Ok(None);
            }
            ("dropDatabase", doc! {"db": &e.db})
        }
        OpKind::Create { .. } => ("create", ns),
        OpKind::CreateIndexes { .. } => ("createIndexes", ns),
        OpKind::DropIndexes { .. } => ("dropIndexes", ns),
        OpKind::Modify { .. } => ("modify", ns),
        OpKind::Noop => return Ok(None),
    };
    ev.insert("operationType", op_type);
    ev.insert("clusterTime", e.ts);
    ev.insert("wallTime", e.wall);
    let image_missing = |what: &str| {
        CmdError::new(
            280,
            format!("Change stream was configured to require a {what} for all update, delete and replace events, but the {what} was not found for event: {{operationType: \"{op_type}\"}}"),
        )
    };
    match &e.op {
        OpKind::Insert { doc, .. } => {
            ev.insert("fullDocument", (**doc).clone());
            ev.insert("ns", ns_doc);
            ev.insert("documentKey", key_of(doc));
        }
        OpKind::Update {
            pre,
            post,
            desc,
            pre_post,
        } => {
            ev.insert("ns", ns_doc);
            ev.insert("documentKey", key_of(post));
            let mut d = desc.clone();
            let amb = d.remove("__disambiguatedPaths");
            if cur.expanded {
                if let Some(a) = amb {
                    d.insert("disambiguatedPaths", a);
                } else {
                    d.insert("disambiguatedPaths", Document::new());
                }
            }
            ev.insert("updateDescription", d);
            match cur.full_document {
                ImageMode::UpdateLookup => {
                    let cur_doc = st
                        .coll(&e.db, &e.coll)
                        .and_then(|c| {
                            c.docs.get(&crate::bsonutil::Key(
                                post.get("_id").cloned().unwrap_or(Bson::Null),
                            ))
                        })
                        .map(|d| Bson::Document((**d).clone()))
                        .unwrap_or(Bson::Null);
                    ev.insert("fullDocument", cur_doc);
                }
                ImageMode::WhenAvailable => {
                    ev.insert(
                        "fullDocument",
                        if *pre_post {
                            Bson::Document((**post).clone())
                        } else {
                            Bson::Null
                        },
                    );
                }
                ImageMode::Required => {
                    if !*pre_post {
                        return Err(image_missing("post-image"));
                    }
                    ev.insert("fullDocument", (**post).clone());
                }
                _ => {}
            }
            before_image(cur, &mut ev, pre, *pre_post, &image_missing)?;
        }
        OpKind::Replace {
            pre,
            post,
            pre_post,
        } => {
            ev.insert("fullDocument", (**post).clone());
            ev.insert("ns", ns_doc);
            ev.insert("documentKey", key_of(post));
            before_image(cur, &mut ev, pre, *pre_post, &image_missing)?;
        }
        OpKind::Delete { pre, pre_post } => {
            ev.insert("ns", ns_doc);
            ev.insert("documentKey", key_of(pre));
            before_image(cur, &mut ev, pre, *pre_post, &image_missing)?;
        }
        OpKind::Drop | OpKind::DropDatabase => {
            ev.insert("ns", ns_doc);
        }
        OpKind::Rename {
            to_db,
            to_coll,
            uuid,
        } => {
            ev.insert("ns", ns_doc);
            ev.insert("to", doc! {"db": to_db, "coll": to_coll});
            if cur.expanded {
                ev.insert(
                    "operationDescription",
                    doc! {"to": {"db": to_db, "coll": to_coll}, "dropTarget": false},
                );
                ev.insert("collectionUUID", Bson::Binary(uuid.clone()));
            }
        }
        OpKind::Create {
            uuid,
            options,
            is_view,
        } => {
            ev.insert("ns", ns_doc);
            ev.insert("collectionUUID", Bson::Binary(uuid.clone()));
            let mut od = options.clone();
            if !is_view {
                od.insert("idIndex", doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"});
            }
            ev.insert("operationDescription", od);
        }
        OpKind::CreateIndexes { indexes } | OpKind::DropIndexes { indexes } => {
            ev.insert("ns", ns_doc);
            ev.insert("operationDescription", doc! {"indexes": indexes.clone()});
        }
        OpKind::Modify { desc } => {
            ev.insert("ns", ns_doc);
            ev.insert("operationDescription", desc.clone());
        }
        OpKind::Noop => {}
    }
    if cur.expanded && !ev.contains_key("collectionUUID") && !matches!(e.op, OpKind::DropDatabase) {
        if let Some(u) = coll_uuid {
            ev.insert("collectionUUID", u);
        }
    }
    Ok(Some(ev))
}

fn before_image(
    cur: &ChangeStreamCursor,
    ev: &mut Document,
    pre: &Arc<Document>,
    pre_post: bool,
    missing: &dyn Fn(&str) -> CmdError,
) -> CmdResult<()> {
    match cur.before_change {
        ImageMode::WhenAvailable => {
            ev.insert(
                "fullDocumentBeforeChange",
                if pre_post {
                    Bson::Document((**pre).clone())
                } else {
                    Bson::Null
                },
            );
        }
        ImageMode::Required => {
            if !pre_post {
                return Err(missing("pre-image"));
            }
            ev.insert("fullDocumentBeforeChange", (**pre).clone());
        }
        _ => {}
    }
    Ok(())
}

fn invalidate_event(e: &OplogEntry) -> (Pos, Document) {
    let pos = Pos {
        time: e.ts.time,
        inc: e.ts.increment,
        kind: KIND_INVALIDATE,
        frag: 0,
    };
    (
        pos,
        doc! {"_id": pos.token(), "operationType": "invalidate", "clusterTime": e.ts, "wallTime": e.wall},
    )
}

/// Split an oversized event into fragments of at most `limit` bytes each
/// (16MB, or the `simSetSplitEventThreshold` test knob).
fn split_event(pos: Pos, ev: Document, limit: usize) -> CmdResult<Vec<(Pos, Document)>> {
    let budget = limit.saturating_sub(1024).max(512);
    let mut groups: Vec<Document> = Vec::new();
    let mut curd = Document::new();
    let mut cur_size = 0usize;
    for (k, v) in ev.into_iter() {
        if k == "_id" {
            continue;
        }
        let mut one = Document::new();
        one.insert(k.clone(), v.clone());
        let sz = doc_size(&one);
        if sz > budget {
            return Err(CmdError::new(
                10334,
                "BSONObj size is invalid: a single field of the change event exceeds the fragment size limit",
            ));
        }
        if cur_size + sz > budget && !curd.is_empty() {
            groups.push(std::mem::take(&mut curd));
            cur_size = 0;
        }
        curd.insert(k, v);
        cur_size += sz;
    }
    if !curd.is_empty() {
        groups.push(curd);
    }
    let of = groups.len() as i32;
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let p = Pos {
                frag: (i + 1) as u8,
                ..pos
            };
            let mut d =
                doc! {"_id": p.token(), "splitEvent": {"fragment": (i + 1) as i32, "of": of}};
            d.extend(g);
            (p, d)
        })
        .collect())
}

/// Pull up to `max` events from the oplog into a batch. Returns the batch,
/// the postBatchResumeToken and whether the cursor is now closed.
pub fn next_batch(
    st: &State,
    cur: &mut ChangeStreamCursor,
    max: usize,
) -> CmdResult<(Vec<Document>, Document, bool)> {
    let mut out: Vec<Document> = Vec::new();
    let mut bytes = 0usize;
    let first = st.oplog.first_seq();
    if cur.next_seq < first && cur.pending.is_empty() {
        return Err(CmdError::new(
            286,
            "Executor error during getMore :: caused by :: Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
        ));
    }
    loop {
        while let Some((p, d)) = cur.pending.pop_front() {
            let sz = doc_size(&d);
            if !out.is_empty() && (out.len() >= max || bytes + sz > MAX_BSON) {
                cur.pending.push_front((p, d));
                return Ok((out, cur.pos.token(), false));
            }
            bytes += sz;
            cur.pos = p;
            let inval = d.get_str("operationType") == Ok("invalidate");
            out.push(d);
            if inval {
                cur.invalidated = true;
                cur.pending.clear();
                return Ok((out, cur.pos.token(), true));
            }
        }
        if out.len() >= max {
            return Ok((out, cur.pos.token(), false));
        }
        let Some(e) = st.oplog.get(cur.next_seq).cloned() else {
            // Reached the end: everything up to the last entry was scanned.
            if let Some(last) = st.oplog.entries.back() {
                let hwm = Pos {
                    time: last.ts.time,
                    inc: last.ts.increment,
                    kind: KIND_HWM,
                    frag: 0,
                };
                if hwm > cur.pos && cur.pending.is_empty() {
                    cur.pos = hwm;
                }
            }
            return Ok((out, cur.pos.token(), false));
        };
        cur.next_seq += 1;
        let vis = visible(&cur.scope, &e, cur.expanded);
        if matches!(vis, Visible::No) {
            continue;
        }
        let mut produced: Vec<(Pos, Document)> = Vec::new();
        if let Some(ev) = build_event(st, cur, &e)? {
            let pos = Pos {
                time: e.ts.time,
                inc: e.ts.increment,
                kind: KIND_EVENT,
                frag: 0,
            };
            if let Some(ev) = apply_user_pipeline(&cur.pipeline, ev, &pos)? {
                let limit = if cur.split {
                    st.split_event_bytes
                } else {
                    MAX_BSON
                };
                if doc_size(&ev) > limit {
                    if cur.split {
                        produced.extend(split_event(pos, ev, limit)?);
                    } else {
                        return Err(CmdError::new(
                            10334,
                            format!("Executor error during getMore :: caused by :: BSONObj size: {} (0x{:X}) is invalid. Size must be between 0 and 16793600(16MB)", doc_size(&ev), doc_size(&ev)),
                        ));
                    }
                } else {
                    produced.push((pos, ev));
                }
            }
        }
        if matches!(vis, Visible::Invalidating) {
            produced.push(invalidate_event(&e));
        }
        for (p, d) in produced {
            if cur.skip_through.is_some_and(|s| p <= s) {
                continue;
            }
            cur.pending.push_back((p, d));
        }
        if cur.pending.is_empty() {
            // Filtered out: the scan position still advances past it.
            let p = Pos {
                time: e.ts.time,
                inc: e.ts.increment,
                kind: KIND_HWM,
                frag: 0,
            };
            if p > cur.pos {
                cur.pos = p;
            }
        }
    }
}

fn apply_user_pipeline(
    pipeline: &[Document],
    ev: Document,
    pos: &Pos,
) -> CmdResult<Option<Document>> {
    if pipeline.is_empty() {
        return Ok(Some(ev));
    }
    let out = crate::agg::run_pipeline(vec![ev], pipeline, &Document::new())?;
    let Some(d) = out.into_iter().next() else {
        return Ok(None);
    };
    if d.get("_id") != Some(&Bson::Document(pos.token())) {
        return Err(CmdError::new(
            280,
            "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
        ));
    }
    Ok(Some(d))
}
