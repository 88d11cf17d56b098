//! Command implementations. All run synchronously under the state lock
//! except `getMore`, which may wait for new oplog entries without the lock.

use crate::bsonutil::{as_f64, as_i64, bson_eq, cmp_bson, doc_size, Key};
use crate::changestream::{self, OpKind};
use crate::error::{CmdError, CmdResult};
use crate::query;
use crate::server::Shared;
use crate::state::{Cursor, IndexSpec, QueryCursor, State};
use crate::update::{self, UpdateKind};
use bson::{doc, Bson, Document};
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

/// Per-connection information commands may need.
pub struct ConnCtx {
    pub id: i64,
    pub app_name: Option<String>,
}

const DEFAULT_BATCH: usize = 101;

fn coll_name<'a>(cmd: &'a Document, name: &str) -> CmdResult<&'a str> {
    cmd.get_str(name).map_err(|_| {
        CmdError::new(
            73,
            format!(
                "collection name has invalid type {}",
                cmd.get(name)
                    .map(crate::bsonutil::type_name)
                    .unwrap_or("missing")
            ),
        )
    })
}

fn get_doc<'a>(cmd: &'a Document, k: &str) -> CmdResult<Option<&'a Document>> {
    match cmd.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(other) => Err(CmdError::type_mismatch(format!(
            "BSON field '{k}' is the wrong type '{}', expected type 'object'",
            crate::bsonutil::type_name(other)
        ))),
    }
}

pub fn run(
    shared: &Shared,
    st: &mut State,
    ctx: &ConnCtx,
    name: &str,
    db: &str,
    cmd: &Document,
) -> CmdResult<Document> {
    // `let` values are expressions, evaluated once per command.
    let let_vars = match cmd.get_document("let") {
        Ok(l) => {
            let mut v = Document::new();
            for (k, e) in l {
                v.insert(k, crate::agg::eval_expr(&Bson::Null, e, &Document::new())?);
            }
            Some(v)
        }
        Err(_) => None,
    };
    let _guard =
        crate::bsonutil::exec_context(let_vars.as_ref(), cmd.get_document("collation").ok());
    // A stepped-down node serves reads only to clients that allow secondaries.
    if st.stepped_down && matches!(name, "find" | "aggregate" | "count" | "distinct") {
        let mode = cmd
            .get_document("$readPreference")
            .ok()
            .and_then(|r| r.get_str("mode").ok())
            .unwrap_or("primary");
        if mode == "primary" {
            return Err(CmdError::new(13435, "not primary and secondaryOk=false"));
        }
    }
    run_inner(shared, st, ctx, name, db, cmd)
}

fn run_inner(
    shared: &Shared,
    st: &mut State,
    ctx: &ConnCtx,
    name: &str,
    db: &str,
    cmd: &Document,
) -> CmdResult<Document> {
    match name {
        "ping" | "endSessions" | "killAllSessions" | "refreshSessions" | "abortTransaction"
        | "commitTransaction" | "logout" | "saslStart" => Ok(doc! {}),
        "buildInfo" | "buildinfo" => Ok(doc! {
            "version": "7.0.14", "gitVersion": "mongo-sim", "versionArray": [7, 0, 14, 0],
            "modules": [], "allocator": "system", "javascriptEngine": "none", "sysInfo": "deprecated",
            "bits": 64, "debug": false, "maxBsonObjectSize": 16_777_216, "storageEngines": ["inMemory"],
        }),
        "whatsmyuri" => Ok(doc! {"you": "127.0.0.1:0"}),
        "getParameter" => Ok(doc! {"featureCompatibilityVersion": {"version": "7.0"}}),
        "getCmdLineOpts" => Ok(
            doc! {"argv": ["mongo-sim"], "parsed": {"replication": {"replSet": shared.opts.repl_set.clone()}}},
        ),
        "hostInfo" => Ok(
            doc! {"system": {"hostname": shared.me.clone(), "numCores": 2}, "os": {"type": "Linux"}},
        ),
        "connectionStatus" => {
            Ok(doc! {"authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []}})
        }
        "serverStatus" => Ok(doc! {
            "host": shared.me.clone(), "version": "7.0.14", "process": "mongod", "pid": std::process::id() as i64,
            "uptime": shared.started.elapsed().as_secs_f64(), "uptimeMillis": shared.started.elapsed().as_millis() as i64,
            "localTime": bson::DateTime::now(),
            "connections": {"current": 1, "available": 1000},
            "repl": {"setName": shared.opts.repl_set.clone(), "isWritablePrimary": st.is_primary(), "primary": shared.me.clone(), "me": shared.me.clone()},
            "storageEngine": {"name": "inMemory"},
            "oplog": {"entries": st.oplog.entries.len() as i64, "bytes": st.oplog.bytes as i64, "firstSeq": st.oplog.first_seq() as i64},
        }),
        "replSetGetStatus" => Ok(doc! {
            "set": shared.opts.repl_set.clone(), "date": bson::DateTime::now(), "myState": if st.is_primary() {1} else {2},
            "members": [{"_id": 0, "name": shared.me.clone(), "health": 1.0, "state": if st.is_primary() {1} else {2},
                "stateStr": if st.is_primary() {"PRIMARY"} else {"SECONDARY"}, "self": true, "optime": {"ts": st.last_ts, "t": 1i64}}],
        }),
        "replSetGetConfig" => Ok(
            doc! {"config": {"_id": shared.opts.repl_set.clone(), "version": 1, "members": [{"_id": 0, "host": shared.me.clone()}]}},
        ),
        "configureFailPoint" => {
            let (fp_name, fp) = crate::failpoint::parse(cmd)?;
            if matches!(fp.mode, crate::failpoint::Mode::Off) {
                st.fail_points.remove(&fp_name);
            } else {
                st.fail_points.insert(fp_name, fp);
            }
            Ok(doc! {"count": 0})
        }
        "simSetSplitEventThreshold" => {
            // Test knob: split change events above `bytes` instead of 16 MiB,
            // so split-event handling is testable with small documents.
            // 0 (or no `bytes`) restores the real limit.
            let bytes = cmd.get("bytes").and_then(as_i64).unwrap_or(0).max(0) as usize;
            st.split_event_bytes = if bytes == 0 {
                crate::changestream::MAX_BSON
            } else {
                bytes.clamp(1024, crate::changestream::MAX_BSON)
            };
            Ok(doc! {"bytes": st.split_event_bytes as i64})
        }
        "simTruncateOplog" => {
            let keep = cmd.get("keepLast").and_then(as_i64).unwrap_or(0).max(0) as usize;
            let removed = st.oplog.truncate_keep_last(keep);
            Ok(doc! {"removed": removed as i64, "remaining": st.oplog.entries.len() as i64})
        }
        "listDatabases" => {
            let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
            let filter = get_doc(cmd, "filter")?.cloned().unwrap_or_default();
            let mut dbs = Vec::new();
            let mut total = 0i64;
            for (n, d) in &st.dbs {
                let size: usize = d.colls.values().map(|c| c.data_size).sum();
                total += size as i64;
                let entry = if name_only {
                    doc! {"name": n}
                } else {
                    doc! {"name": n, "sizeOnDisk": size as i64, "empty": d.colls.is_empty()}
                };
                if query::matches(&entry, &filter)? {
                    dbs.push(entry);
                }
            }
            Ok(doc! {"databases": dbs, "totalSize": total})
        }
        "listCollections" => list_collections(st, db, cmd),
        "listIndexes" => {
            let c = coll_name(cmd, name)?;
            let coll = st
                .coll(db, c)
                .ok_or_else(|| CmdError::new(26, format!("ns does not exist: {db}.{c}")))?;
            let docs: Vec<Document> = coll.indexes.iter().map(|i| i.spec.clone()).collect();
            Ok(cursor_reply(
                st,
                format!("{db}.{c}"),
                docs,
                usize::MAX,
                true,
            ))
        }
        "create" => {
            let c = coll_name(cmd, name)?;
            let mut opts = Document::new();
            for (k, v) in cmd {
                if !matches!(
                    k.as_str(),
                    "create"
                        | "$db"
                        | "lsid"
                        | "$clusterTime"
                        | "writeConcern"
                        | "txnNumber"
                        | "$readPreference"
                        | "comment"
                        | "apiVersion"
                        | "apiStrict"
                        | "apiDeprecationErrors"
                ) {
                    opts.insert(k, v.clone());
                }
            }
            st.check_writable()?;
            st.create_coll(db, c, opts)?;
            Ok(doc! {})
        }
        "drop" => {
            let c = coll_name(cmd, name)?;
            st.check_writable()?;
            let had = st.coll(db, c).map(|c| c.indexes.len() as i32).unwrap_or(0);
            if !st.drop_coll(db, c)? {
                // 7.0 no longer errors on a missing namespace.
                return Ok(doc! {});
            }
            Ok(doc! {"nIndexesWas": had, "ns": format!("{db}.{c}")})
        }
        "dropDatabase" => {
            st.check_writable()?;
            st.drop_db(db);
            Ok(doc! {"dropped": db})
        }
        "renameCollection" => {
            st.check_writable()?;
            let from = cmd
                .get_str("renameCollection")
                .map_err(|_| CmdError::type_mismatch("renameCollection must be a string"))?;
            let to = cmd
                .get_str("to")
                .map_err(|_| CmdError::type_mismatch("'to' must be a string"))?;
            let (fdb, fc) = from
                .split_once('.')
                .ok_or_else(|| CmdError::new(73, format!("Invalid source namespace: {from}")))?;
            let (tdb, tc) = to
                .split_once('.')
                .ok_or_else(|| CmdError::new(73, format!("Invalid target namespace: {to}")))?;
            st.rename(
                fdb,
                fc,
                tdb,
                tc,
                cmd.get_bool("dropTarget").unwrap_or(false),
            )?;
            Ok(doc! {})
        }
        "collMod" => {
            let c = coll_name(cmd, name)?;
            st.check_writable()?;
            let coll = st
                .coll_mut(db, c)
                .ok_or_else(|| CmdError::new(26, format!("ns does not exist: {db}.{c}")))?;
            let mut desc = Document::new();
            for (k, v) in cmd {
                match k.as_str() {
                    "changeStreamPreAndPostImages" => {
                        let en = v
                            .as_document()
                            .and_then(|d| d.get_bool("enabled").ok())
                            .unwrap_or(false);
                        coll.pre_post_images = en;
                        coll.options.insert(k, v.clone());
                        desc.insert(k, v.clone());
                    }
                    "validator" | "validationLevel" | "validationAction" | "expireAfterSeconds"
                    | "index" => {
                        coll.options.insert(k, v.clone());
                        desc.insert(k, v.clone());
                    }
                    _ => {}
                }
            }
            st.log_ddl(db, c, OpKind::Modify { desc });
            Ok(doc! {})
        }
        "createIndexes" => create_indexes(st, db, cmd),
        "dropIndexes" | "deleteIndexes" => drop_indexes(st, db, cmd),
        "killCursors" => {
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            let mut killed = Vec::new();
            let mut not_found = Vec::new();
            for id in ids {
                let i = as_i64(&id).unwrap_or(0);
                if st.cursors.remove(&i).is_some() {
                    killed.push(Bson::Int64(i));
                } else {
                    not_found.push(Bson::Int64(i));
                }
            }
            Ok(
                doc! {"cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": []},
            )
        }
        "insert" => insert(st, db, cmd),
        "update" => update_cmd(st, db, cmd),
        "delete" => delete_cmd(st, db, cmd),
        "findAndModify" | "findandmodify" => find_and_modify(st, db, cmd),
        "find" => find(st, db, cmd),
        "count" => {
            let c = coll_name(cmd, name)?;
            let filter = get_doc(cmd, "query")?.cloned().unwrap_or_default();
            let skip = cmd.get("skip").and_then(as_i64).unwrap_or(0).max(0) as usize;
            let limit = cmd
                .get("limit")
                .and_then(as_i64)
                .unwrap_or(0)
                .unsigned_abs() as usize;
            let mut n = match st.coll(db, c) {
                None => 0,
                Some(coll) if coll.is_view => {
                    let docs = view_docs(st, db, c)?;
                    let mut n = 0;
                    for d in docs {
                        if query::matches(&d, &filter)? {
                            n += 1;
                        }
                    }
                    n
                }
                Some(coll) if filter.is_empty() => coll.docs.len(),
                Some(coll) => {
                    let mut n = 0;
                    for d in coll.docs.values() {
                        if query::matches(d, &filter)? {
                            n += 1;
                        }
                    }
                    n
                }
            };
            n = n.saturating_sub(skip);
            if limit > 0 {
                n = n.min(limit);
            }
            Ok(doc! {"n": n as i32})
        }
        "distinct" => {
            let c = coll_name(cmd, name)?;
            let key = cmd
                .get_str("key")
                .map_err(|_| CmdError::type_mismatch("key must be a string"))?;
            let filter = get_doc(cmd, "query")?.cloned().unwrap_or_default();
            let mut vals: Vec<Bson> = Vec::new();
            if let Some(coll) = st.coll(db, c) {
                for d in coll.docs.values() {
                    if !query::matches(d, &filter)? {
                        continue;
                    }
                    for v in query::values_at(d, key, false) {
                        let items = match v {
                            Bson::Array(a) => a,
                            o => vec![o],
                        };
                        for i in items {
                            if !vals.iter().any(|x| bson_eq(x, &i)) {
                                vals.push(i);
                            }
                        }
                    }
                }
            }
            vals.sort_by(cmp_bson);
            Ok(doc! {"values": vals})
        }
        "aggregate" => aggregate(st, db, cmd),
        "collStats" => {
            let c = coll_name(cmd, name)?;
            let coll = st
                .coll(db, c)
                .ok_or_else(|| CmdError::new(26, format!("ns not found: {db}.{c}")))?;
            let count = coll.docs.len() as i64;
            let size = coll.data_size as i64;
            let mut r = doc! {"ns": format!("{db}.{c}"), "count": count, "size": size, "storageSize": size, "totalIndexSize": count * 16, "totalSize": size + count * 16, "nindexes": coll.indexes.len() as i32, "capped": false, "indexSizes": {"_id_": count * 16}};
            if count > 0 {
                r.insert("avgObjSize", size / count);
            }
            Ok(r)
        }
        "dataSize" => data_size(st, cmd),
        "splitVector" => split_vector(st, cmd),
        "getMore" => Err(CmdError::new(1, "getMore must go through the async path")),
        "isMaster" | "ismaster" | "hello" => {
            let _ = ctx;
            Err(CmdError::new(1, "hello is handled by the server"))
        }
        other => Err(CmdError::new(59, format!("no such command: '{other}'"))),
    }
}

fn cursor_reply(
    st: &mut State,
    ns: String,
    docs: Vec<Document>,
    first: usize,
    _single: bool,
) -> Document {
    let mut docs: VecDeque<Document> = docs.into();
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < first {
        let Some(d) = docs.pop_front() else { break };
        bytes += doc_size(&d);
        batch.push(d);
        if bytes > 16 * 1024 * 1024 - 100_000 {
            break;
        }
    }
    let id = if docs.is_empty() {
        0
    } else {
        let id = st.new_cursor_id();
        st.cursors.insert(
            id,
            Cursor::Query(QueryCursor {
                ns: ns.clone(),
                docs,
            }),
        );
        id
    };
    doc! {"cursor": {"firstBatch": batch, "id": id, "ns": ns}}
}

fn list_collections(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let filter = get_doc(cmd, "filter")?.cloned().unwrap_or_default();
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let mut out = Vec::new();
    if let Some(d) = st.dbs.get(db) {
        for (n, c) in &d.colls {
            let ty = if c.is_view { "view" } else { "collection" };
            let entry = if name_only {
                doc! {"name": n, "type": ty}
            } else {
                let mut e = doc! {"name": n, "type": ty, "options": c.options.clone(), "info": {"readOnly": c.is_view, "uuid": Bson::Binary(c.uuid.clone())}};
                if !c.is_view {
                    e.insert("idIndex", doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"});
                }
                e
            };
            if query::matches(&entry, &filter)? {
                out.push(entry);
            }
        }
    }
    let bs = cmd
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get("batchSize"))
        .and_then(as_i64)
        .map(|b| b as usize)
        .unwrap_or(usize::MAX);
    Ok(cursor_reply(
        st,
        format!("{db}.$cmd.listCollections"),
        out,
        bs,
        false,
    ))
}

fn create_indexes(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let c = coll_name(cmd, "createIndexes")?;
    st.check_writable()?;
    let created_auto = st.coll(db, c).is_none();
    st.ensure_coll(db, c)?;
    let specs = cmd
        .get_array("indexes")
        .map_err(|_| CmdError::type_mismatch("indexes must be an array"))?
        .clone();
    let coll = st
        .coll_mut(db, c)
        .ok_or_else(|| CmdError::new(26, "ns not found"))?;
    let before = coll.indexes.len() as i32;
    let mut logged = Vec::new();
    for s in specs {
        let s = s
            .as_document()
            .cloned()
            .ok_or_else(|| CmdError::type_mismatch("index spec must be an object"))?;
        let key = s
            .get_document("key")
            .map_err(|_| CmdError::failed_to_parse("index spec must have a key"))?
            .clone();
        let name = match s.get_str("name") {
            Ok(n) => n.to_string(),
            Err(_) => key
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}_{}",
                        as_i64(v)
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| v.as_str().unwrap_or("x").to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join("_"),
        };
        if let Some(ex) = coll.indexes.iter().find(|i| i.name == name) {
            if ex.key != key {
                return Err(CmdError::new(86, format!("An existing index has the same name as the requested index. Requested index: {s}, existing index: {}", ex.spec)));
            }
            continue;
        }
        let mut spec = doc! {"v": 2, "key": key.clone(), "name": name.clone()};
        for (k, v) in &s {
            if k != "key" && k != "name" && k != "v" {
                spec.insert(k, v.clone());
            }
        }
        let unique = s.get_bool("unique").unwrap_or(false);
        coll.indexes.push(IndexSpec {
            name,
            key,
            unique,
            spec: spec.clone(),
        });
        logged.push(spec);
    }
    let after = coll.indexes.len() as i32;
    if !logged.is_empty() {
        st.log_ddl(db, c, OpKind::CreateIndexes { indexes: logged });
    }
    Ok(
        doc! {"numIndexesBefore": before, "numIndexesAfter": after, "createdCollectionAutomatically": created_auto},
    )
}

fn drop_indexes(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let c = coll_name(cmd, &name)?;
    st.check_writable()?;
    let coll = st
        .coll_mut(db, c)
        .ok_or_else(|| CmdError::new(26, format!("ns not found {db}.{c}")))?;
    let before = coll.indexes.len() as i32;
    let mut dropped = Vec::new();
    match cmd.get("index") {
        Some(Bson::String(s)) if s == "*" => {
            coll.indexes.retain(|i| {
                if i.name == "_id_" {
                    true
                } else {
                    dropped.push(i.spec.clone());
                    false
                }
            });
        }
        Some(Bson::String(s)) => {
            if s == "_id_" {
                return Err(CmdError::new(72, "cannot drop _id index"));
            }
            let pos = coll
                .indexes
                .iter()
                .position(|i| &i.name == s)
                .ok_or_else(|| CmdError::new(27, format!("index not found with name [{s}]")))?;
            dropped.push(coll.indexes.remove(pos).spec);
        }
        Some(Bson::Document(k)) => {
            let pos = coll
                .indexes
                .iter()
                .position(|i| &i.key == k)
                .ok_or_else(|| CmdError::new(27, format!("can't find index with key: {k}")))?;
            dropped.push(coll.indexes.remove(pos).spec);
        }
        _ => {
            return Err(CmdError::type_mismatch(
                "index must be a string or an object",
            ))
        }
    }
    if !dropped.is_empty() {
        st.log_ddl(db, c, OpKind::DropIndexes { indexes: dropped });
    }
    Ok(doc! {"nIndexesWas": before})
}

// ------------------------------------------------------------------ reads

/// Candidate documents in `_id` order: uses the `_id` index for `min`/`max`
/// bounds, `_id` equality and `_id` range predicates instead of a full scan.
pub fn candidates(
    coll: &crate::state::Collection,
    filter: &Document,
    min: Option<&Bson>,
    max: Option<&Bson>,
) -> Vec<Arc<Document>> {
    let mut lo: Bound<Key> = Bound::Unbounded;
    let mut hi: Bound<Key> = Bound::Unbounded;
    if let Some(m) = min {
        lo = Bound::Included(Key(m.clone()));
    }
    if let Some(m) = max {
        hi = Bound::Excluded(Key(m.clone()));
    }
    match filter.get("_id") {
        Some(Bson::Document(ops)) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => {
            for (op, v) in ops {
                // Only narrow within the same type bracket; the matcher re-checks.
                match op.as_str() {
                    "$eq" => {
                        return coll
                            .docs
                            .get(&Key(v.clone()))
                            .cloned()
                            .into_iter()
                            .collect()
                    }
                    "$gte" if matches!(lo, Bound::Unbounded) => {
                        lo = Bound::Included(Key(v.clone()))
                    }
                    "$gt" if matches!(lo, Bound::Unbounded) => lo = Bound::Excluded(Key(v.clone())),
                    "$lte" if matches!(hi, Bound::Unbounded) => {
                        hi = Bound::Included(Key(v.clone()))
                    }
                    "$lt" if matches!(hi, Bound::Unbounded) => hi = Bound::Excluded(Key(v.clone())),
                    "$in" => {
                        if let Bson::Array(a) = v {
                            if a.iter().all(|x| {
                                !matches!(
                                    x,
                                    Bson::RegularExpression(_) | Bson::Null | Bson::Array(_)
                                )
                            }) {
                                let mut keys: Vec<Key> = a.iter().map(|x| Key(x.clone())).collect();
                                keys.sort();
                                keys.dedup();
                                return keys
                                    .iter()
                                    .filter_map(|k| coll.docs.get(k).cloned())
                                    .collect();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(v)
            if !matches!(
                v,
                Bson::Document(_) | Bson::Array(_) | Bson::RegularExpression(_) | Bson::Null
            ) && min.is_none()
                && max.is_none() =>
        {
            return coll
                .docs
                .get(&Key(v.clone()))
                .cloned()
                .into_iter()
                .collect();
        }
        _ => {}
    }
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
        (&lo, &hi)
    {
        if a > b {
            return Vec::new();
        }
        if a == b && !(matches!(lo, Bound::Included(_)) && matches!(hi, Bound::Included(_))) {
            return Vec::new();
        }
    }
    coll.docs.range((lo, hi)).map(|(_, d)| d.clone()).collect()
}

fn hint_ok(coll: &crate::state::Collection, hint: Option<&Bson>) -> CmdResult<()> {
    match hint {
        None => Ok(()),
        Some(Bson::String(s)) if coll.indexes.iter().any(|i| &i.name == s) => Ok(()),
        Some(Bson::Document(k))
            if k.is_empty()
                || coll.indexes.iter().any(|i| &i.key == k)
                || k.contains_key("$natural") =>
        {
            Ok(())
        }
        Some(_) => Err(CmdError::bad_value(
            "hint provided does not correspond to an existing index",
        )),
    }
}

fn find(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let c = coll_name(cmd, "find")?;
    let filter = get_doc(cmd, "filter")?.cloned().unwrap_or_default();
    let sort = get_doc(cmd, "sort")?.cloned();
    let proj = get_doc(cmd, "projection")?.cloned();
    let skip = cmd.get("skip").and_then(as_i64).unwrap_or(0);
    if skip < 0 {
        return Err(CmdError::bad_value("skip value must be non-negative"));
    }
    let limit = cmd.get("limit").and_then(as_i64).unwrap_or(0);
    let batch = cmd.get("batchSize").and_then(as_i64);
    if batch.is_some_and(|b| b < 0) {
        return Err(CmdError::bad_value("batchSize value must be non-negative"));
    }
    let single = cmd.get_bool("singleBatch").unwrap_or(false) || limit < 0;
    let min = get_doc(cmd, "min")?.and_then(|d| d.get("_id")).cloned();
    let max = get_doc(cmd, "max")?.and_then(|d| d.get("_id")).cloned();
    let hint = cmd.get("hint");
    let ns = format!("{db}.{c}");
    let Some(coll) = st.coll(db, c) else {
        return Ok(doc! {"cursor": {"firstBatch": [], "id": 0i64, "ns": ns}});
    };
    if (min.is_some() || max.is_some()) && hint.is_none() {
        return Err(CmdError::new(
            51173,
            "When using min()/max() a hint of which index to use must be provided",
        ));
    }
    hint_ok(coll, hint)?;
    let cands = candidates(coll, &filter, min.as_ref(), max.as_ref());
    let limit_abs = limit.unsigned_abs() as usize;
    let mut docs: Vec<Arc<Document>> = Vec::new();
    let no_sort = sort.as_ref().is_none_or(|s| s.is_empty());
    // Without a sort we can stop early once skip+limit documents matched.
    let want = if no_sort && limit_abs > 0 {
        skip as usize + limit_abs
    } else {
        usize::MAX
    };
    for d in cands {
        if filter.is_empty() || query::matches(&d, &filter)? {
            docs.push(d);
            if docs.len() >= want {
                break;
            }
        }
    }
    if let Some(s) = &sort {
        if !s.is_empty() {
            docs.sort_by(|a, b| query::cmp_by_sort(a, b, s));
        }
    }
    let mut out: Vec<Document> = Vec::with_capacity(docs.len());
    for d in docs.into_iter().skip(skip as usize) {
        if limit_abs > 0 && out.len() >= limit_abs {
            break;
        }
        out.push(match &proj {
            Some(p) => query::project(&d, p)?,
            None => (*d).clone(),
        });
    }
    let first = match batch {
        Some(b) if b > 0 => b as usize,
        Some(_) => 0,
        None => DEFAULT_BATCH,
    };
    let first = if single {
        out.len()
    } else {
        first.min(if limit_abs > 0 { limit_abs } else { usize::MAX })
    };
    let mut r = cursor_reply(st, ns, out, first, single);
    if single {
        if let Ok(cur) = r.get_document_mut("cursor") {
            if let Some(id) = cur.get("id").and_then(as_i64) {
                st.cursors.remove(&id);
            }
            cur.insert("id", 0i64);
        }
    }
    Ok(r)
}

fn aggregate(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let target = cmd.get("aggregate").cloned().unwrap_or(Bson::Null);
    let coll = match &target {
        Bson::String(s) => Some(s.clone()),
        t if as_i64(t) == Some(1) => None,
        _ => return Err(CmdError::failed_to_parse("Invalid aggregate namespace")),
    };
    let pipeline: Vec<Document> = cmd
        .get_array("pipeline")
        .map_err(|_| CmdError::type_mismatch("'pipeline' option must be specified as an array"))?
        .iter()
        .map(|s| {
            s.as_document().cloned().ok_or_else(|| {
                CmdError::type_mismatch("Each element of the 'pipeline' array must be an object")
            })
        })
        .collect::<CmdResult<_>>()?;
    let cursor_opt = cmd.get_document("cursor").ok();
    if cursor_opt.is_none() && !cmd.contains_key("explain") {
        return Err(CmdError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    let batch = cursor_opt
        .and_then(|c| c.get("batchSize"))
        .and_then(as_i64)
        .map(|b| b.max(0) as usize);
    let mut vars = Document::new();
    for (k, e) in get_doc(cmd, "let")?.cloned().unwrap_or_default() {
        vars.insert(k, crate::agg::eval_expr(&Bson::Null, &e, &Document::new())?);
    }
    if let Some(first) = pipeline.first() {
        if let Ok(spec) = first.get_document("$changeStream") {
            let mut cs = changestream::open(st, db, coll.as_deref(), spec, &pipeline[1..])?;
            let n = batch.unwrap_or(DEFAULT_BATCH);
            let (docs, pbrt, closed) = if n == 0 {
                (Vec::new(), cs.pos.token(), false)
            } else {
                changestream::next_batch(st, &mut cs, n)?
            };
            let ns = cs.ns.clone();
            let id = if closed {
                0
            } else {
                let id = st.new_cursor_id();
                st.cursors.insert(id, Cursor::Change(Box::new(cs)));
                id
            };
            return Ok(
                doc! {"cursor": {"firstBatch": docs, "postBatchResumeToken": pbrt, "id": id, "ns": ns}},
            );
        }
    }
    for (i, s) in pipeline.iter().enumerate() {
        if s.contains_key("$changeStream") && i > 0 {
            return Err(CmdError::new(
                40602,
                "$changeStream is only valid as the first stage in a pipeline",
            ));
        }
    }
    let ns = match &coll {
        Some(c) => format!("{db}.{c}"),
        None => format!("{db}.$cmd.aggregate"),
    };
    let mut stages: &[Document] = &pipeline;
    let docs: Vec<Document>;
    if let Some(first) = stages.first().filter(|s| s.contains_key("$collStats")) {
        let c = coll.clone().unwrap_or_default();
        let spec = first
            .get_document("$collStats")
            .cloned()
            .unwrap_or_default();
        let cl = st.coll(db, &c).ok_or_else(|| CmdError::new(26, format!("Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [{db}.{c}] not found.")))?;
        let count = cl.docs.len() as i64;
        let size = cl.data_size as i64;
        let mut d = doc! {"ns": format!("{db}.{c}"), "host": "127.0.0.1", "localTime": bson::DateTime::now()};
        if spec.contains_key("storageStats") {
            let mut ss = doc! {"size": size, "count": count, "storageSize": size, "totalIndexSize": count * 16, "totalSize": size + count * 16, "nindexes": cl.indexes.len() as i32, "capped": false};
            if count > 0 {
                ss.insert("avgObjSize", size / count);
            }
            d.insert("storageStats", ss);
        }
        if spec.contains_key("count") {
            d.insert("count", count);
        }
        docs = vec![d];
        stages = &stages[1..];
    } else if let Some(first) = stages.first().filter(|s| s.contains_key("$documents")) {
        docs = match first.get("$documents") {
            Some(Bson::Array(a)) => a.iter().filter_map(|x| x.as_document().cloned()).collect(),
            _ => {
                return Err(CmdError::new(
                    5858203,
                    "$documents must evaluate to an array",
                ))
            }
        };
        stages = &stages[1..];
    } else {
        docs = match &coll {
            Some(c) => match st.coll(db, c) {
                Some(cl) if cl.is_view => view_docs(st, db, c)?,
                Some(cl) => {
                    // Push a leading $match on _id into the index.
                    let f = stages
                        .first()
                        .and_then(|s| s.get_document("$match").ok())
                        .cloned()
                        .unwrap_or_default();
                    candidates(cl, &f, None, None)
                        .into_iter()
                        .map(|d| (*d).clone())
                        .collect()
                }
                None => Vec::new(),
            },
            None if stages.first().is_some_and(|s| {
                s.contains_key("$listLocalSessions") || s.contains_key("$currentOp")
            }) =>
            {
                let first = stages
                    .first()
                    .and_then(|s| s.keys().next().cloned())
                    .unwrap_or_default();
                stages = &stages[1..];
                if first == "$listLocalSessions" {
                    // The simulator does not track sessions; report the caller's.
                    let lsid = cmd.get("lsid").cloned().unwrap_or(Bson::Null);
                    vec![doc! {"_id": lsid, "lastUse": bson::DateTime::now()}]
                } else {
                    Vec::new()
                }
            }
            None => {
                let name = stages
                    .first()
                    .and_then(|s| s.keys().next().cloned())
                    .unwrap_or_default();
                return Err(CmdError::new(
                    73,
                    format!("{name} can only be run against a collection when aggregate is 1 (or the stage is not supported by mongo-sim)"),
                ));
            }
        };
    }
    // $out / $merge as the last stage write the results.
    let mut out_target: Option<(String, String, bool)> = None;
    if let Some(last) = stages.last() {
        if let Some(o) = last.get("$out") {
            let (odb, oc) = match o {
                Bson::String(s) => (db.to_string(), s.clone()),
                Bson::Document(d) => (
                    d.get_str("db").unwrap_or(db).to_string(),
                    d.get_str("coll").unwrap_or("").to_string(),
                ),
                _ => {
                    return Err(CmdError::failed_to_parse(
                        "$out must be a string or an object",
                    ))
                }
            };
            out_target = Some((odb, oc, true));
            stages = &stages[..stages.len() - 1];
        } else if let Some(m) = last.get("$merge") {
            let (odb, oc) = match m {
                Bson::String(s) => (db.to_string(), s.clone()),
                Bson::Document(d) => match d.get("into") {
                    Some(Bson::String(s)) => (db.to_string(), s.clone()),
                    Some(Bson::Document(i)) => (
                        i.get_str("db").unwrap_or(db).to_string(),
                        i.get_str("coll").unwrap_or("").to_string(),
                    ),
                    _ => return Err(CmdError::failed_to_parse("$merge needs 'into'")),
                },
                _ => {
                    return Err(CmdError::failed_to_parse(
                        "$merge must be a string or an object",
                    ))
                }
            };
            out_target = Some((odb, oc, false));
            stages = &stages[..stages.len() - 1];
        }
    }
    for s in stages {
        if s.contains_key("$out") || s.contains_key("$merge") {
            return Err(CmdError::new(
                40601,
                "$out/$merge can only be the final stage in the pipeline",
            ));
        }
    }
    let docs = crate::agg::run_pipeline(docs, stages, &vars)?;
    if let Some((odb, oc, replace)) = out_target {
        st.check_writable()?;
        let rc = cmd
            .get_document("readConcern")
            .ok()
            .and_then(|r| r.get_str("level").ok());
        if rc == Some("linearizable") {
            return Err(CmdError::new(
                72,
                "readConcern level 'linearizable' is not supported with $out or $merge",
            ));
        }
        let when_matched = pipeline
            .last()
            .and_then(|l| l.get_document("$merge").ok())
            .and_then(|m| m.get_str("whenMatched").ok())
            .unwrap_or("merge")
            .to_string();
        if replace {
            st.drop_coll(&odb, &oc)?;
            st.ensure_coll(&odb, &oc)?;
            for d in docs {
                st.insert(&odb, &oc, d)?;
            }
        } else {
            for d in docs {
                let d = update::ensure_id_first(d);
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                let existing = st
                    .coll(&odb, &oc)
                    .and_then(|c| c.docs.get(&Key(id)).cloned());
                match existing {
                    Some(old) if when_matched == "fail" => {
                        let id = old.get("_id").cloned().unwrap_or(Bson::Null);
                        let mut e = CmdError::new(
                            11000,
                            format!("E11000 duplicate key error collection: {odb}.{oc} index: _id_ dup key: {{ _id: {} }}", crate::bsonutil::short_json(&id)),
                        );
                        e.extra = Some(Box::new(
                            doc! {"keyPattern": {"_id": 1}, "keyValue": {"_id": id}},
                        ));
                        return Err(e);
                    }
                    Some(old) if when_matched == "keepExisting" => {
                        let _ = old;
                    }
                    Some(old) if when_matched == "replace" => {
                        st.replace_doc(&odb, &oc, old, d, true)?;
                    }
                    Some(old) => {
                        let mut merged = (*old).clone();
                        for (k, v) in d {
                            merged.insert(k, v);
                        }
                        st.replace_doc(&odb, &oc, old, merged, false)?;
                    }
                    None => st.insert(&odb, &oc, d)?,
                }
            }
        }
        return Ok(doc! {"cursor": {"firstBatch": [], "id": 0i64, "ns": ns}});
    }
    Ok(cursor_reply(
        st,
        ns,
        docs,
        batch.unwrap_or(DEFAULT_BATCH),
        false,
    ))
}

/// getMore: query cursors return the next batch; change-stream cursors wait
/// up to maxTimeMS (the driver's maxAwaitTimeMS, default 1s) for new events.
pub async fn get_more(shared: &Shared, cmd: &Document, _db: &str) -> CmdResult<Document> {
    let id = cmd
        .get("getMore")
        .and_then(as_i64)
        .ok_or_else(|| CmdError::type_mismatch("getMore must be a long"))?;
    let batch = cmd
        .get("batchSize")
        .and_then(as_i64)
        .filter(|b| *b > 0)
        .map(|b| b as usize);
    let wait =
        Duration::from_millis(cmd.get("maxTimeMS").and_then(as_i64).unwrap_or(1000).max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let mut topo = shared.topology.subscribe();
    topo.borrow_and_update();
    loop {
        let mut seq_rx = shared.oplog_seq.clone();
        {
            let mut st = shared.lock();
            let Some(cur) = st.cursors.remove(&id) else {
                return Err(CmdError::new(43, format!("cursor id {id} not found")));
            };
            match cur {
                Cursor::Query(mut q) => {
                    let n = batch.unwrap_or(usize::MAX);
                    let mut out = Vec::new();
                    let mut bytes = 0;
                    while out.len() < n {
                        let Some(d) = q.docs.pop_front() else { break };
                        bytes += doc_size(&d);
                        out.push(d);
                        if bytes > 16 * 1024 * 1024 - 100_000 {
                            break;
                        }
                    }
                    let ns = q.ns.clone();
                    let next_id = if q.docs.is_empty() { 0 } else { id };
                    if next_id != 0 {
                        st.cursors.insert(id, Cursor::Query(q));
                    }
                    return Ok(doc! {"cursor": {"nextBatch": out, "id": next_id, "ns": ns}});
                }
                Cursor::Change(mut cs) => {
                    let n = batch.unwrap_or(DEFAULT_BATCH);
                    seq_rx.borrow_and_update();
                    let res = changestream::next_batch(&st, &mut cs, n);
                    let (docs, pbrt, closed) = match res {
                        Ok(r) => r,
                        Err(e) => return Err(e),
                    };
                    let ns = cs.ns.clone();
                    if !docs.is_empty() || closed || tokio::time::Instant::now() >= deadline {
                        let next_id = if closed { 0 } else { id };
                        if !closed {
                            st.cursors.insert(id, Cursor::Change(cs));
                        }
                        return Ok(
                            doc! {"cursor": {"nextBatch": docs, "postBatchResumeToken": pbrt, "id": next_id, "ns": ns}},
                        );
                    }
                    st.cursors.insert(id, Cursor::Change(cs));
                }
            }
        }
        // Wait without the lock; subscribed (borrow_and_update) while locked,
        // so a commit after our scan always wakes us.
        tokio::select! {
            _ = seq_rx.changed() => {}
            _ = topo.changed() => {
                let down = shared.lock().stepped_down;
                if down {
                    return Err(CmdError::new(11602, "operation was interrupted because of a replica set state change").with_label("ResumableChangeStreamError"));
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shared.cancel.cancelled() => return Err(CmdError::new(11600, "interrupted at shutdown")),
        }
    }
}

// ------------------------------------------------------------------ writes

fn write_error(idx: usize, e: &CmdError) -> Document {
    let mut d =
        doc! {"index": idx as i32, "code": e.code, "codeName": &e.code_name, "errmsg": &e.msg};
    if let Some(x) = &e.extra {
        d.extend((**x).clone());
    }
    d
}

fn docs_arg<'a>(cmd: &'a Document, k: &str) -> CmdResult<&'a Vec<Bson>> {
    cmd.get_array(k).map_err(|_| {
        CmdError::failed_to_parse(format!("BSON field '{k}' is missing but a required field"))
    })
}

fn insert(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let c = coll_name(cmd, "insert")?.to_string();
    st.check_writable()?;
    crate::state::validate_ns(db, &c)?;
    let docs = docs_arg(cmd, "documents")?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut n = 0;
    let mut errs = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let r = match d {
            Bson::Document(d) => st.insert(db, &c, d.clone()),
            _ => Err(CmdError::type_mismatch("documents must be objects")),
        };
        match r {
            Ok(()) => n += 1,
            Err(e) => {
                errs.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    let mut r = doc! {"n": n};
    if !errs.is_empty() {
        r.insert("writeErrors", errs);
    }
    Ok(r)
}

/// Apply one update statement; returns (matched, modified, upserted id).
fn update_one_stmt(
    st: &mut State,
    db: &str,
    c: &str,
    stmt: &Document,
) -> CmdResult<(i64, i64, Option<Bson>)> {
    let q = get_doc(stmt, "q")?.cloned().unwrap_or_default();
    let u = stmt
        .get("u")
        .ok_or_else(|| CmdError::failed_to_parse("BSON field 'u' is missing"))?;
    let _guard = crate::bsonutil::exec_context(None, stmt.get_document("collation").ok());
    if stmt.contains_key("sort") {
        // Only MongoDB 8.0+ accepts a sort in update statements.
        return Err(CmdError::new(
            40415,
            "BSON field 'update.updates.sort' is an unknown field.",
        ));
    }
    let multi = stmt.get_bool("multi").unwrap_or(false);
    let upsert = stmt.get_bool("upsert").unwrap_or(false);
    let kind = update::classify(u)?;
    let array_filters = filters_of(stmt);
    if multi && matches!(kind, UpdateKind::Replacement(_)) {
        return Err(CmdError::failed_to_parse(
            "multi update is not supported for replacement-style update",
        ));
    }
    if let UpdateKind::Replacement(r) = &kind {
        update::check_replacement(r)?;
    }
    if let Some(coll) = st.coll(db, c) {
        hint_ok(coll, stmt.get("hint"))?;
    }
    let sort = get_doc(stmt, "sort")?.cloned();
    let targets: Vec<Arc<Document>> = match st.coll(db, c) {
        None => Vec::new(),
        Some(coll) => {
            let mut v = Vec::new();
            for d in candidates(coll, &q, None, None) {
                if query::matches(&d, &q)? {
                    v.push(d);
                    if !multi && sort.is_none() {
                        break;
                    }
                }
            }
            if let Some(s) = &sort {
                v.sort_by(|a, b| query::cmp_by_sort(a, b, s));
                v.truncate(1);
            }
            v
        }
    };
    if targets.is_empty() {
        if upsert {
            let seed = update::upsert_seed(&q)?;
            let mut new = update::apply(&seed, &kind, true)?;
            if let UpdateKind::Replacement(_) = kind {
                if let Some(id) = seed.get("_id") {
                    if !new.contains_key("_id") {
                        new.insert("_id", id.clone());
                    }
                }
            }
            let new = update::ensure_id_first(new);
            let id = new.get("_id").cloned().unwrap_or(Bson::Null);
            st.insert(db, c, new)?;
            return Ok((0, 0, Some(id)));
        }
        return Ok((0, 0, None));
    }
    let is_repl = matches!(kind, UpdateKind::Replacement(_));
    let mut modified = 0;
    let matched = targets.len() as i64;
    for old in targets {
        let new = update::apply_with_filters(&old, &kind, false, &array_filters)?;
        if new != *old {
            st.replace_doc(db, c, old, new, is_repl)?;
            modified += 1;
        }
    }
    Ok((matched, modified, None))
}

fn update_cmd(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let c = coll_name(cmd, "update")?.to_string();
    st.check_writable()?;
    let stmts = docs_arg(cmd, "updates")?;
    // Statement fields are validated for the whole command before any write.
    if stmts
        .iter()
        .any(|s| s.as_document().is_some_and(|d| d.contains_key("sort")))
    {
        return Err(CmdError::new(
            40415,
            "BSON field 'update.updates.sort' is an unknown field.",
        ));
    }
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let (mut n, mut nmod) = (0i64, 0i64);
    let mut upserted = Vec::new();
    let mut errs = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        let r = match s {
            Bson::Document(s) => update_one_stmt(st, db, &c, s),
            _ => Err(CmdError::type_mismatch("update statements must be objects")),
        };
        match r {
            Ok((m, md, up)) => {
                n += m;
                nmod += md;
                if let Some(id) = up {
                    n += 1;
                    upserted.push(doc! {"index": i as i32, "_id": id});
                }
            }
            Err(e) => {
                errs.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    let mut r = doc! {"n": n as i32, "nModified": nmod as i32};
    if !upserted.is_empty() {
        r.insert("upserted", upserted);
    }
    if !errs.is_empty() {
        r.insert("writeErrors", errs);
    }
    Ok(r)
}

fn delete_cmd(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let c = coll_name(cmd, "delete")?.to_string();
    st.check_writable()?;
    let stmts = docs_arg(cmd, "deletes")?;
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut n = 0i64;
    let mut errs = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        let r = (|| -> CmdResult<i64> {
            let s = s
                .as_document()
                .ok_or_else(|| CmdError::type_mismatch("delete statements must be objects"))?;
            let _guard = crate::bsonutil::exec_context(None, s.get_document("collation").ok());
            let q = get_doc(s, "q")?.cloned().unwrap_or_default();
            let limit = s.get("limit").and_then(as_i64).unwrap_or(0);
            let Some(coll) = st.coll(db, &c) else {
                return Ok(0);
            };
            hint_ok(coll, s.get("hint"))?;
            let mut victims = Vec::new();
            for d in candidates(coll, &q, None, None) {
                if query::matches(&d, &q)? {
                    victims.push(d);
                    if limit == 1 {
                        break;
                    }
                }
            }
            let k = victims.len() as i64;
            for v in victims {
                st.delete_doc(db, &c, v)?;
            }
            Ok(k)
        })();
        match r {
            Ok(k) => n += k,
            Err(e) => {
                errs.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    let mut r = doc! {"n": n as i32};
    if !errs.is_empty() {
        r.insert("writeErrors", errs);
    }
    Ok(r)
}

fn find_and_modify(st: &mut State, db: &str, cmd: &Document) -> CmdResult<Document> {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let c = coll_name(cmd, &name)?.to_string();
    st.check_writable()?;
    let q = get_doc(cmd, "query")?.cloned().unwrap_or_default();
    let sort = get_doc(cmd, "sort")?.cloned();
    let fields = get_doc(cmd, "fields")?.cloned();
    let remove = cmd.get_bool("remove").unwrap_or(false);
    let ret_new = cmd.get_bool("new").unwrap_or(false);
    let upsert = cmd.get_bool("upsert").unwrap_or(false);
    let u = cmd.get("update");
    if remove && u.is_some() {
        return Err(CmdError::failed_to_parse(
            "Cannot specify both an update and remove=true",
        ));
    }
    if !remove && u.is_none() {
        return Err(CmdError::failed_to_parse(
            "Either an update or remove=true must be specified",
        ));
    }
    if let Some(coll) = st.coll(db, &c) {
        hint_ok(coll, cmd.get("hint"))?;
    }
    let target: Option<Arc<Document>> = match st.coll(db, &c) {
        None => None,
        Some(coll) => {
            let mut v = Vec::new();
            for d in candidates(coll, &q, None, None) {
                if query::matches(&d, &q)? {
                    v.push(d);
                    if sort.is_none() {
                        break;
                    }
                }
            }
            if let Some(s) = &sort {
                v.sort_by(|a, b| query::cmp_by_sort(a, b, s));
            }
            v.into_iter().next()
        }
    };
    let project = |d: &Document| -> CmdResult<Bson> {
        Ok(Bson::Document(match &fields {
            Some(f) => query::project(d, f)?,
            None => d.clone(),
        }))
    };
    if remove {
        return Ok(match target {
            Some(old) => {
                let v = project(&old)?;
                st.delete_doc(db, &c, old)?;
                doc! {"lastErrorObject": {"n": 1}, "value": v}
            }
            None => doc! {"lastErrorObject": {"n": 0}, "value": Bson::Null},
        });
    }
    let u = u.ok_or_else(|| CmdError::failed_to_parse("update required"))?;
    let array_filters = filters_of(cmd);
    let kind = update::classify(u)?;
    let is_repl = matches!(kind, UpdateKind::Replacement(_));
    match target {
        Some(old) => {
            let new = update::apply_with_filters(&old, &kind, false, &array_filters)?;
            let stored = st.replace_doc(db, &c, old.clone(), new, is_repl)?;
            let v = if ret_new {
                project(&stored)?
            } else {
                project(&old)?
            };
            Ok(doc! {"lastErrorObject": {"n": 1, "updatedExisting": true}, "value": v})
        }
        None if upsert => {
            let seed = update::upsert_seed(&q)?;
            let mut new = update::apply(&seed, &kind, true)?;
            if is_repl {
                if let Some(id) = seed.get("_id") {
                    if !new.contains_key("_id") {
                        new.insert("_id", id.clone());
                    }
                }
            }
            let new = update::ensure_id_first(new);
            let id = new.get("_id").cloned().unwrap_or(Bson::Null);
            st.insert(db, &c, new.clone())?;
            let v = if ret_new { project(&new)? } else { Bson::Null };
            Ok(
                doc! {"lastErrorObject": {"n": 1, "updatedExisting": false, "upserted": id}, "value": v},
            )
        }
        None => {
            Ok(doc! {"lastErrorObject": {"n": 0, "updatedExisting": false}, "value": Bson::Null})
        }
    }
}

// ------------------------------------------------------------------ sharding helpers

fn split_ns(ns: &str) -> CmdResult<(&str, &str)> {
    ns.split_once('.')
        .ok_or_else(|| CmdError::new(73, format!("Invalid namespace: {ns}")))
}

fn data_size(st: &State, cmd: &Document) -> CmdResult<Document> {
    let ns = cmd
        .get_str("dataSize")
        .map_err(|_| CmdError::type_mismatch("dataSize must be a namespace string"))?;
    let (db, c) = split_ns(ns)?;
    let min = get_doc(cmd, "min")?.and_then(|d| d.get("_id")).cloned();
    let max = get_doc(cmd, "max")?.and_then(|d| d.get("_id")).cloned();
    let (mut size, mut n) = (0i64, 0i64);
    if let Some(coll) = st.coll(db, c) {
        if min.is_none() && max.is_none() {
            size = coll.data_size as i64;
            n = coll.docs.len() as i64;
        } else {
            for d in candidates(coll, &Document::new(), min.as_ref(), max.as_ref()) {
                size += doc_size(&d) as i64;
                n += 1;
            }
        }
    }
    Ok(doc! {"size": size, "numObjects": n, "millis": 0})
}

/// splitVector as mongod computes it: split points every
/// `maxChunkSizeBytes / (2 * avgObjSize)` keys along the `_id` index.
fn split_vector(st: &State, cmd: &Document) -> CmdResult<Document> {
    let ns = cmd
        .get_str("splitVector")
        .map_err(|_| CmdError::type_mismatch("splitVector must be a namespace string"))?;
    let (db, c) = split_ns(ns)?;
    let kp = get_doc(cmd, "keyPattern")?.cloned().unwrap_or_default();
    if kp.keys().map(String::as_str).collect::<Vec<_>>() != ["_id"] {
        return Err(CmdError::new(
            113,
            "couldn't find index over splitting key (mongo-sim supports keyPattern {_id: 1} only)",
        ));
    }
    let coll = st
        .coll(db, c)
        .ok_or_else(|| CmdError::new(26, format!("ns not found: {ns}")))?;
    let max_bytes = if let Some(b) = cmd.get("maxChunkSizeBytes").and_then(as_f64) {
        b as i64
    } else if let Some(mb) = cmd.get("maxChunkSize").and_then(as_f64) {
        (mb * 1024.0 * 1024.0) as i64
    } else {
        return Err(CmdError::new(
            2,
            "need to specify the desired max chunk size (maxChunkSize or maxChunkSizeBytes)",
        ));
    };
    let max_points = cmd.get("maxSplitPoints").and_then(as_i64).unwrap_or(0);
    let max_objs = cmd.get("maxChunkObjects").and_then(as_i64).unwrap_or(0);
    let min = get_doc(cmd, "min")?.and_then(|d| d.get("_id")).cloned();
    let max = get_doc(cmd, "max")?.and_then(|d| d.get("_id")).cloned();
    let docs = candidates(coll, &Document::new(), min.as_ref(), max.as_ref());
    let n = docs.len() as i64;
    let data: i64 = if min.is_none() && max.is_none() {
        coll.data_size as i64
    } else {
        docs.iter().map(|d| doc_size(d) as i64).sum()
    };
    if n == 0 || data < max_bytes {
        return Ok(doc! {"splitKeys": Vec::<Bson>::new(), "timeMillis": 0});
    }
    let avg = (data / n).max(1);
    let mut key_count = max_bytes / (2 * avg);
    if max_objs > 0 && max_objs < key_count {
        key_count = max_objs;
    }
    let key_count = key_count.max(1);
    let mut split: Vec<Bson> = Vec::new();
    let mut cur = 0i64;
    for d in docs.iter().skip(1) {
        cur += 1;
        if cur > key_count {
            split.push(Bson::Document(
                doc! {"_id": d.get("_id").cloned().unwrap_or(Bson::Null)},
            ));
            cur = 0;
            if max_points > 0 && split.len() as i64 >= max_points {
                break;
            }
        }
    }
    Ok(doc! {"splitKeys": split, "timeMillis": 0})
}

fn filters_of(d: &Document) -> Vec<Document> {
    d.get_array("arrayFilters")
        .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
        .unwrap_or_default()
}

/// Documents of a view: its source collection run through its pipeline.
fn view_docs(st: &State, db: &str, c: &str) -> CmdResult<Vec<Document>> {
    let Some(coll) = st.coll(db, c) else {
        return Ok(Vec::new());
    };
    let src = coll.options.get_str("viewOn").unwrap_or("").to_string();
    let pipeline: Vec<Document> = coll
        .options
        .get_array("pipeline")
        .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
        .unwrap_or_default();
    let docs: Vec<Document> = match st.coll(db, &src) {
        Some(s) if s.is_view => view_docs(st, db, &src)?,
        Some(s) => s.docs.values().map(|d| (**d).clone()).collect(),
        None => Vec::new(),
    };
    crate::agg::run_pipeline(docs, &pipeline, &Document::new())
}
