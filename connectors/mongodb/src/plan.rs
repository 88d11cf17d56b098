//! Snapshot planning: which collections are copied and how each is cut into
//! `_id` ranges ("chunks").
//!
//! A plan is made once, before the first chunk is read, and then stored: in
//! the task configs (which chunks each task reads) and in the offsets topic
//! (the plan partition, written by every task before its first chunk). A
//! restart therefore reuses the same chunk boundaries, which is what makes
//! "chunk n is done" in the offsets meaningful; re-planning would cut the
//! collections differently after the data changed.
//!
//! Splitting, in order of preference (as Flink CDC does):
//! 1. `splitVector` on `{_id: 1}` with `maxChunkSizeBytes` = `snapshot.chunk.size.mb`;
//! 2. `$sample` + `$bucketAuto` on `_id` when `splitVector` is refused (e.g. Atlas);
//! 3. `_id` pagination (an index-order scan of `_id`s keeping every k-th).
//!
//! A sharded collection whose shard key is `{_id: 1}` is also cut at every
//! boundary of its `config.chunks` ranges ([`shard_chunk_points`]).
//!
//! A collection smaller than one chunk is one chunk `[MinKey, MaxKey)`.
//! Bounds are `_id` values of any type; reads use `min`/`max`/`hint`, which
//! follow the index's total order, so mixed `_id` types are never skipped.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::{Deserialize, Serialize};

use crate::bsonx;
use crate::config::MongoConfig;
use crate::error::MongoError;

/// One `_id` range of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkSpec {
    pub n: usize,
    pub db: String,
    pub coll: String,
    /// Canonical extended JSON of `{"v": <bound>}` (keeps MinKey/MaxKey and types).
    pub min: String,
    pub max: String,
}

impl ChunkSpec {
    pub fn bound(s: &str) -> Bson {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .and_then(|v| Bson::try_from(v).ok())
            .and_then(|b| match b {
                Bson::Document(d) => d.get("v").cloned(),
                _ => None,
            })
            .unwrap_or(Bson::Null)
    }
    pub fn min_bson(&self) -> Bson {
        Self::bound(&self.min)
    }
    pub fn max_bson(&self) -> Bson {
        Self::bound(&self.max)
    }
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }
}

fn bound_json(b: &Bson) -> String {
    Bson::Document(doc! {"v": b.clone()})
        .into_canonical_extjson()
        .to_string()
}

/// The stored snapshot plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Generation: 1 for the first snapshot, +1 for each re-snapshot.
    pub gen: u64,
    /// Resume token (JSON) taken before any chunk was read: the stream phase
    /// starts here, so nothing after it can be missed.
    pub start: String,
    /// `initial` or `resnapshot` (a resnapshot plan whose own start token
    /// expires fails instead of looping).
    pub reason: String,
    pub chunks: Vec<ChunkSpec>,
}

impl Plan {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    pub fn from_json(s: &str) -> Option<Plan> {
        serde_json::from_str(s).ok()
    }
}

/// Namespaces the snapshot copies, in a stable order.
pub async fn namespaces(
    client: &Client,
    cfg: &MongoConfig,
) -> Result<Vec<(String, String)>, MongoError> {
    let dbs = if cfg.selection.database.is_empty() {
        client
            .list_database_names()
            .await
            .map_err(|e| MongoError::mongo("listing databases for the snapshot", e))?
    } else {
        vec![cfg.selection.database.clone()]
    };
    let mut out = Vec::new();
    for db in dbs {
        if !cfg.selection.matches(&db, None) {
            continue;
        }
        let mut colls = client
            .database(&db)
            .list_collection_names()
            .filter(doc! {"type": "collection"})
            .await
            .map_err(|e| {
                MongoError::mongo(format!("listing collections of {db} for the snapshot"), e)
            })?;
        colls.sort();
        for c in colls {
            if cfg.snapshots(&db, &c) {
                out.push((db.clone(), c));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Split points of one collection (`_id` values, ascending).
pub async fn split_points(
    client: &Client,
    cfg: &MongoConfig,
    db: &str,
    coll: &str,
) -> Result<Vec<Bson>, MongoError> {
    let database = client.database(db);
    let sv = database
        .run_command(doc! {
            "splitVector": format!("{db}.{coll}"),
            "keyPattern": {"_id": 1},
            "maxChunkSizeBytes": cfg.chunk_size_bytes,
        })
        .await;
    match sv {
        Ok(reply) => {
            let keys = reply.get_array("splitKeys").cloned().unwrap_or_default();
            return Ok(keys
                .into_iter()
                .filter_map(|k| match k {
                    Bson::Document(d) => d.get("_id").cloned(),
                    _ => None,
                })
                .collect());
        }
        Err(e) => {
            tracing::info!(ns = %format!("{db}.{coll}"), error = %e, "splitVector refused; sampling instead")
        }
    }
    // collStats for the size estimate used by both fallbacks.
    let stats = database
        .run_command(doc! {"collStats": coll})
        .await
        .map_err(|e| MongoError::mongo(format!("reading collStats of {db}.{coll}"), e))?;
    let num = |k: &str| {
        stats.get(k).and_then(|v| match v {
            Bson::Int32(i) => Some(f64::from(*i)),
            Bson::Int64(i) => Some(*i as f64),
            Bson::Double(d) => Some(*d),
            _ => None,
        })
    };
    let count = num("count").unwrap_or(0.0);
    let size = num("size").unwrap_or(0.0);
    let chunks = (size / cfg.chunk_size_bytes).ceil().max(1.0) as i64;
    if chunks <= 1 {
        return Ok(Vec::new());
    }
    let c = database.collection::<Document>(coll);
    let samples = (chunks * 20).min(count as i64).max(chunks);
    let bucket = c
        .aggregate(vec![
            doc! {"$sample": {"size": samples}},
            doc! {"$bucketAuto": {"groupBy": "$_id", "buckets": chunks}},
        ])
        .await;
    if let Ok(cursor) = bucket {
        if let Ok(buckets) = cursor.try_collect::<Vec<Document>>().await {
            // Each bucket's lower bound except the first is a split point.
            let mut pts: Vec<Bson> = buckets
                .iter()
                .skip(1)
                .filter_map(|b| {
                    b.get_document("_id")
                        .ok()
                        .and_then(|r| r.get("min").cloned())
                })
                .collect();
            pts.sort_by(bsonx::cmp);
            pts.dedup();
            return Ok(pts);
        }
    }
    tracing::info!(ns = %format!("{db}.{coll}"), "$bucketAuto failed; paginating _id instead");
    let per_chunk = ((count / chunks as f64).ceil() as usize).max(1);
    let mut cursor = c
        .find(doc! {})
        .projection(doc! {"_id": 1})
        .sort(doc! {"_id": 1})
        .hint(mongodb::options::Hint::Keys(doc! {"_id": 1}))
        .await
        .map_err(|e| MongoError::mongo(format!("paginating _id of {db}.{coll}"), e))?;
    let mut pts = Vec::new();
    let mut i = 0usize;
    while let Some(d) = cursor
        .try_next()
        .await
        .map_err(|e| MongoError::mongo(format!("paginating _id of {db}.{coll}"), e))?
    {
        if i > 0 && i.is_multiple_of(per_chunk) {
            if let Some(id) = d.get("_id") {
                pts.push(id.clone());
            }
        }
        i += 1;
    }
    Ok(pts)
}

/// The `config.chunks` boundaries of a sharded collection (what Flink CDC's
/// sharded split strategy reads), as `_id` split points.
///
/// `None` when the collection is not sharded (no `config.collections` entry,
/// or it is marked dropped), when the config database cannot be read (a
/// plain replica set member may refuse, a user may lack the privilege), or
/// when the shard key is not the range key `{_id: 1}`: chunk bounds on any
/// other key (a hashed `_id`, a compound or non-`_id` key) are not `_id`
/// ranges, and chunks are read and matched by `_id`. Those collections are
/// split like unsharded ones.
pub async fn shard_chunk_points(client: &Client, db: &str, coll: &str) -> Option<Vec<Bson>> {
    let ns = format!("{db}.{coll}");
    let config = client.database("config");
    let entry = match config
        .collection::<Document>("collections")
        .find_one(doc! {"_id": &ns})
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(ns = %ns, error = %e, "config.collections not readable; treating the collection as unsharded");
            return None;
        }
    };
    if entry.get_bool("dropped").unwrap_or(false) {
        return None;
    }
    let key = entry.get_document("key").ok()?;
    let ranged_id = key.len() == 1
        && match key.get("_id") {
            Some(Bson::Int32(1) | Bson::Int64(1)) => true,
            Some(Bson::Double(d)) => (*d - 1.0).abs() < f64::EPSILON,
            _ => false,
        };
    if !ranged_id {
        tracing::info!(ns = %ns, shard_key = %key, "shard key is not {{_id: 1}}; its chunk ranges cannot bound _id reads, so the collection is split by size instead");
        return None;
    }
    // MongoDB 5.0+ references the collection by uuid, older versions by ns.
    let filter = match entry.get("uuid") {
        Some(uuid) => doc! {"uuid": uuid.clone()},
        None => doc! {"ns": &ns},
    };
    let chunks: Vec<Document> = match config.collection::<Document>("chunks").find(filter).await {
        Ok(cursor) => match cursor.try_collect().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(ns = %ns, error = %e, "reading config.chunks failed; splitting by size");
                return None;
            }
        },
        Err(e) => {
            tracing::warn!(ns = %ns, error = %e, "reading config.chunks failed; splitting by size");
            return None;
        }
    };
    let mut pts: Vec<Bson> = chunks
        .iter()
        .filter_map(|c| c.get_document("min").ok()?.get("_id").cloned())
        .filter(|b| !matches!(b, Bson::MinKey))
        .collect();
    if chunks.is_empty() {
        return None;
    }
    pts.sort_by(bsonx::cmp);
    Some(pts)
}

/// Cuts every selected collection into chunks. `start` is the resume token
/// (JSON) taken before this call.
pub async fn make_plan(
    client: &Client,
    cfg: &MongoConfig,
    gen: u64,
    start: String,
    reason: &str,
) -> Result<Plan, MongoError> {
    let mut chunks = Vec::new();
    for (db, coll) in namespaces(client, cfg).await? {
        let mut pts = split_points(client, cfg, &db, &coll).await?;
        if let Some(shard_pts) = shard_chunk_points(client, &db, &coll).await {
            // Every shard chunk boundary is a split point, so no read spans
            // two shard chunks; the size-based points still cut chunks that
            // are larger than snapshot.chunk.size.mb.
            tracing::info!(ns = %format!("{db}.{coll}"), shard_chunks = shard_pts.len() + 1, "sharded collection: splitting at its config.chunks ranges");
            pts.extend(shard_pts);
            pts.sort_by(bsonx::cmp);
            pts.dedup_by(|a, b| bsonx::cmp(a, b) == std::cmp::Ordering::Equal);
        }
        let mut lo = Bson::MinKey;
        for p in pts.into_iter().chain(std::iter::once(Bson::MaxKey)) {
            chunks.push(ChunkSpec {
                n: chunks.len(),
                db: db.clone(),
                coll: coll.clone(),
                min: bound_json(&lo),
                max: bound_json(&p),
            });
            lo = p;
        }
    }
    tracing::info!(connector = %cfg.name, gen, chunks = chunks.len(), "snapshot planned");
    Ok(Plan {
        gen,
        start,
        reason: reason.to_string(),
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;

    #[test]
    fn bounds_keep_their_types() {
        for b in [
            Bson::MinKey,
            Bson::MaxKey,
            Bson::Int64(5),
            Bson::ObjectId(ObjectId::new()),
            Bson::String("x".into()),
        ] {
            assert_eq!(ChunkSpec::bound(&bound_json(&b)), b);
        }
    }
}
