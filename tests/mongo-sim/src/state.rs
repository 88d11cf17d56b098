//! The in-memory data store: databases, collections (ordered `_id` index of
//! `Arc`'d documents), cursors, fail points and the oplog.
//!
//! Everything lives in one `State` protected by a `std::sync::Mutex` in
//! `server::Shared`. The lock is only ever held while executing a command in
//! memory, never across socket I/O or an `.await`, so a slow client cannot
//! stall others and commands are linearisable (which is what a one-member
//! replica set gives us too).

use crate::bsonutil::{doc_size, Key};
use crate::changestream::{ChangeStreamCursor, OpKind, Oplog, OplogEntry};
use crate::error::{CmdError, CmdResult};
use crate::failpoint::FailPoint;
use bson::{doc, Bson, Document, Timestamp};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct IndexSpec {
    pub name: String,
    pub key: Document,
    pub unique: bool,
    pub spec: Document,
}

#[derive(Clone, Debug)]
pub struct Collection {
    pub docs: BTreeMap<Key, Arc<Document>>,
    pub uuid: bson::Binary,
    pub pre_post_images: bool,
    pub indexes: Vec<IndexSpec>,
    /// Sum of the BSON sizes of all documents (for collStats/dataSize).
    pub data_size: usize,
    pub options: Document,
    pub is_view: bool,
}

impl Collection {
    pub fn new(options: Document) -> Self {
        let pre_post = options
            .get_document("changeStreamPreAndPostImages")
            .ok()
            .and_then(|d| d.get_bool("enabled").ok())
            .unwrap_or(false);
        let is_view = options.contains_key("viewOn");
        Collection {
            docs: BTreeMap::new(),
            uuid: bson::Binary {
                subtype: bson::spec::BinarySubtype::Uuid,
                bytes: bson::Uuid::new().bytes().to_vec(),
            },
            pre_post_images: pre_post,
            indexes: if is_view {
                Vec::new()
            } else {
                vec![IndexSpec {
                    name: "_id_".into(),
                    key: doc! {"_id": 1},
                    unique: true,
                    spec: doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"},
                }]
            },
            data_size: 0,
            options,
            is_view,
        }
    }
}

#[derive(Default, Debug)]
pub struct Database {
    pub colls: BTreeMap<String, Collection>,
}

/// A regular (non change stream) cursor holds the remaining documents.
pub struct QueryCursor {
    pub ns: String,
    pub docs: VecDeque<Document>,
}

pub enum Cursor {
    Query(QueryCursor),
    Change(Box<ChangeStreamCursor>),
}

pub struct State {
    pub dbs: BTreeMap<String, Database>,
    pub oplog: Oplog,
    pub cursors: HashMap<i64, Cursor>,
    pub next_cursor_id: i64,
    pub last_ts: Timestamp,
    pub fail_points: HashMap<String, FailPoint>,
    /// Set by `replSetStepDown` until the step-up task runs.
    pub stepped_down: bool,
    pub topology_counter: i64,
    /// Events larger than this are split by `$changeStreamSplitLargeEvent`
    /// (16 MiB like mongod; lowered by the test knob `simSetSplitEventThreshold`).
    pub split_event_bytes: usize,
}

pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl State {
    pub fn new(oplog: Oplog) -> Self {
        let mut s = State {
            dbs: BTreeMap::new(),
            oplog,
            cursors: HashMap::new(),
            next_cursor_id: 1_000_001,
            last_ts: Timestamp {
                time: now_secs(),
                increment: 0,
            },
            fail_points: HashMap::new(),
            stepped_down: false,
            topology_counter: 0,
            split_event_bytes: crate::changestream::MAX_BSON,
        };
        // Like a real replica set's "initiating set" no-op: it marks where
        // history starts, so resuming from before server start is "lost".
        let ts = s.next_ts();
        s.oplog.push(OplogEntry::new(
            ts,
            String::new(),
            String::new(),
            OpKind::Noop,
        ));
        s
    }

    pub fn next_ts(&mut self) -> Timestamp {
        let now = now_secs();
        self.last_ts = if now > self.last_ts.time {
            Timestamp {
                time: now,
                increment: 1,
            }
        } else {
            Timestamp {
                time: self.last_ts.time,
                increment: self.last_ts.increment + 1,
            }
        };
        self.last_ts
    }

    pub fn is_primary(&self) -> bool {
        !self.stepped_down
    }

    pub fn check_writable(&mut self) -> CmdResult<()> {
        if self.is_primary() {
            Ok(())
        } else {
            Err(CmdError::new(10107, "not primary").with_label("RetryableWriteError"))
        }
    }

    pub fn coll(&self, db: &str, c: &str) -> Option<&Collection> {
        self.dbs.get(db).and_then(|d| d.colls.get(c))
    }

    pub fn coll_mut(&mut self, db: &str, c: &str) -> Option<&mut Collection> {
        self.dbs.get_mut(db).and_then(|d| d.colls.get_mut(c))
    }

    fn log(&mut self, db: &str, coll: &str, op: OpKind) -> Timestamp {
        let ts = self.next_ts();
        let mut e = OplogEntry::new(ts, db.to_string(), coll.to_string(), op);
        e.uuid = self.coll(db, coll).map(|c| c.uuid.clone());
        self.oplog.push(e);
        ts
    }

    /// Create a collection (implicitly or explicitly); logs a `create` entry.
    pub fn create_coll(&mut self, db: &str, c: &str, options: Document) -> CmdResult<()> {
        validate_ns(db, c)?;
        if self.coll(db, c).is_some() {
            return Err(CmdError::new(
                48,
                format!("Collection {db}.{c} already exists."),
            ));
        }
        let coll = Collection::new(options.clone());
        let uuid = coll.uuid.clone();
        let is_view = coll.is_view;
        self.dbs
            .entry(db.to_string())
            .or_default()
            .colls
            .insert(c.to_string(), coll);
        self.log(
            db,
            c,
            OpKind::Create {
                uuid,
                options,
                is_view,
            },
        );
        Ok(())
    }

    pub fn ensure_coll(&mut self, db: &str, c: &str) -> CmdResult<()> {
        if self.coll(db, c).is_none() {
            self.create_coll(db, c, Document::new())?;
        }
        Ok(())
    }

    fn check_unique(coll: &Collection, d: &Document, skip_id: Option<&Key>) -> CmdResult<()> {
        for ix in coll.indexes.iter().filter(|i| i.unique && i.name != "_id_") {
            let key: Vec<Bson> = ix
                .key
                .keys()
                .map(|k| {
                    crate::bsonutil::get_path(d, k)
                        .cloned()
                        .unwrap_or(Bson::Null)
                })
                .collect();
            for (k, other) in &coll.docs {
                if skip_id == Some(k) {
                    continue;
                }
                let okey: Vec<Bson> = ix
                    .key
                    .keys()
                    .map(|k| {
                        crate::bsonutil::get_path(other, k)
                            .cloned()
                            .unwrap_or(Bson::Null)
                    })
                    .collect();
                if key
                    .iter()
                    .zip(okey.iter())
                    .all(|(a, b)| crate::bsonutil::bson_eq(a, b))
                {
                    let mut e = CmdError::new(
                        11000,
                        format!(
                            "E11000 duplicate key error collection: index: {} dup key: {{ ... }}",
                            ix.name
                        ),
                    );
                    let mut kv = Document::new();
                    for (k, v) in ix.key.keys().zip(key.iter()) {
                        kv.insert(k, v.clone());
                    }
                    e.extra = Some(Box::new(
                        doc! {"keyPattern": ix.key.clone(), "keyValue": kv},
                    ));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn insert(&mut self, db: &str, c: &str, d: Document) -> CmdResult<()> {
        self.ensure_coll(db, c)?;
        let d = crate::update::ensure_id_first(d);
        let id = d.get("_id").cloned().unwrap_or(Bson::Null);
        if matches!(id, Bson::Array(_)) {
            return Err(CmdError::new(2, "The '_id' value cannot be of type array"));
        }
        let coll = self
            .coll(db, c)
            .ok_or_else(|| CmdError::new(26, "ns not found"))?;
        if coll.is_view {
            return Err(CmdError::new(
                166,
                format!("Namespace {db}.{c} is a view, not a collection"),
            ));
        }
        if let Bson::Document(idd) = &id {
            if let Some(k) = idd.keys().find(|k| k.starts_with('$')) {
                return Err(CmdError::new(
                    52,
                    format!("_id fields may not contain '$'-prefixed fields: {k} is not valid for storage."),
                ));
            }
        }
        let key = Key(id.clone());
        if coll.docs.contains_key(&key) {
            let mut e = CmdError::new(
                11000,
                format!("E11000 duplicate key error collection: {db}.{c} index: _id_ dup key: {{ _id: {} }}", crate::bsonutil::short_json(&id)),
            );
            e.extra = Some(Box::new(
                doc! {"keyPattern": {"_id": 1}, "keyValue": {"_id": id.clone()}},
            ));
            return Err(e);
        }
        Self::check_unique(coll, &d, None)?;
        let size = doc_size(&d);
        if size > 16 * 1024 * 1024 {
            return Err(CmdError::new(
                10334,
                format!("object to insert too large. size in bytes: {size}, max size: 16777216"),
            ));
        }
        let arc = Arc::new(d);
        let coll = self
            .coll_mut(db, c)
            .ok_or_else(|| CmdError::new(26, "ns not found"))?;
        coll.docs.insert(key, arc.clone());
        coll.data_size += size;
        let pre_post = coll.pre_post_images;
        self.log(db, c, OpKind::Insert { doc: arc, pre_post });
        Ok(())
    }

    /// Replace the stored document with `new` (same `_id`), logging an update
    /// or replace entry. No-op writes are not logged, as on a real server.
    pub fn replace_doc(
        &mut self,
        db: &str,
        c: &str,
        old: Arc<Document>,
        new: Document,
        is_replacement: bool,
    ) -> CmdResult<Arc<Document>> {
        let key = Key(old.get("_id").cloned().unwrap_or(Bson::Null));
        let new = crate::update::ensure_id_first(new);
        if *old == new {
            return Ok(old);
        }
        let size = doc_size(&new);
        if size > 16 * 1024 * 1024 {
            return Err(CmdError::new(
                17419,
                "Resulting document after update is larger than 16777216",
            ));
        }
        {
            let coll = self
                .coll(db, c)
                .ok_or_else(|| CmdError::new(26, "ns not found"))?;
            Self::check_unique(coll, &new, Some(&key))?;
        }
        let arc = Arc::new(new);
        let coll = self
            .coll_mut(db, c)
            .ok_or_else(|| CmdError::new(26, "ns not found"))?;
        coll.data_size = coll.data_size + size - doc_size(&old).min(coll.data_size + size);
        coll.docs.insert(key, arc.clone());
        let pre_post = coll.pre_post_images;
        let op = if is_replacement {
            OpKind::Replace {
                pre: old,
                post: arc.clone(),
                pre_post,
            }
        } else {
            let desc = crate::changestream::update_description(&old, &arc);
            OpKind::Update {
                pre: old,
                post: arc.clone(),
                desc,
                pre_post,
            }
        };
        self.log(db, c, op);
        Ok(arc)
    }

    pub fn delete_doc(&mut self, db: &str, c: &str, old: Arc<Document>) -> CmdResult<()> {
        let key = Key(old.get("_id").cloned().unwrap_or(Bson::Null));
        let coll = self
            .coll_mut(db, c)
            .ok_or_else(|| CmdError::new(26, "ns not found"))?;
        if coll.docs.remove(&key).is_some() {
            coll.data_size = coll.data_size.saturating_sub(doc_size(&old));
        }
        let pre_post = coll.pre_post_images;
        self.log(db, c, OpKind::Delete { pre: old, pre_post });
        Ok(())
    }

    pub fn drop_coll(&mut self, db: &str, c: &str) -> CmdResult<bool> {
        let existed = self
            .dbs
            .get_mut(db)
            .and_then(|d| d.colls.remove(c))
            .is_some();
        if existed {
            self.log(db, c, OpKind::Drop);
            if self.dbs.get(db).is_some_and(|d| d.colls.is_empty()) {
                self.dbs.remove(db);
            }
            self.cursors_on_ns_invalid(db, c);
        }
        Ok(existed)
    }

    fn cursors_on_ns_invalid(&mut self, db: &str, c: &str) {
        let ns = format!("{db}.{c}");
        self.cursors
            .retain(|_, cur| !matches!(cur, Cursor::Query(q) if q.ns == ns));
    }

    pub fn drop_db(&mut self, db: &str) {
        let names: Vec<String> = self
            .dbs
            .get(db)
            .map(|d| d.colls.keys().cloned().collect())
            .unwrap_or_default();
        for n in &names {
            let _ = self.drop_coll(db, n);
        }
        self.dbs.remove(db);
        self.log(db, "", OpKind::DropDatabase);
    }

    pub fn rename(
        &mut self,
        from_db: &str,
        from: &str,
        to_db: &str,
        to: &str,
        drop_target: bool,
    ) -> CmdResult<()> {
        if self.coll(from_db, from).is_none() {
            return Err(CmdError::new(26, "source namespace does not exist"));
        }
        validate_ns(to_db, to)?;
        if self.coll(to_db, to).is_some() {
            if !drop_target {
                return Err(CmdError::new(48, "target namespace exists"));
            }
            self.drop_coll(to_db, to)?;
        }
        let coll = self
            .dbs
            .get_mut(from_db)
            .and_then(|d| d.colls.remove(from))
            .ok_or_else(|| CmdError::new(26, "source namespace does not exist"))?;
        let uuid = coll.uuid.clone();
        self.dbs
            .entry(to_db.to_string())
            .or_default()
            .colls
            .insert(to.to_string(), coll);
        if self.dbs.get(from_db).is_some_and(|d| d.colls.is_empty()) {
            self.dbs.remove(from_db);
        }
        self.cursors_on_ns_invalid(from_db, from);
        self.log(
            from_db,
            from,
            OpKind::Rename {
                to_db: to_db.into(),
                to_coll: to.into(),
                uuid,
            },
        );
        Ok(())
    }

    pub fn log_ddl(&mut self, db: &str, c: &str, op: OpKind) {
        self.log(db, c, op);
    }

    pub fn new_cursor_id(&mut self) -> i64 {
        self.next_cursor_id += 1;
        self.next_cursor_id
    }
}

pub fn validate_ns(db: &str, c: &str) -> CmdResult<()> {
    if db.is_empty() || db.contains(['/', '\\', '.', ' ', '"', '$']) {
        return Err(CmdError::new(73, format!("Invalid database name: '{db}'")));
    }
    if c.is_empty() || c.contains('$') || c.starts_with('.') {
        return Err(CmdError::new(73, format!("Invalid collection name: {c}")));
    }
    Ok(())
}
