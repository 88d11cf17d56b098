//! The connector's configuration: every key of the official MongoDB Kafka
//! source connector (same names, defaults and meanings, so its configs run
//! unchanged) plus `connectd`'s additions (include/exclude selection, the
//! chunked snapshot, the handoff mode and the expired-token policy).
//!
//! [`config_def`] declares the keys; [`MongoConfig::parse`] turns a validated
//! map into typed settings, rejecting combinations the def cannot express.

use std::collections::HashMap;

use connect_api::config::{
    ConfigDef, ConfigKey, ConfigType, Default, Importance, Props, Validator,
};
use mongodb::bson::{Bson, Document, Timestamp};
use regex::Regex;

use crate::error::MongoError;

/// Our class name; the official one is registered as an alias.
pub const CLASS: &str = "io.connectd.mongodb.MongoSourceConnector";
pub const OFFICIAL_CLASS: &str = "com.mongodb.kafka.connect.MongoSourceConnector";
pub const TASK_CLASS: &str = "io.connectd.mongodb.MongoSourceTask";

const FORMATTER_DEFAULT: &str = "com.mongodb.kafka.connect.source.json.formatter.DefaultJson";
const FORMATTER_EXTENDED: &str = "com.mongodb.kafka.connect.source.json.formatter.ExtendedJson";
const FORMATTER_SIMPLIFIED: &str = "com.mongodb.kafka.connect.source.json.formatter.SimplifiedJson";

/// Internal keys the connector writes into task configs.
pub const TASK_INDEX: &str = "connectd.mongodb.task.index";
pub const TASK_PLAN: &str = "connectd.mongodb.task.plan";
pub const TASK_CHUNKS: &str = "connectd.mongodb.task.chunks";

fn s(name: &str, default: &str, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(
        name,
        ConfigType::String,
        Default::Value(default.into()),
        imp,
        doc,
    )
}
fn b(name: &str, default: bool, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(
        name,
        ConfigType::Boolean,
        Default::Value(default.to_string()),
        imp,
        doc,
    )
}
fn i(name: &str, default: i64, min: f64, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(
        name,
        ConfigType::Int,
        Default::Value(default.to_string()),
        imp,
        doc,
    )
    .validator(Validator::at_least(min))
}
fn l(name: &str, default: i64, min: f64, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(
        name,
        ConfigType::Long,
        Default::Value(default.to_string()),
        imp,
        doc,
    )
    .validator(Validator::at_least(min))
}
fn opt(name: &str, t: ConfigType, imp: Importance, doc: &str) -> ConfigKey {
    ConfigKey::new(name, t, Default::Null, imp, doc)
}

fn cpus() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

/// Every key this connector understands, documented.
pub fn config_def() -> ConfigDef {
    use Importance::{High, Low, Medium};
    let defs = vec![
        // --- connection (official keys)
        s("connection.uri", "mongodb://localhost:27017,localhost:27018,localhost:27019", High,
          "MongoDB connection string. Must reach a replica set or sharded cluster: change streams need an oplog."),
        opt("connection.ssl.truststore", ConfigType::String, Low, "Path of a TLS trust store (official key; use tlsCAFile in connection.uri instead, this build reads PEM files through the URI)."),
        opt("connection.ssl.truststorePassword", ConfigType::Password, Low, "Password of connection.ssl.truststore."),
        opt("connection.ssl.keystore", ConfigType::String, Low, "Path of a TLS key store (official key; use tlsCertificateKeyFile in connection.uri)."),
        opt("connection.ssl.keystorePassword", ConfigType::Password, Low, "Password of connection.ssl.keystore."),
        opt("server.api.version", ConfigType::String, Low, "Stable API version to declare to the server (e.g. 1); empty means none."),
        b("server.api.deprecation.errors", false, Low, "With server.api.version: make the server reject deprecated commands."),
        b("server.api.strict", false, Low, "With server.api.version: make the server reject commands outside the declared API."),
        b("mongo.custom.auth.mechanism.enable", false, Low, "Official key for a Java credential provider class; not supported here (authenticate through connection.uri)."),
        opt("mongo.custom.auth.mechanism.providerClass", ConfigType::String, Low, "Java credential provider class; ignored by this build."),
        // --- scope
        s("database", "", High, "Database to watch. Empty means every database (a cluster-wide change stream)."),
        s("collection", "", High, "Collection to watch inside `database`. Empty means every collection of the database."),
        s("pipeline", "[]", Medium, "JSON array of aggregation stages appended to the change stream after connectd's own filters, e.g. [{\"$match\": {\"operationType\": \"insert\"}}]."),
        s("collation", "", Low, "JSON collation document applied to the change stream; empty means the server default."),
        i("batch.size", 0, 0.0, Low, "Cursor batch size for the change stream and the snapshot reads; 0 lets the server choose."),
        // --- change stream
        s("change.stream.full.document", "", Medium, "fullDocument option of the change stream: default, updateLookup, whenAvailable or required. Empty means the server default (no full document on updates)."),
        s("change.stream.full.document.before.change", "", Medium, "fullDocumentBeforeChange option (pre-images, MongoDB 6.0+): default, off, whenAvailable or required. Empty means off."),
        b("change.stream.show.expanded.events", false, Low, "Ask the server for DDL events (create, createIndexes, modify, ...) as well."),
        b("change.stream.split.large.events", false, Medium, "Append $changeStreamSplitLargeEvent (MongoDB 7.0+/6.0.9+) to the change streams, so an event larger than 16 MiB arrives as fragments instead of failing the stream; the fragments are joined back into one record (its _id is the last fragment's resume token) and the offset only moves past complete events."),
        b("change.stream.document.key.as.key", true, Medium, "Use the event's documentKey as the record key; when false the key is {\"_id\": <resume token>}."),
        b("publish.full.document.only", false, High, "Publish only the fullDocument of each change (forces updateLookup); events without one (deletes, DDL) are not published."),
        b("publish.full.document.only.tombstone.on.delete", false, Medium, "With publish.full.document.only: publish a delete as a record with a null value (a tombstone) instead of dropping it."),
        // --- startup
        s("startup.mode", "", High, "Where a connector without a stored offset starts: latest (only new changes, the default), timestamp (from startup.mode.timestamp.start.at.operation.time) or copy_existing (copy the existing documents first, then stream)."),
        s("startup.mode.timestamp.start.at.operation.time", "", Medium, "For startup.mode=timestamp: seconds since the epoch, or an ISO-8601 instant; 0 means the start of the oplog."),
        i("startup.mode.copy.existing.max.threads", cpus(), 1.0, Medium, "For copy_existing: how many chunks are read at once in a task when snapshot.parallelism is not set."),
        i("startup.mode.copy.existing.queue.size", 16000, 1.0, Low, "For copy_existing: documents buffered between readers and the worker; connectd bounds its channel by this many documents."),
        s("startup.mode.copy.existing.pipeline", "[]", Medium, "For copy_existing: JSON array of stages applied to the copied documents (only $match stages are supported; they are used as the snapshot filter of every collection)."),
        s("startup.mode.copy.existing.namespace.regex", "", Medium, "For copy_existing: only namespaces (db.coll) matching this regular expression are copied."),
        b("startup.mode.copy.existing.allow.disk.use", true, Low, "Official key for the copy aggregation; connectd reads with find, so it has no effect."),
        opt("copy.existing", ConfigType::Boolean, Low, "Deprecated: use startup.mode=copy_existing."),
        opt("copy.existing.max.threads", ConfigType::Int, Low, "Deprecated alias of startup.mode.copy.existing.max.threads."),
        opt("copy.existing.queue.size", ConfigType::Int, Low, "Deprecated alias of startup.mode.copy.existing.queue.size."),
        opt("copy.existing.pipeline", ConfigType::String, Low, "Deprecated alias of startup.mode.copy.existing.pipeline."),
        opt("copy.existing.namespace.regex", ConfigType::String, Low, "Deprecated alias of startup.mode.copy.existing.namespace.regex."),
        opt("copy.existing.allow.disk.use", ConfigType::Boolean, Low, "Deprecated alias of startup.mode.copy.existing.allow.disk.use."),
        // --- output
        s("output.format.key", "json", High, "Key format: json (a JSON string), bson (the raw BSON bytes) or schema (a Connect struct for a schema'd converter such as AvroConverter: {_id: <mapped _id>} inferred per collection, or output.schema.key). See docs/avro.md.")
            .validator(Validator::one_of(&["json", "bson", "schema"])),
        s("output.format.value", "json", High, "Value format: json (a JSON string), bson (the raw BSON bytes), schema (a Connect struct: the official change-event layout, or the document with publish.full.document.only; shaped by output.schema.infer.value or output.schema.value; see docs/avro.md) or changelog (the Debezium envelope {before, after, source, op, ts_ms, ...} as a JSON string, built from pre- and post-images exactly as the changelog normalizer writes it; needs change.stream.full.document.before.change=whenAvailable|required and change.stream.full.document=updateLookup|whenAvailable|required; see docs/mongodb-source.md).")
            .validator(Validator::one_of(&["json", "bson", "schema", "changelog"])),
        b("output.changelog.json.schemas.enable", false, Medium, "With output.format.value=changelog: write {\"schema\": ..., \"payload\": ...} as Connect's JsonConverter with schemas does (the normalizer's output.json.schemas.enable=true); false: schemaless Debezium JSON with documents nested as objects."),
        s("output.changelog.document.encoding", "auto", Low, "With output.format.value=changelog: auto (documents nested as JSON objects) or string (documents as JSON text, the io.debezium.data.Json shape); the normalizer's output.document.encoding.")
            .validator(Validator::one_of(&["auto", "string"])),
        b("output.changelog.tombstones.on.delete", false, Low, "With output.format.value=changelog: also publish a tombstone (null value) after each delete envelope (the normalizer's output.tombstones.on.delete)."),
        s("output.json.formatter", FORMATTER_DEFAULT, Medium, "How BSON becomes JSON: ...DefaultJson (legacy strict extended JSON), ...ExtendedJson (canonical extended JSON v2) or ...SimplifiedJson (relaxed, with ObjectId, dates, decimals and binaries as plain strings).")
            .validator(Validator::one_of(&[FORMATTER_DEFAULT, FORMATTER_EXTENDED, FORMATTER_SIMPLIFIED])),
        opt("output.schema.key", ConfigType::String, Low, "Avro schema (JSON text) of the key for output.format.key=schema; fields are taken from the document key by name. Unset: the key schema {_id} is inferred per collection."),
        opt("output.schema.value", ConfigType::String, Low, "Avro schema (JSON text) of the value for output.format.value=schema; fields are taken by name, non-string values of string fields become JSON. Unset: the official change-event schema with documents as JSON strings."),
        b("output.schema.infer.value", false, Low, "With output.format.value=schema: keep one inferred schema per collection (the union of the fields seen, all optional; changes only widen, so each version is BACKWARD compatible with the previous) and continue it from the schema registry after a restart. See docs/avro.md."),
        opt(crate::schema::REGISTRY_URL_KEY, ConfigType::String, Low, "Schema registry URL(s), comma-separated, from which inferred schemas are reloaded after a restart (subjects <topic>-value and <topic>-key). Defaults to the connector's value.converter.schema.registry.url."),
        // --- topics
        s("topic.prefix", "", Medium, "Prefix of every topic name."),
        s("topic.suffix", "", Medium, "Suffix of every topic name."),
        s("topic.separator", ".", Low, "Separator between prefix, database, collection and suffix."),
        s("topic.namespace.map", "", Medium, "JSON object mapping a database (\"db\") or a namespace (\"db.coll\") to a topic name; \"*\" maps everything else. A database mapping is followed by the separator and the collection."),
        s("topic.mapper", "com.mongodb.kafka.connect.source.topic.mapping.DefaultTopicMapper", Low, "Official topic mapper class; only the default mapper is supported."),
        // --- polling
        i("poll.max.batch.size", 1000, 1.0, Medium, "Most records returned by one poll."),
        l("poll.await.time.ms", 5000, 1.0, Low, "How long a change-stream getMore waits for new events before returning empty."),
        // --- errors (official mongo.* variants; the plain errors.* keys belong to the worker)
        opt("mongo.errors.tolerance", ConfigType::String, Low, "Overrides errors.tolerance for this connector's own conversions. none (default): a change event or document the configured output cannot represent fails the task, naming the namespace, the document _id and the cause, and the offset stays before the event; all: it is logged (always a one-line warning; the whole event with errors.log.enable), written to errors.deadletterqueue.topic.name when set, counted (progress: errors_skipped, errors_dlq) and the offset moves past it."),
        opt("mongo.errors.log.enable", ConfigType::Boolean, Low, "Overrides errors.log.enable: log each conversion error with the whole event as extended JSON."),
        opt("mongo.errors.deadletterqueue.topic.name", ConfigType::String, Low, "Overrides errors.deadletterqueue.topic.name: with errors.tolerance=all, the topic that receives each event that could not be converted (key: the record key document, value: the change event or copied document, both as relaxed extended JSON strings), with the event's source offset."),
        opt("mongo.errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, Low, "Overrides errors.deadletterqueue.context.headers.enable: add __connect.errors.* headers (intended topic, connector name, task id, stage, exception class and message) to dead letter queue records."),
        // --- resume
        l("heartbeat.interval.ms", 0, 0.0, Medium, "When > 0: while no change has been published for this long, publish the stream's postBatchResumeToken to heartbeat.topic.name so that the stored offset keeps up with an idle stream (and never falls out of the oplog)."),
        s("heartbeat.topic.name", "__mongodb_heartbeats", Low, "Topic of heartbeat records (key: the resume token JSON, value: null). Snapshot chunk-completion markers go here too."),
        s("offset.partition.name", "", Medium, "Name of the stream's source partition; a new name starts over with no stored offset. Empty means a name derived from connection.uri hosts, database and collection."),
        // --- connectd additions: selection
        ConfigKey::new("database.include.list", ConfigType::List, Default::Value(String::new()), Medium,
            "Comma-separated regular expressions, each anchored at both ends, of databases to capture. Empty means all (or `database`)."),
        ConfigKey::new("database.exclude.list", ConfigType::List, Default::Value(String::new()), Medium,
            "Anchored regular expressions of databases not to capture."),
        ConfigKey::new("collection.include.list", ConfigType::List, Default::Value(String::new()), Medium,
            "Anchored regular expressions matched against `db.coll` of collections to capture; collections created later are picked up."),
        ConfigKey::new("collection.exclude.list", ConfigType::List, Default::Value(String::new()), Medium,
            "Anchored regular expressions matched against `db.coll` of collections not to capture."),
        // --- connectd additions: snapshot
        s("snapshot.mode", "", High, "initial: copy the existing documents when no offset is stored, then stream (same as startup.mode=copy_existing); never: do not copy. Empty follows startup.mode.")
            .validator(Validator::one_of(&["", "initial", "never"])),
        opt("snapshot.parallelism", ConfigType::Int, Medium, "Chunks read at once inside one task (default: startup.mode.copy.existing.max.threads)."),
        ConfigKey::new("snapshot.chunk.size.mb", ConfigType::Double, Default::Value("64".into()), Medium,
            "Target chunk size for splitVector in megabytes (fractions allowed); a collection smaller than one chunk is read as one chunk. Also bounds a task's snapshot memory: about snapshot.parallelism x this size."),
        s("snapshot.filter", "", Medium, "JSON object mapping `db.coll` to a query filter applied when that collection is copied, e.g. {\"shop.orders\": {\"status\": \"open\"}}. Changes during a chunk's read are applied regardless of the filter."),
        s("snapshot.handoff", "exact", Medium, "exact: each chunk is reconciled with the change stream between a low and a high watermark, so no change is lost or published twice at the snapshot/stream boundary; at_least_once: no reconciliation (cheaper; changes made during the copy may appear twice).")
            .validator(Validator::one_of(&["exact", "at_least_once"])),
        l("snapshot.backfill.max.events", 100_000, 1.0, Low, "Most change events buffered while reconciling one chunk; a chunk that changes more while it is read is re-read (up to 3 times) and then the task fails, asking for smaller chunks."),
        s("resume.token.expired.policy", "fail", High, "What to do when the stored resume token is no longer in the oplog (error 286): fail (stop with an explanation), resnapshot (copy the current state again, then stream; fails if the copy itself outlives the oplog) or skip (log the gap's bounds and continue from now).")
            .validator(Validator::one_of(&["fail", "resnapshot", "skip"])),
    ];
    defs.into_iter().fold(ConfigDef::new(), ConfigDef::define)
}

/// Output encoding of a key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Bson,
    /// A Connect struct with a schema ([`crate::schema`]).
    Schema,
}

/// BSON → JSON flavour (`output.json.formatter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formatter {
    /// Legacy strict extended JSON (`DefaultJson`).
    Default,
    /// Canonical extended JSON v2.
    Extended,
    /// Relaxed JSON with ObjectId/date/decimal/binary as plain strings.
    Simplified,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Startup {
    Latest,
    Timestamp(Timestamp),
    Copy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    Exact,
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredPolicy {
    Fail,
    Resnapshot,
    Skip,
}

/// What the change stream watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Collection(String, String),
    Database(String),
    Cluster,
}

/// Which namespaces are captured.
#[derive(Debug, Clone)]
pub struct Selection {
    pub database: String,
    pub collection: String,
    pub db_include: Vec<Regex>,
    pub db_exclude: Vec<Regex>,
    pub coll_include: Vec<Regex>,
    pub coll_exclude: Vec<Regex>,
    /// Source patterns, for the pushed-down `$match`.
    db_include_src: Vec<String>,
    db_exclude_src: Vec<String>,
}

fn anchored(key: &str, pats: &[String]) -> Result<(Vec<Regex>, Vec<String>), MongoError> {
    let mut out = Vec::new();
    let mut src = Vec::new();
    for p in pats.iter().filter(|p| !p.is_empty()) {
        let a = format!("^(?:{p})$");
        let r = Regex::new(&a).map_err(|e| MongoError::Config {
            key: key.to_string(),
            message: format!("`{p}` is not a valid regular expression: {e}"),
        })?;
        out.push(r);
        src.push(a);
    }
    Ok((out, src))
}

fn is_literal(p: &str) -> bool {
    !p.chars().any(|c| "\\.^$|?*+()[]{}".contains(c))
}

impl Selection {
    /// Internal databases and system collections are never captured.
    pub fn matches(&self, db: &str, coll: Option<&str>) -> bool {
        if matches!(db, "admin" | "local" | "config") {
            return false;
        }
        if !self.database.is_empty() && db != self.database {
            return false;
        }
        if !self.db_include.is_empty() && !self.db_include.iter().any(|r| r.is_match(db)) {
            return false;
        }
        if self.db_exclude.iter().any(|r| r.is_match(db)) {
            return false;
        }
        let Some(coll) = coll else { return true };
        if coll.starts_with("system.") {
            return false;
        }
        if !self.collection.is_empty() && coll != self.collection {
            return false;
        }
        let ns = format!("{db}.{coll}");
        if !self.coll_include.is_empty() && !self.coll_include.iter().any(|r| r.is_match(&ns)) {
            return false;
        }
        !self.coll_exclude.iter().any(|r| r.is_match(&ns))
    }

    /// The narrowest change stream covering the selection.
    pub fn scope(&self) -> Scope {
        let db = if !self.database.is_empty() {
            Some(self.database.clone())
        } else if self.db_include_src.len() == 1 {
            // `^(?:name)$` with a literal name pins one database.
            let inner = &self.db_include_src[0][4..self.db_include_src[0].len() - 2];
            is_literal(inner).then(|| inner.to_string())
        } else {
            None
        };
        match db {
            Some(db) if !self.collection.is_empty() => {
                Scope::Collection(db, self.collection.clone())
            }
            Some(db) => Scope::Database(db),
            None => Scope::Cluster,
        }
    }

    /// A `$match` pushed down into the change stream so that the server drops
    /// events of other databases; collection patterns are checked client-side
    /// too (they match `db.coll`, which the event splits in two fields).
    pub fn match_stage(&self) -> Option<Document> {
        let mut and: Vec<Bson> = Vec::new();
        if !self.db_include_src.is_empty() {
            let any: Vec<Bson> = self
                .db_include_src
                .iter()
                .map(|p| Bson::Document(mongodb::bson::doc! {"ns.db": {"$regex": p}}))
                .collect();
            and.push(Bson::Document(mongodb::bson::doc! {"$or": any}));
        }
        for p in &self.db_exclude_src {
            and.push(Bson::Document(
                mongodb::bson::doc! {"ns.db": {"$not": {"$regex": p}}},
            ));
        }
        if self.scope() == Scope::Cluster {
            and.push(Bson::Document(
                mongodb::bson::doc! {"ns.db": {"$nin": ["admin", "local", "config"]}},
            ));
        }
        if and.is_empty() {
            None
        } else {
            Some(mongodb::bson::doc! {"$match": {"$and": and}})
        }
    }
}

/// What happens to a change event the output cannot represent
/// (`[mongo.]errors.*`, the official source connector's keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorPolicy {
    /// `errors.tolerance=all`.
    pub tolerate: bool,
    /// `errors.log.enable`: log the whole event.
    pub log: bool,
    pub dlq_topic: Option<String>,
    pub dlq_context_headers: bool,
}

impl ErrorPolicy {
    /// `mongo.errors.X` when set, else `errors.X` (the official precedence).
    ///
    /// # Errors
    /// A tolerance other than `none` / `all`, or a flag that is not a boolean.
    pub fn parse(props: &Props) -> Result<Self, MongoError> {
        let get = |k: &str| -> Option<(String, String)> {
            let over = format!("mongo.{k}");
            props
                .get(&over)
                .map(|v| (over, v.trim().to_string()))
                .or_else(|| props.get(k).map(|v| (k.to_string(), v.trim().to_string())))
                .filter(|(_, v)| !v.is_empty())
        };
        let flag = |k: &str| -> Result<bool, MongoError> {
            match get(k) {
                None => Ok(false),
                Some((key, v)) => v
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|_| MongoError::Config {
                        key,
                        message: format!("`{v}` is not true or false"),
                    }),
            }
        };
        let tolerate = match get("errors.tolerance") {
            None => false,
            Some((key, v)) => match v.to_ascii_lowercase().as_str() {
                "none" => false,
                "all" => true,
                _ => {
                    return Err(MongoError::Config {
                        key,
                        message: format!("`{v}` is not none or all"),
                    })
                }
            },
        };
        Ok(ErrorPolicy {
            tolerate,
            log: flag("errors.log.enable")?,
            dlq_topic: get("errors.deadletterqueue.topic.name").map(|(_, v)| v),
            dlq_context_headers: flag("errors.deadletterqueue.context.headers.enable")?,
        })
    }
}

/// The changelog output's settings, checked against the change stream
/// options it needs.
fn changelog_output(
    props: &Props,
    parsed: &connect_api::config::ParsedConfig,
    full_document_only: bool,
    full_document: Option<&str>,
    before_change: Option<&str>,
) -> Result<crate::changelog::ChangelogOutput, MongoError> {
    const PRE: &str = "change.stream.full.document.before.change";
    const POST: &str = "change.stream.full.document";
    if full_document_only {
        return Err(MongoError::Config {
            key: "output.format.value".into(),
            message: "changelog writes whole envelopes; it cannot be combined with publish.full.document.only=true".into(),
        });
    }
    let pre_ok = matches!(before_change, Some("whenAvailable" | "required"));
    let post_ok = matches!(
        full_document,
        Some("updateLookup" | "whenAvailable" | "required")
    );
    if !pre_ok || !post_ok {
        return Err(MongoError::Config {
            key: if pre_ok { POST } else { PRE }.into(),
            message: format!(
                "output.format.value=changelog builds `before` from pre-images and `after` from post-images: \
                 it needs {PRE}=whenAvailable or required (now `{}`) and {POST}=updateLookup, whenAvailable \
                 or required (now `{}`)",
                before_change.unwrap_or(""),
                full_document.unwrap_or("")
            ),
        });
    }
    let document = match parsed
        .string("output.changelog.document.encoding")
        .unwrap_or("auto")
    {
        "string" => connect_changelog::DocumentEncoding::String,
        _ => connect_changelog::DocumentEncoding::Auto,
    };
    crate::changelog::ChangelogOutput::new(
        props.get("name").map_or("", String::as_str),
        parsed
            .bool("output.changelog.json.schemas.enable")
            .unwrap_or(false),
        document,
        parsed
            .bool("output.changelog.tombstones.on.delete")
            .unwrap_or(false),
    )
    .map_err(|e| MongoError::Config {
        key: "output.format.value".into(),
        message: format!("building the changelog encoder: {e}"),
    })
}

/// Typed settings.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub name: String,
    pub uri: String,
    pub selection: Selection,
    pub pipeline: Vec<Document>,
    pub full_document: Option<String>,
    pub full_document_before_change: Option<String>,
    pub show_expanded_events: bool,
    /// `change.stream.split.large.events`: ask for and reassemble fragments.
    pub split_large_events: bool,
    pub document_key_as_key: bool,
    pub full_document_only: bool,
    pub tombstone_on_delete: bool,
    pub startup: Startup,
    pub copy_namespace_regex: Option<Regex>,
    pub snapshot_filters: HashMap<String, Document>,
    pub snapshot_parallelism: usize,
    pub chunk_size_bytes: f64,
    pub handoff: Handoff,
    pub backfill_max_events: usize,
    pub expired_policy: ExpiredPolicy,
    pub key_format: Format,
    pub value_format: Format,
    pub formatter: Formatter,
    /// Schema'd key/value production when either format is `schema`.
    pub schema_output: Option<std::sync::Arc<crate::schema::SchemaOutput>>,
    /// `output.format.value=changelog`: the envelope builder.
    pub changelog: Option<std::sync::Arc<crate::changelog::ChangelogOutput>>,
    /// `errors.tolerance` and the dead letter queue, for conversions.
    pub errors: ErrorPolicy,
    pub topic_prefix: String,
    pub topic_suffix: String,
    pub topic_separator: String,
    pub namespace_map: HashMap<String, String>,
    pub poll_max_batch: usize,
    pub poll_await_ms: u64,
    pub batch_size: u32,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_topic: String,
    pub offset_partition_name: String,
}

fn json_array(key: &str, raw: &str) -> Result<Vec<Document>, MongoError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| MongoError::Config {
        key: key.into(),
        message: format!("not JSON: {e}"),
    })?;
    let arr = v.as_array().ok_or_else(|| MongoError::Config {
        key: key.into(),
        message: "must be a JSON array of stage documents".into(),
    })?;
    arr.iter().map(|s| json_doc(key, s)).collect()
}

fn json_doc(key: &str, v: &serde_json::Value) -> Result<Document, MongoError> {
    match Bson::try_from(v.clone()) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(MongoError::Config {
            key: key.into(),
            message: format!("{v} is not a JSON object"),
        }),
        Err(e) => Err(MongoError::Config {
            key: key.into(),
            message: format!("{v} is not valid extended JSON: {e}"),
        }),
    }
}

fn parse_start_time(raw: &str) -> Result<Timestamp, MongoError> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u32>() {
        return Ok(Timestamp {
            time: secs,
            increment: 0,
        });
    }
    mongodb::bson::DateTime::parse_rfc3339_str(raw)
        .map(|d| Timestamp {
            time: (d.timestamp_millis() / 1000).max(0) as u32,
            increment: 0,
        })
        .map_err(|e| MongoError::Config {
            key: "startup.mode.timestamp.start.at.operation.time".into(),
            message: format!(
                "`{raw}` is neither seconds since the epoch nor an ISO-8601 instant: {e}"
            ),
        })
}

/// The `host1,host2` part of a connection string, for the default partition name.
fn uri_hosts(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

impl MongoConfig {
    /// Parses a connector or task config.
    ///
    /// # Errors
    /// A [`MongoError::Config`] naming the key when a value is invalid.
    pub fn parse(props: &Props) -> Result<MongoConfig, MongoError> {
        let parsed = config_def().parse(props).map_err(|e| MongoError::Config {
            key: e.0.first().map(|(k, _)| k.clone()).unwrap_or_default(),
            message: e.to_string(),
        })?;
        let st = |k: &str| parsed.string(k).unwrap_or_default().to_string();
        let (db_include, db_include_src) = anchored(
            "database.include.list",
            &parsed.list("database.include.list"),
        )?;
        let (db_exclude, db_exclude_src) = anchored(
            "database.exclude.list",
            &parsed.list("database.exclude.list"),
        )?;
        let (coll_include, _) = anchored(
            "collection.include.list",
            &parsed.list("collection.include.list"),
        )?;
        let (coll_exclude, _) = anchored(
            "collection.exclude.list",
            &parsed.list("collection.exclude.list"),
        )?;
        let selection = Selection {
            database: st("database"),
            collection: st("collection"),
            db_include,
            db_exclude,
            coll_include,
            coll_exclude,
            db_include_src,
            db_exclude_src,
        };
        if selection.database.is_empty() && !selection.collection.is_empty() {
            return Err(MongoError::Config {
                key: "collection".into(),
                message: "a collection needs `database` too".into(),
            });
        }
        let legacy_copy = parsed.bool("copy.existing").unwrap_or(false);
        let startup = match st("startup.mode").as_str() {
            "" if legacy_copy => Startup::Copy,
            "" | "latest" => Startup::Latest,
            "copy_existing" => Startup::Copy,
            "timestamp" => Startup::Timestamp(parse_start_time(&st(
                "startup.mode.timestamp.start.at.operation.time",
            ))?),
            other => {
                return Err(MongoError::Config {
                    key: "startup.mode".into(),
                    message: format!("`{other}` is not one of latest, timestamp, copy_existing"),
                })
            }
        };
        let startup = match st("snapshot.mode").as_str() {
            "initial" => Startup::Copy,
            "never" if startup == Startup::Copy => Startup::Latest,
            _ => startup,
        };
        let pick = |new: &str, old: &str| -> String {
            props
                .get(new)
                .cloned()
                .or_else(|| props.get(old).cloned())
                .unwrap_or_default()
        };
        let regex_src = pick(
            "startup.mode.copy.existing.namespace.regex",
            "copy.existing.namespace.regex",
        );
        let copy_namespace_regex = if regex_src.trim().is_empty() {
            None
        } else {
            Some(Regex::new(&regex_src).map_err(|e| MongoError::Config {
                key: "startup.mode.copy.existing.namespace.regex".into(),
                message: format!("not a valid regular expression: {e}"),
            })?)
        };
        let mut copy_filter = Document::new();
        for stage in json_array(
            "startup.mode.copy.existing.pipeline",
            &pick(
                "startup.mode.copy.existing.pipeline",
                "copy.existing.pipeline",
            ),
        )? {
            match stage.get_document("$match") {
                Ok(m) if stage.len() == 1 => copy_filter.extend(m.clone()),
                _ => {
                    return Err(MongoError::Config {
                        key: "startup.mode.copy.existing.pipeline".into(),
                        message: format!(
                            "only $match stages are supported in the copy pipeline, got {stage}"
                        ),
                    })
                }
            }
        }
        let mut snapshot_filters = HashMap::new();
        if !copy_filter.is_empty() {
            snapshot_filters.insert("*".to_string(), copy_filter);
        }
        let sf = st("snapshot.filter");
        if !sf.trim().is_empty() {
            let v: serde_json::Value =
                serde_json::from_str(&sf).map_err(|e| MongoError::Config {
                    key: "snapshot.filter".into(),
                    message: format!("not JSON: {e}"),
                })?;
            let obj = v.as_object().ok_or_else(|| MongoError::Config {
                key: "snapshot.filter".into(),
                message: "must be a JSON object of `db.coll`: filter".into(),
            })?;
            for (ns, f) in obj {
                snapshot_filters.insert(ns.clone(), json_doc("snapshot.filter", f)?);
            }
        }
        let mut namespace_map = HashMap::new();
        let nm = st("topic.namespace.map");
        if !nm.trim().is_empty() {
            let v: serde_json::Value =
                serde_json::from_str(&nm).map_err(|e| MongoError::Config {
                    key: "topic.namespace.map".into(),
                    message: format!("not JSON: {e}"),
                })?;
            for (k, t) in v.as_object().into_iter().flatten() {
                let t = t.as_str().ok_or_else(|| MongoError::Config {
                    key: "topic.namespace.map".into(),
                    message: format!("the topic of `{k}` must be a string"),
                })?;
                namespace_map.insert(k.clone(), t.to_string());
            }
        }
        let format = |k: &str| -> Result<Format, MongoError> {
            match st(k).as_str() {
                "bson" => Ok(Format::Bson),
                "schema" => Ok(Format::Schema),
                _ => Ok(Format::Json),
            }
        };
        let formatter = match st("output.json.formatter").as_str() {
            FORMATTER_EXTENDED => Formatter::Extended,
            FORMATTER_SIMPLIFIED => Formatter::Simplified,
            _ => Formatter::Default,
        };
        let full_document_only = parsed.bool("publish.full.document.only").unwrap_or(false);
        let mut full_document =
            Some(st("change.stream.full.document")).filter(|v| !v.is_empty() && v != "default");
        if full_document_only {
            // A bare document needs the post-image on updates too.
            full_document.get_or_insert_with(|| "updateLookup".to_string());
        }
        let full_document_before_change = Some(st("change.stream.full.document.before.change"))
            .filter(|v| !v.is_empty() && v != "default" && v != "off");
        let changelog = if st("output.format.value") == "changelog" {
            Some(std::sync::Arc::new(changelog_output(
                props,
                &parsed,
                full_document_only,
                full_document.as_deref(),
                full_document_before_change.as_deref(),
            )?))
        } else {
            None
        };
        let errors = ErrorPolicy::parse(props)?;
        let parallelism = parsed
            .int("snapshot.parallelism")
            .or_else(|| {
                props
                    .get("copy.existing.max.threads")
                    .and_then(|v| v.trim().parse().ok())
            })
            .or_else(|| parsed.int("startup.mode.copy.existing.max.threads"))
            .unwrap_or(1)
            .max(1) as usize;
        let database = selection.database.clone();
        let collection = selection.collection.clone();
        let mut partition_name = st("offset.partition.name");
        if partition_name.is_empty() {
            // Same idea as the official connector: hosts plus the watched namespace.
            partition_name = format!(
                "{}/{}{}{}",
                uri_hosts(&st("connection.uri")),
                database,
                if collection.is_empty() { "" } else { "." },
                collection
            );
        }
        Ok(MongoConfig {
            name: props.get("name").cloned().unwrap_or_default(),
            uri: st("connection.uri"),
            selection,
            pipeline: json_array("pipeline", &st("pipeline"))?,
            full_document,
            full_document_before_change,
            show_expanded_events: parsed
                .bool("change.stream.show.expanded.events")
                .unwrap_or(false),
            split_large_events: parsed
                .bool("change.stream.split.large.events")
                .unwrap_or(false),
            document_key_as_key: parsed
                .bool("change.stream.document.key.as.key")
                .unwrap_or(true),
            full_document_only,
            tombstone_on_delete: parsed
                .bool("publish.full.document.only.tombstone.on.delete")
                .unwrap_or(false),
            startup,
            copy_namespace_regex,
            snapshot_filters,
            snapshot_parallelism: parallelism,
            chunk_size_bytes: (parsed.double("snapshot.chunk.size.mb").unwrap_or(64.0)
                * 1024.0
                * 1024.0)
                .max(1024.0),
            handoff: if st("snapshot.handoff") == "at_least_once" {
                Handoff::AtLeastOnce
            } else {
                Handoff::Exact
            },
            backfill_max_events: parsed
                .long("snapshot.backfill.max.events")
                .unwrap_or(100_000)
                .max(1) as usize,
            expired_policy: match st("resume.token.expired.policy").as_str() {
                "resnapshot" => ExpiredPolicy::Resnapshot,
                "skip" => ExpiredPolicy::Skip,
                _ => ExpiredPolicy::Fail,
            },
            key_format: format("output.format.key")?,
            value_format: format("output.format.value")?,
            formatter,
            schema_output: crate::schema::SchemaOutput::from_props(
                props,
                format("output.format.key")? == Format::Schema,
                format("output.format.value")? == Format::Schema,
                full_document_only,
                formatter,
            )?
            .map(std::sync::Arc::new),
            changelog,
            errors,
            topic_prefix: st("topic.prefix"),
            topic_suffix: st("topic.suffix"),
            topic_separator: st("topic.separator"),
            namespace_map,
            poll_max_batch: parsed.int("poll.max.batch.size").unwrap_or(1000).max(1) as usize,
            poll_await_ms: parsed.long("poll.await.time.ms").unwrap_or(5000).max(1) as u64,
            batch_size: parsed.int("batch.size").unwrap_or(0).max(0) as u32,
            heartbeat_interval_ms: parsed.long("heartbeat.interval.ms").unwrap_or(0).max(0) as u64,
            heartbeat_topic: st("heartbeat.topic.name"),
            offset_partition_name: partition_name,
        })
    }

    /// Whether a namespace is copied by the snapshot.
    pub fn snapshots(&self, db: &str, coll: &str) -> bool {
        self.selection.matches(db, Some(coll))
            && self
                .copy_namespace_regex
                .as_ref()
                .is_none_or(|r| r.is_match(&format!("{db}.{coll}")))
    }

    /// The topic of a namespace, as the official DefaultTopicMapper names it.
    pub fn topic(&self, db: &str, coll: Option<&str>) -> String {
        let ns = coll.map_or_else(|| db.to_string(), |c| format!("{db}.{c}"));
        let sep = &self.topic_separator;
        let middle = if let Some(t) = self.namespace_map.get(&ns) {
            t.clone()
        } else if let (Some(t), Some(c)) = (self.namespace_map.get(db), coll) {
            format!("{t}{sep}{c}")
        } else if let Some(t) = self.namespace_map.get("*") {
            t.clone()
        } else {
            coll.map_or_else(|| db.to_string(), |c| format!("{db}{sep}{c}"))
        };
        let mut parts = Vec::new();
        if !self.topic_prefix.is_empty() {
            parts.push(self.topic_prefix.as_str());
        }
        parts.push(middle.as_str());
        if !self.topic_suffix.is_empty() {
            parts.push(self.topic_suffix.as_str());
        }
        parts.join(sep)
    }

    pub fn snapshot_filter(&self, db: &str, coll: &str) -> Document {
        self.snapshot_filters
            .get(&format!("{db}.{coll}"))
            .or_else(|| self.snapshot_filters.get("*"))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Props {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn official_config_parses_with_official_meanings() {
        let c = MongoConfig::parse(&props(&[
            (
                "connection.uri",
                "mongodb://h1:27017,h2:27017/?replicaSet=rs0",
            ),
            ("database", "shop"),
            ("collection", "orders"),
            ("startup.mode", "copy_existing"),
            ("topic.prefix", "p"),
            ("publish.full.document.only", "true"),
        ]))
        .expect("valid");
        assert_eq!(c.startup, Startup::Copy);
        assert_eq!(
            c.selection.scope(),
            Scope::Collection("shop".into(), "orders".into())
        );
        assert_eq!(c.topic("shop", Some("orders")), "p.shop.orders");
        assert_eq!(c.full_document.as_deref(), Some("updateLookup"));
        assert_eq!(c.offset_partition_name, "h1:27017,h2:27017/shop.orders");
    }

    #[test]
    fn regex_selection_is_anchored_and_scoped() {
        let c = MongoConfig::parse(&props(&[
            ("database.include.list", "shop"),
            ("collection.include.list", "shop\\.ord.*"),
            ("collection.exclude.list", "shop\\.orders_tmp"),
        ]))
        .expect("valid");
        assert_eq!(c.selection.scope(), Scope::Database("shop".into()));
        assert!(c.selection.matches("shop", Some("orders")));
        assert!(!c.selection.matches("shop", Some("orders_tmp")));
        assert!(!c.selection.matches("shop", Some("xorders")));
        assert!(!c.selection.matches("shop2", Some("orders")));
    }

    #[test]
    fn namespace_map_and_suffix() {
        let c = MongoConfig::parse(&props(&[
            ("topic.namespace.map", r#"{"a": "x", "b.c": "y"}"#),
            ("topic.suffix", "s"),
        ]))
        .expect("valid");
        assert_eq!(c.topic("a", Some("q")), "x.q.s");
        assert_eq!(c.topic("b", Some("c")), "y.s");
        assert_eq!(c.topic("d", Some("e")), "d.e.s");
    }

    #[test]
    fn schema_format_is_accepted_and_bad_schemas_name_the_key() {
        let c = MongoConfig::parse(&props(&[
            ("output.format.value", "schema"),
            ("output.schema.infer.value", "true"),
        ]))
        .expect("schema format");
        assert_eq!(c.value_format, Format::Schema);
        assert!(c.schema_output.is_some());
        let e = MongoConfig::parse(&props(&[
            ("output.format.value", "schema"),
            ("output.schema.value", "{\"type\": \"recordz\"}"),
        ]))
        .expect_err("invalid schema");
        assert!(e.to_string().contains("output.schema.value"), "{e}");
    }

    #[test]
    fn changelog_output_needs_both_images() {
        let parse = |kv: &[(&str, &str)]| {
            let p: Props = kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            MongoConfig::parse(&p)
        };
        for kv in [
            vec![("output.format.value", "changelog")],
            vec![
                ("output.format.value", "changelog"),
                ("change.stream.full.document", "updateLookup"),
            ],
            vec![
                ("output.format.value", "changelog"),
                ("change.stream.full.document.before.change", "required"),
            ],
        ] {
            let e = parse(&kv).unwrap_err().to_string();
            assert!(
                e.contains("change.stream.full.document.before.change=whenAvailable")
                    && e.contains("change.stream.full.document=updateLookup"),
                "{e}"
            );
        }
        let e = parse(&[
            ("output.format.value", "changelog"),
            ("change.stream.full.document", "updateLookup"),
            ("change.stream.full.document.before.change", "required"),
            ("publish.full.document.only", "true"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("publish.full.document.only"), "{e}");
        let ok = parse(&[
            ("output.format.value", "changelog"),
            ("change.stream.full.document", "whenAvailable"),
            ("change.stream.full.document.before.change", "whenAvailable"),
        ])
        .unwrap();
        assert!(ok.changelog.is_some());
        assert_eq!(ok.value_format, Format::Json);
    }

    #[test]
    fn error_policy_prefers_the_mongo_prefixed_keys() {
        let p = |kv: &[(&str, &str)]| -> Props {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(ErrorPolicy::parse(&p(&[])).unwrap(), ErrorPolicy::default());
        let e = ErrorPolicy::parse(&p(&[
            ("errors.tolerance", "none"),
            ("mongo.errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.log.enable", "true"),
        ]))
        .unwrap();
        assert_eq!(
            e,
            ErrorPolicy {
                tolerate: true,
                log: true,
                dlq_topic: Some("dlq".into()),
                dlq_context_headers: true
            }
        );
        let bad = ErrorPolicy::parse(&p(&[("mongo.errors.tolerance", "some")])).unwrap_err();
        assert!(bad.to_string().contains("mongo.errors.tolerance"), "{bad}");
    }
}
