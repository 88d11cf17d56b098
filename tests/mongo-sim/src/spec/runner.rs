//! Runs unified-format specification test files against an in-process
//! simulator through the official Rust driver (command monitoring captures
//! the events for `expectEvents`).

use super::matcher::{self, EntityValues};
use crate::server::{Options, Server};
use bson::{doc, Bson, Document};
use futures::{StreamExt, TryStreamExt};
use mongodb::change_stream::ChangeStream;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Server version the simulator claims.
const SERVER_VERSION: (u32, u32, u32) = (7, 0, 14);

#[derive(Default, Debug, Clone)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub failures: Vec<(String, String)>,
    pub skips: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct Ev {
    kind: &'static str,
    name: String,
    db: String,
    body: Document,
}

struct ClientEnt {
    client: Client,
    events: Arc<Mutex<Vec<Ev>>>,
}

enum Entity {
    Client(ClientEnt),
    Database(Database),
    Collection(Collection<Document>),
    Stream(Box<ChangeStream<Document>>),
    /// A saved result; its value lives in `Ctx::values` for matching.
    Value,
}

/// A server error the runner saw in a reply it parsed itself.
#[derive(Debug)]
struct ServerError {
    code: i32,
    code_name: String,
    msg: String,
    labels: Vec<String>,
    /// Partial bulk write result.
    partial: Option<Document>,
    /// The reply that carried the error.
    reply: Option<Document>,
}

/// A failed operation: either a driver error or one the runner produced
/// (e.g. a bulk write emulated through commands).
#[derive(Debug)]
enum OpError {
    Driver(mongodb::error::Error),
    Server(Box<ServerError>),
    Client(String),
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Driver(e) => write!(f, "{e}"),
            OpError::Server(e) => write!(f, "server error {}: {}", e.code, e.msg),
            OpError::Client(m) => write!(f, "client error: {m}"),
        }
    }
}

impl From<mongodb::error::Error> for OpError {
    fn from(e: mongodb::error::Error) -> Self {
        OpError::Driver(e)
    }
}

type OpResult = Result<Option<Bson>, OpError>;

/// Operations the runner implements.
const SUPPORTED_OPS: &[&str] = &[
    "createChangeStream",
    "iterateUntilDocumentOrError",
    "iterateOnce",
    "insertOne",
    "insertMany",
    "updateOne",
    "updateMany",
    "replaceOne",
    "deleteOne",
    "deleteMany",
    "find",
    "findOne",
    "aggregate",
    "countDocuments",
    "estimatedDocumentCount",
    "distinct",
    "findOneAndUpdate",
    "findOneAndReplace",
    "findOneAndDelete",
    "bulkWrite",
    "failPoint",
    "createCollection",
    "dropCollection",
    "runCommand",
    "createIndex",
    "dropIndex",
    "rename",
    "modifyCollection",
    "close",
    "assertCollectionExists",
    "assertCollectionNotExists",
    "listCollections",
    "listDatabases",
    "listIndexes",
    "count",
];

fn parse_version(s: &str) -> (u32, u32, u32) {
    let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// Why a runOnRequirements list does not fit a 7.0 replica set (None = fits).
fn requirements_unmet(reqs: Option<&Bson>) -> Option<String> {
    let Some(Bson::Array(list)) = reqs else {
        return None;
    };
    if list.is_empty() {
        return None;
    }
    let mut reasons = Vec::new();
    for r in list {
        let Some(r) = r.as_document() else { continue };
        let mut why = Vec::new();
        if let Ok(v) = r.get_str("minServerVersion") {
            if parse_version(v) > SERVER_VERSION {
                why.push(format!("minServerVersion {v} > 7.0"));
            }
        }
        if let Ok(v) = r.get_str("maxServerVersion") {
            let mv = parse_version(v);
            if mv < SERVER_VERSION && !(mv.0 == 7 && mv.1 == 0 && v.split('.').count() < 3) {
                why.push(format!("maxServerVersion {v} < 7.0"));
            }
        }
        if let Ok(t) = r.get_array("topologies") {
            if !t.iter().any(|x| x.as_str() == Some("replicaset")) {
                why.push(format!("topologies {t:?} exclude replicaset"));
            }
        }
        if r.get_str("serverless") == Ok("require") {
            why.push("requires serverless".into());
        }
        if r.get_bool("auth") == Ok(true) {
            why.push("requires auth".into());
        }
        if r.get_bool("csfle") == Ok(true) {
            why.push("requires csfle".into());
        }
        if let Ok(p) = r.get_document("serverParameters") {
            why.push(format!("requires serverParameters {p}"));
        }
        if why.is_empty() {
            return None;
        }
        reasons.push(why.join(", "));
    }
    Some(reasons.join(" | "))
}

fn load(path: &Path) -> anyhow::Result<Document> {
    let text = std::fs::read_to_string(path)?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    match Bson::try_from(v)? {
        Bson::Document(d) => Ok(d),
        _ => anyhow::bail!("test file is not an object"),
    }
}

/// Run every `*.json` file in `dir`, printing one line per test.
pub async fn run_dir(dir: &Path, filter: Option<&str>, verbose: bool) -> anyhow::Result<Summary> {
    let handle = Server::start(Options::default()).await?;
    let uri = handle.uri();
    let internal = Client::with_uri_str(&uri).await?;
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut summary = Summary::default();
    for f in files {
        let file = load(&f)?;
        let fname = f
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_unmet = requirements_unmet(file.get("runOnRequirements"));
        let tests = file.get_array("tests").cloned().unwrap_or_default();
        for t in tests {
            let Some(t) = t.as_document() else { continue };
            let desc = t.get_str("description").unwrap_or("?").to_string();
            if filter.is_some_and(|fl| !desc.contains(fl) && !fname.contains(fl)) {
                continue;
            }
            let label = format!("{fname}: {desc}");
            let skip = file_unmet
                .clone()
                .or_else(|| requirements_unmet(t.get("runOnRequirements")))
                .map(|r| format!("runOnRequirements not met: {r}"))
                .or_else(|| {
                    t.get_str("skipReason")
                        .ok()
                        .map(|s| format!("skipReason: {s}"))
                })
                .or_else(|| unsupported(&file, t));
            if let Some(reason) = skip {
                println!("SKIP {label} -- {reason}");
                summary.skipped += 1;
                summary.skips.push((label, reason));
                continue;
            }
            let res =
                tokio::time::timeout(Duration::from_secs(30), run_test(&uri, &internal, &file, t))
                    .await;
            let res = match res {
                Ok(r) => r,
                Err(_) => Err("test timed out after 30s".to_string()),
            };
            // Whatever happened, fail points must not leak into the next test.
            let _ = internal
                .database("admin")
                .run_command(doc! {"configureFailPoint": "failCommand", "mode": "off"})
                .await;
            let _ = internal
                .database("admin")
                .run_command(
                    doc! {"configureFailPoint": "failGetMoreAfterCursorCheckout", "mode": "off"},
                )
                .await;
            match res {
                Ok(()) => {
                    println!("PASS {label}");
                    summary.passed += 1;
                }
                Err(e) => {
                    if verbose {
                        println!("FAIL {label} -- {e}");
                    } else {
                        let short: String = e.chars().take(300).collect();
                        println!("FAIL {label} -- {short}");
                    }
                    summary.failed += 1;
                    summary.failures.push((label, e));
                }
            }
        }
    }
    drop(internal);
    handle.shutdown().await;
    Ok(summary)
}

/// A reason to skip a test the runner cannot execute (None = runnable).
fn unsupported(file: &Document, t: &Document) -> Option<String> {
    for e in file
        .get_array("createEntities")
        .cloned()
        .unwrap_or_default()
    {
        if let Some(d) = e.as_document() {
            for k in d.keys() {
                if !matches!(k.as_str(), "client" | "database" | "collection") {
                    return Some(format!("entity type '{k}' not implemented by the runner"));
                }
            }
        }
    }
    // The official Rust driver serialises `comment` into the $changeStream
    // stage (RUST-1658), so these tests cannot pass through it; the driver's
    // own unified runner skips exactly these tests.
    let desc = t.get_str("description").unwrap_or("");
    if matches!(
        desc,
        "Test with document comment"
            | "Test with string comment"
            | "Test that comment is set on getMore"
    ) && file.get_array("tests").is_ok_and(|ts| {
        ts.iter().any(|x| {
            x.as_document().and_then(|d| d.get_str("description").ok())
                == Some("Test consecutive resume")
        })
    }) {
        return Some("Rust driver bug RUST-1658 (comment sent inside the $changeStream stage); skipped by the driver's own runner too".into());
    }
    for op in t.get_array("operations").cloned().unwrap_or_default() {
        let Some(op) = op.as_document() else { continue };
        let name = op.get_str("name").unwrap_or("");
        if !SUPPORTED_OPS.contains(&name) {
            return Some(format!("operation '{name}' not implemented by the runner"));
        }
        if op
            .get_document("arguments")
            .is_ok_and(|a| a.contains_key("session"))
        {
            return Some("operations with explicit sessions not implemented by the runner".into());
        }
    }
    for ee in t.get_array("expectEvents").cloned().unwrap_or_default() {
        if let Some(d) = ee.as_document() {
            if d.get_str("eventType").is_ok_and(|t| t != "command") {
                return Some(format!(
                    "{} events not implemented by the runner",
                    d.get_str("eventType").unwrap_or("")
                ));
            }
        }
    }
    None
}

struct Ctx {
    ents: HashMap<String, Entity>,
    values: EntityValues,
    uri: String,
    /// Observed event filters per client id.
    observe: HashMap<String, (Vec<String>, Vec<String>)>,
}

async fn make_client(
    uri: &str,
    spec: &Document,
) -> Result<(ClientEnt, Vec<String>, Vec<String>), String> {
    let mut opts = ClientOptions::parse(uri).await.map_err(|e| e.to_string())?;
    if let Ok(u) = spec.get_document("uriOptions") {
        for (k, v) in u {
            match k.as_str() {
                "retryReads" => opts.retry_reads = v.as_bool(),
                "retryWrites" => opts.retry_writes = v.as_bool(),
                "appname" | "appName" => opts.app_name = v.as_str().map(String::from),
                "heartbeatFrequencyMS" => {
                    opts.heartbeat_freq =
                        crate::bsonutil::as_i64(v).map(|m| Duration::from_millis(m as u64))
                }
                _ => {}
            }
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    opts.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        let e = match ev {
            CommandEvent::Started(s) => Ev {
                kind: "commandStartedEvent",
                name: s.command_name,
                db: s.db,
                body: s.command,
            },
            CommandEvent::Succeeded(s) => Ev {
                kind: "commandSucceededEvent",
                name: s.command_name,
                db: String::new(),
                body: s.reply,
            },
            CommandEvent::Failed(f) => Ev {
                kind: "commandFailedEvent",
                name: f.command_name,
                db: String::new(),
                body: doc! {"error": f.failure.to_string()},
            },
            _ => return,
        };
        if let Ok(mut v) = ev2.lock() {
            v.push(e);
        }
    }));
    let observe: Vec<String> = spec
        .get_array("observeEvents")
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let ignore: Vec<String> = spec
        .get_array("ignoreCommandMonitoringEvents")
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let client = Client::with_options(opts).map_err(|e| e.to_string())?;
    Ok((ClientEnt { client, events }, observe, ignore))
}

async fn run_test(
    uri: &str,
    internal: &Client,
    file: &Document,
    t: &Document,
) -> Result<(), String> {
    // initialData: drop and recreate each collection.
    for d in file.get_array("initialData").cloned().unwrap_or_default() {
        let d = d.as_document().cloned().unwrap_or_default();
        let db = internal.database(d.get_str("databaseName").unwrap_or("test"));
        let cname = d.get_str("collectionName").unwrap_or("test");
        let coll = db.collection::<Document>(cname);
        coll.drop()
            .await
            .map_err(|e| format!("initialData drop: {e}"))?;
        let docs: Vec<Document> = d
            .get_array("documents")
            .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
            .unwrap_or_default();
        let mut create = doc! {"create": cname};
        if let Ok(o) = d.get_document("createOptions") {
            create.extend(o.clone());
        }
        db.run_command(create)
            .await
            .map_err(|e| format!("initialData create: {e}"))?;
        if !docs.is_empty() {
            coll.insert_many(docs)
                .await
                .map_err(|e| format!("initialData insert: {e}"))?;
        }
    }
    let mut ctx = Ctx {
        ents: HashMap::new(),
        values: HashMap::new(),
        uri: uri.to_string(),
        observe: HashMap::new(),
    };
    for e in file
        .get_array("createEntities")
        .cloned()
        .unwrap_or_default()
    {
        create_entity(&mut ctx, e.as_document().cloned().unwrap_or_default()).await?;
    }
    for (i, op) in t
        .get_array("operations")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let op = op.as_document().cloned().unwrap_or_default();
        run_op(&mut ctx, &op)
            .await
            .map_err(|e| format!("operation {i} ({}): {e}", op.get_str("name").unwrap_or("?")))?;
    }
    if let Ok(expect) = t.get_array("expectEvents") {
        for ee in expect {
            let ee = ee.as_document().cloned().unwrap_or_default();
            check_events(&ctx, &ee)?;
        }
    }
    for o in t.get_array("outcome").cloned().unwrap_or_default() {
        let o = o.as_document().cloned().unwrap_or_default();
        let coll = internal
            .database(o.get_str("databaseName").unwrap_or(""))
            .collection::<Document>(o.get_str("collectionName").unwrap_or(""));
        let actual: Vec<Document> = coll
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .map_err(|e| e.to_string())?
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        let expected = Bson::Array(o.get_array("documents").cloned().unwrap_or_default());
        let actual = Bson::Array(actual.into_iter().map(Bson::Document).collect());
        matcher::matches(&expected, Some(&actual), false, &ctx.values, "outcome")
            .map_err(|e| format!("outcome mismatch: {e}"))?;
    }
    Ok(())
}

async fn create_entity(ctx: &mut Ctx, e: Document) -> Result<(), String> {
    let (kind, spec) = e
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.as_document().cloned().unwrap_or_default()))
        .ok_or("empty entity")?;
    let id = spec
        .get_str("id")
        .map_err(|_| "entity without id")?
        .to_string();
    match kind.as_str() {
        "client" => {
            let (c, observe, ignore) = make_client(&ctx.uri, &spec).await?;
            ctx.observe.insert(id.clone(), (observe, ignore));
            ctx.ents.insert(id, Entity::Client(c));
        }
        "database" => {
            let client = spec.get_str("client").unwrap_or("");
            let Some(Entity::Client(c)) = ctx.ents.get(client) else {
                return Err(format!("no client {client}"));
            };
            let name = spec.get_str("databaseName").unwrap_or("test");
            let db = match spec.get_document("databaseOptions") {
                Ok(o) => {
                    let o: mongodb::options::DatabaseOptions = bson::from_document(o.clone())
                        .map_err(|e| format!("databaseOptions: {e}"))?;
                    c.client.database_with_options(name, o)
                }
                Err(_) => c.client.database(name),
            };
            ctx.ents.insert(id, Entity::Database(db));
        }
        "collection" => {
            let dbid = spec.get_str("database").unwrap_or("");
            let Some(Entity::Database(db)) = ctx.ents.get(dbid) else {
                return Err(format!("no database {dbid}"));
            };
            let name = spec.get_str("collectionName").unwrap_or("test");
            let coll = match spec.get_document("collectionOptions") {
                Ok(o) => {
                    let o: mongodb::options::CollectionOptions = bson::from_document(o.clone())
                        .map_err(|e| format!("collectionOptions: {e}"))?;
                    db.collection_with_options::<Document>(name, o)
                }
                Err(_) => db.collection::<Document>(name),
            };
            ctx.ents.insert(id, Entity::Collection(coll));
        }
        other => return Err(format!("entity type {other} not supported")),
    }
    Ok(())
}

fn check_events(ctx: &Ctx, ee: &Document) -> Result<(), String> {
    let cid = ee.get_str("client").unwrap_or("");
    let Some(Entity::Client(c)) = ctx.ents.get(cid) else {
        return Err(format!("expectEvents: no client {cid}"));
    };
    let (observe, ignore) = ctx.observe.get(cid).cloned().unwrap_or_default();
    let sensitive = [
        "hello",
        "isMaster",
        "ismaster",
        "saslStart",
        "saslContinue",
        "getnonce",
        "authenticate",
        "createUser",
        "updateUser",
        "copydbgetnonce",
        "copydbsaslstart",
        "copydb",
    ];
    let actual: Vec<Ev> = c
        .events
        .lock()
        .map_err(|_| "event lock poisoned")?
        .iter()
        .filter(|e| observe.iter().any(|o| o == e.kind))
        .filter(|e| {
            !ignore.contains(&e.name)
                && !sensitive.contains(&e.name.as_str())
                && e.name != "configureFailPoint"
        })
        .cloned()
        .collect();
    let expected = ee.get_array("events").cloned().unwrap_or_default();
    let ignore_extra = ee.get_bool("ignoreExtraEvents").unwrap_or(false);
    if actual.len() < expected.len() || (!ignore_extra && actual.len() != expected.len()) {
        let names: Vec<String> = actual
            .iter()
            .map(|e| format!("{}:{}", e.kind, e.name))
            .collect();
        return Err(format!(
            "expected {} events, got {}: {:?}",
            expected.len(),
            actual.len(),
            names
        ));
    }
    for (i, (exp, act)) in expected.iter().zip(actual.iter()).enumerate() {
        let exp = exp.as_document().cloned().unwrap_or_default();
        let (kind, body) = exp
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.as_document().cloned().unwrap_or_default()))
            .ok_or("bad event")?;
        if kind != act.kind {
            return Err(format!(
                "event {i}: expected {kind}, got {}:{}",
                act.kind, act.name
            ));
        }
        if let Ok(n) = body.get_str("commandName") {
            if n != act.name {
                return Err(format!("event {i}: expected command {n}, got {}", act.name));
            }
        }
        if let Ok(n) = body.get_str("databaseName") {
            if kind == "commandStartedEvent" && n != act.db {
                return Err(format!("event {i}: expected database {n}, got {}", act.db));
            }
        }
        let field = if kind == "commandStartedEvent" {
            "command"
        } else {
            "reply"
        };
        if let Ok(cmd) = body.get_document(field) {
            matcher::match_doc(
                cmd,
                &act.body,
                true,
                &ctx.values,
                &format!("event {i} {field}"),
            )?;
        }
    }
    Ok(())
}

fn args_of(op: &Document) -> Document {
    op.get_document("arguments").cloned().unwrap_or_default()
}

/// Deserialize driver options from the arguments minus positional keys.
fn opts<T: serde::de::DeserializeOwned + Default>(
    args: &Document,
    positional: &[&str],
) -> Result<T, OpError> {
    let mut d = args.clone();
    for k in positional {
        d.remove(*k);
    }
    if d.is_empty() {
        return Ok(T::default());
    }
    bson::from_document(d).map_err(|e| OpError::Client(format!("options: {e}")))
}

fn coll_of<'a>(ctx: &'a Ctx, id: &str) -> Result<&'a Collection<Document>, OpError> {
    match ctx.ents.get(id) {
        Some(Entity::Collection(c)) => Ok(c),
        _ => Err(OpError::Client(format!("{id} is not a collection"))),
    }
}

fn db_of<'a>(ctx: &'a Ctx, id: &str) -> Result<&'a Database, OpError> {
    match ctx.ents.get(id) {
        Some(Entity::Database(d)) => Ok(d),
        _ => Err(OpError::Client(format!("{id} is not a database"))),
    }
}

fn client_of<'a>(ctx: &'a Ctx, id: &str) -> Result<&'a Client, OpError> {
    match ctx.ents.get(id) {
        Some(Entity::Client(c)) => Ok(&c.client),
        _ => Err(OpError::Client(format!("{id} is not a client"))),
    }
}

fn doc_arg(args: &Document, k: &str) -> Result<Document, OpError> {
    args.get_document(k)
        .cloned()
        .map_err(|_| OpError::Client(format!("missing argument {k}")))
}

fn pipeline_arg(args: &Document) -> Vec<Document> {
    args.get_array("pipeline")
        .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
        .unwrap_or_default()
}

fn update_arg(args: &Document) -> Result<mongodb::options::UpdateModifications, OpError> {
    match args.get("update") {
        Some(Bson::Document(d)) => Ok(mongodb::options::UpdateModifications::Document(d.clone())),
        Some(Bson::Array(a)) => Ok(mongodb::options::UpdateModifications::Pipeline(
            a.iter().filter_map(|x| x.as_document().cloned()).collect(),
        )),
        _ => Err(OpError::Client("missing update".into())),
    }
}

fn u64b(n: u64) -> Bson {
    Bson::Int64(n as i64)
}

async fn run_op(ctx: &mut Ctx, op: &Document) -> Result<(), String> {
    let name = op.get_str("name").unwrap_or("");
    let res = tokio::time::timeout(Duration::from_secs(15), exec(ctx, op))
        .await
        .unwrap_or_else(|_| Err(OpError::Client(format!("{name} timed out"))));
    if op.get_bool("ignoreResultAndError").unwrap_or(false) {
        return Ok(());
    }
    match (res, op.get_document("expectError")) {
        (Ok(v), Err(_)) => {
            if let Some(exp) = op.get("expectResult") {
                match (exp, v.as_ref()) {
                    // Documents in a result array are root-level documents too.
                    (Bson::Array(ea), Some(Bson::Array(aa))) if ea.len() == aa.len() => {
                        for (i, (e, a)) in ea.iter().zip(aa.iter()).enumerate() {
                            let root = matches!(e, Bson::Document(_));
                            matcher::matches(
                                e,
                                Some(a),
                                root,
                                &ctx.values,
                                &format!("result.{i}"),
                            )?;
                        }
                    }
                    _ => {
                        let root = matches!(exp, Bson::Document(_));
                        matcher::matches(exp, v.as_ref(), root, &ctx.values, "result")?
                    }
                }
            }
            if let (Ok(id), Some(v)) = (op.get_str("saveResultAsEntity"), v) {
                ctx.values.insert(id.to_string(), v.clone());
                ctx.ents.insert(id.to_string(), Entity::Value);
            }
            Ok(())
        }
        (Ok(v), Ok(_)) => Err(format!("expected an error, got result {v:?}")),
        (Err(e), Ok(exp)) => check_error(&e, exp),
        (Err(e), Err(_)) => Err(format!("unexpected error: {e}")),
    }
}

fn error_parts(e: &OpError) -> (bool, Option<i32>, Option<String>, Vec<String>, String) {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e {
        OpError::Client(m) => (true, None, None, vec![], m.clone()),
        OpError::Server(e) => (
            false,
            Some(e.code),
            Some(e.code_name.clone()),
            e.labels.clone(),
            e.msg.clone(),
        ),
        OpError::Driver(d) => {
            let labels: Vec<String> = d.labels().iter().cloned().collect();
            let msg = d.to_string();
            match d.kind.as_ref() {
                ErrorKind::Command(c) => {
                    (false, Some(c.code), Some(c.code_name.clone()), labels, msg)
                }
                ErrorKind::Write(WriteFailure::WriteError(w)) => {
                    (false, Some(w.code), w.code_name.clone(), labels, msg)
                }
                ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
                    (false, Some(w.code), Some(w.code_name.clone()), labels, msg)
                }
                ErrorKind::InsertMany(im) => {
                    let first = im.write_errors.as_ref().and_then(|v| v.first());
                    (
                        false,
                        first.map(|w| w.code),
                        first.and_then(|w| w.code_name.clone()),
                        labels,
                        msg,
                    )
                }
                ErrorKind::BulkWrite(_) => (false, None, None, labels, msg),
                _ => (true, None, None, labels, msg),
            }
        }
    }
}

fn check_error(e: &OpError, exp: &Document) -> Result<(), String> {
    let (client, code, code_name, labels, msg) = error_parts(e);
    if let Ok(b) = exp.get_bool("isClientError") {
        if b != client {
            return Err(format!("isClientError {b} but error was {e}"));
        }
    }
    if let Some(c) = exp.get("errorCode").and_then(crate::bsonutil::as_i64) {
        if code != Some(c as i32) {
            return Err(format!("expected errorCode {c}, got {code:?}: {msg}"));
        }
    }
    if let Ok(n) = exp.get_str("errorCodeName") {
        if code_name.as_deref() != Some(n) {
            return Err(format!("expected errorCodeName {n}, got {code_name:?}"));
        }
    }
    if let Ok(s) = exp.get_str("errorContains") {
        if !msg.to_lowercase().contains(&s.to_lowercase()) {
            return Err(format!("expected error containing '{s}', got '{msg}'"));
        }
    }
    for l in exp
        .get_array("errorLabelsContain")
        .cloned()
        .unwrap_or_default()
    {
        let l = l.as_str().unwrap_or("");
        if !labels.iter().any(|x| x == l) {
            return Err(format!("expected label {l}, got {labels:?}"));
        }
    }
    for l in exp
        .get_array("errorLabelsOmit")
        .cloned()
        .unwrap_or_default()
    {
        let l = l.as_str().unwrap_or("");
        if labels.iter().any(|x| x == l) {
            return Err(format!("label {l} should be absent, got {labels:?}"));
        }
    }
    if let Ok(er) = exp.get_document("errorResponse") {
        let resp: Option<Document> = match e {
            OpError::Driver(d) => d
                .server_response()
                .and_then(|r| Document::try_from(r.clone()).ok()),
            OpError::Server(s) => s.reply.clone(),
            OpError::Client(_) => None,
        };
        let resp = resp.ok_or("errorResponse expected but the error has no server response")?;
        matcher::match_doc(er, &resp, true, &EntityValues::new(), "errorResponse")?;
    }
    if let Some(er) = exp.get("expectResult") {
        let partial = match e {
            OpError::Server(s) if s.partial.is_some() => Bson::Document(s.partial.clone().unwrap_or_default()),
            _ => {
                return Err("expectError.expectResult (partial result) is only available for the runner's bulkWrite".into())
            }
        };
        matcher::matches(
            er,
            Some(&partial),
            true,
            &EntityValues::new(),
            "expectError.expectResult",
        )?;
    }
    if exp.contains_key("writeErrors") || exp.contains_key("writeConcernErrors") {
        return Err("expectError.writeErrors/writeConcernErrors (client bulkWrite) not checked by the runner".into());
    }
    Ok(())
}

async fn exec(ctx: &mut Ctx, op: &Document) -> OpResult {
    let name = op.get_str("name").unwrap_or("");
    let obj = op.get_str("object").unwrap_or("");
    let args = args_of(op);
    use mongodb::options::*;
    match name {
        "failPoint" => {
            let client = client_of(ctx, args.get_str("client").unwrap_or(""))?;
            let fp = doc_arg(&args, "failPoint")?;
            client.database("admin").run_command(fp).await?;
            Ok(None)
        }
        "createChangeStream" => {
            let pipeline = pipeline_arg(&args);
            let o: ChangeStreamOptions = opts(&args, &["pipeline"])?;
            let cs: ChangeStream<Document> = match ctx.ents.get(obj) {
                Some(Entity::Collection(c)) => c
                    .watch()
                    .pipeline(pipeline)
                    .with_options(o)
                    .await?
                    .with_type::<Document>(),
                Some(Entity::Database(d)) => d
                    .watch()
                    .pipeline(pipeline)
                    .with_options(o)
                    .await?
                    .with_type::<Document>(),
                Some(Entity::Client(c)) => c
                    .client
                    .watch()
                    .pipeline(pipeline)
                    .with_options(o)
                    .await?
                    .with_type::<Document>(),
                _ => return Err(OpError::Client(format!("cannot watch {obj}"))),
            };
            if let Ok(id) = op.get_str("saveResultAsEntity") {
                ctx.ents
                    .insert(id.to_string(), Entity::Stream(Box::new(cs)));
            }
            Ok(None)
        }
        "iterateUntilDocumentOrError" | "iterateOnce" => {
            let Some(Entity::Stream(cs)) = ctx.ents.get_mut(obj) else {
                return Err(OpError::Client(format!("{obj} is not a change stream")));
            };
            if name == "iterateOnce" {
                let r = cs.next_if_any().await?;
                return Ok(r.map(Bson::Document));
            }
            match cs.next().await {
                Some(r) => Ok(Some(Bson::Document(r?))),
                None => Err(OpError::Client("change stream closed".into())),
            }
        }
        "close" => {
            ctx.ents.remove(obj);
            Ok(None)
        }
        "insertOne" => {
            let c = coll_of(ctx, obj)?;
            let o: InsertOneOptions = opts(&args, &["document"])?;
            let r = c
                .insert_one(doc_arg(&args, "document")?)
                .with_options(o)
                .await?;
            Ok(Some(Bson::Document(doc! {"insertedId": r.inserted_id})))
        }
        "insertMany" => {
            let c = coll_of(ctx, obj)?;
            let o: InsertManyOptions = opts(&args, &["documents"])?;
            let docs: Vec<Document> = args
                .get_array("documents")
                .map(|a| a.iter().filter_map(|x| x.as_document().cloned()).collect())
                .unwrap_or_default();
            let r = c.insert_many(docs).with_options(o).await?;
            let mut ids = Document::new();
            let mut keys: Vec<_> = r.inserted_ids.into_iter().collect();
            keys.sort_by_key(|(k, _)| *k);
            for (k, v) in keys {
                ids.insert(k.to_string(), v);
            }
            Ok(Some(Bson::Document(doc! {"insertedIds": ids})))
        }
        "updateOne" | "updateMany" | "replaceOne" => {
            let c = coll_of(ctx, obj)?;
            let filter = doc_arg(&args, "filter")?;
            let r = if name == "replaceOne" {
                let o: ReplaceOptions = opts(&args, &["filter", "replacement"])?;
                c.replace_one(filter, doc_arg(&args, "replacement")?)
                    .with_options(o)
                    .await?
            } else {
                let o: UpdateOptions = opts(&args, &["filter", "update"])?;
                let u = update_arg(&args)?;
                if name == "updateOne" {
                    c.update_one(filter, u).with_options(o).await?
                } else {
                    c.update_many(filter, u).with_options(o).await?
                }
            };
            let mut d = doc! {"matchedCount": u64b(r.matched_count), "modifiedCount": u64b(r.modified_count), "upsertedCount": if r.upserted_id.is_some() {1} else {0}};
            if let Some(id) = r.upserted_id {
                d.insert("upsertedId", id);
            }
            Ok(Some(Bson::Document(d)))
        }
        "deleteOne" | "deleteMany" => {
            let c = coll_of(ctx, obj)?;
            let o: DeleteOptions = opts(&args, &["filter"])?;
            let f = doc_arg(&args, "filter")?;
            let r = if name == "deleteOne" {
                c.delete_one(f).with_options(o).await?
            } else {
                c.delete_many(f).with_options(o).await?
            };
            Ok(Some(Bson::Document(
                doc! {"deletedCount": u64b(r.deleted_count)},
            )))
        }
        "find" => {
            let c = coll_of(ctx, obj)?;
            let o: FindOptions = opts(&args, &["filter"])?;
            let f = args.get_document("filter").cloned().unwrap_or_default();
            let docs: Vec<Document> = c.find(f).with_options(o).await?.try_collect().await?;
            Ok(Some(Bson::Array(
                docs.into_iter().map(Bson::Document).collect(),
            )))
        }
        "findOne" => {
            let c = coll_of(ctx, obj)?;
            let o: FindOneOptions = opts(&args, &["filter"])?;
            let f = args.get_document("filter").cloned().unwrap_or_default();
            Ok(Some(
                c.find_one(f)
                    .with_options(o)
                    .await?
                    .map(Bson::Document)
                    .unwrap_or(Bson::Null),
            ))
        }
        "aggregate" => {
            let o: AggregateOptions = opts(&args, &["pipeline"])?;
            let p = pipeline_arg(&args);
            let cur = match ctx.ents.get(obj) {
                Some(Entity::Collection(c)) => c.aggregate(p).with_options(o).await?,
                Some(Entity::Database(d)) => d.aggregate(p).with_options(o).await?,
                _ => return Err(OpError::Client(format!("cannot aggregate on {obj}"))),
            };
            let docs: Vec<Document> = cur.try_collect().await?;
            Ok(Some(Bson::Array(
                docs.into_iter().map(Bson::Document).collect(),
            )))
        }
        "countDocuments" => {
            let c = coll_of(ctx, obj)?;
            let o: CountOptions = opts(&args, &["filter"])?;
            let n = c
                .count_documents(args.get_document("filter").cloned().unwrap_or_default())
                .with_options(o)
                .await?;
            Ok(Some(u64b(n)))
        }
        "estimatedDocumentCount" => {
            let c = coll_of(ctx, obj)?;
            let o: EstimatedDocumentCountOptions = opts(&args, &[])?;
            Ok(Some(u64b(
                c.estimated_document_count().with_options(o).await?,
            )))
        }
        "distinct" => {
            let c = coll_of(ctx, obj)?;
            let o: DistinctOptions = opts(&args, &["fieldName", "filter"])?;
            let v = c
                .distinct(
                    args.get_str("fieldName").unwrap_or(""),
                    args.get_document("filter").cloned().unwrap_or_default(),
                )
                .with_options(o)
                .await?;
            Ok(Some(Bson::Array(v)))
        }
        "findOneAndUpdate" | "findOneAndReplace" | "findOneAndDelete" => {
            let c = coll_of(ctx, obj)?;
            let f = doc_arg(&args, "filter")?;
            let mut a = args.clone();
            if let Some(Bson::String(s)) = a.get("returnDocument") {
                let norm = if s.eq_ignore_ascii_case("after") {
                    "after"
                } else {
                    "before"
                };
                a.insert("returnDocument", norm);
            }
            let r = match name {
                "findOneAndUpdate" => {
                    let o: FindOneAndUpdateOptions = opts(&a, &["filter", "update"])?;
                    c.find_one_and_update(f, update_arg(&args)?)
                        .with_options(o)
                        .await?
                }
                "findOneAndReplace" => {
                    let o: FindOneAndReplaceOptions = opts(&a, &["filter", "replacement"])?;
                    c.find_one_and_replace(f, doc_arg(&args, "replacement")?)
                        .with_options(o)
                        .await?
                }
                _ => {
                    let o: FindOneAndDeleteOptions = opts(&a, &["filter"])?;
                    c.find_one_and_delete(f).with_options(o).await?
                }
            };
            Ok(Some(r.map(Bson::Document).unwrap_or(Bson::Null)))
        }
        "createCollection" => {
            let d = db_of(ctx, obj)?;
            let o: CreateCollectionOptions = opts(&args, &["collection"])?;
            d.create_collection(args.get_str("collection").unwrap_or(""))
                .with_options(o)
                .await?;
            Ok(None)
        }
        "dropCollection" => {
            let d = db_of(ctx, obj)?;
            d.collection::<Document>(args.get_str("collection").unwrap_or(""))
                .drop()
                .await?;
            Ok(None)
        }
        "modifyCollection" => {
            let d = db_of(ctx, obj)?;
            let mut cmd = doc! {"collMod": args.get_str("collection").unwrap_or("")};
            for (k, v) in &args {
                if k != "collection" {
                    cmd.insert(k, v.clone());
                }
            }
            d.run_command(cmd).await?;
            Ok(None)
        }
        "runCommand" => {
            let d = db_of(ctx, obj)?;
            let r = d.run_command(doc_arg(&args, "command")?).await?;
            Ok(Some(Bson::Document(r)))
        }
        "createIndex" => {
            let c = coll_of(ctx, obj)?;
            let mut io = IndexOptions::default();
            io.name = args.get_str("name").ok().map(String::from);
            io.unique = args.get_bool("unique").ok();
            let model = mongodb::IndexModel::builder()
                .keys(doc_arg(&args, "keys")?)
                .options(io)
                .build();
            let r = c.create_index(model).await?;
            Ok(Some(Bson::String(r.index_name)))
        }
        "dropIndex" => {
            let c = coll_of(ctx, obj)?;
            c.drop_index(args.get_str("name").unwrap_or("")).await?;
            Ok(None)
        }
        "listCollections" | "listDatabases" | "listIndexes" => {
            let docs: Vec<Document> = match (name, ctx.ents.get(obj)) {
                ("listCollections", Some(Entity::Database(d))) => d
                    .list_collections()
                    .await?
                    .try_collect::<Vec<_>>()
                    .await?
                    .into_iter()
                    .map(|s| bson::to_document(&s).unwrap_or_default())
                    .collect(),
                ("listIndexes", Some(Entity::Collection(c))) => c
                    .list_indexes()
                    .await?
                    .try_collect::<Vec<_>>()
                    .await?
                    .into_iter()
                    .map(|s| bson::to_document(&s).unwrap_or_default())
                    .collect(),
                ("listDatabases", Some(Entity::Client(c))) => c
                    .client
                    .list_databases()
                    .await?
                    .into_iter()
                    .map(|s| bson::to_document(&s).unwrap_or_default())
                    .collect(),
                _ => return Err(OpError::Client(format!("{name} not valid on {obj}"))),
            };
            Ok(Some(Bson::Array(
                docs.into_iter().map(Bson::Document).collect(),
            )))
        }
        "assertCollectionExists" | "assertCollectionNotExists" => {
            let client = Client::with_uri_str(&ctx.uri).await?;
            let names = client
                .database(args.get_str("databaseName").unwrap_or(""))
                .list_collection_names()
                .await?;
            let exists = names
                .iter()
                .any(|n| n == args.get_str("collectionName").unwrap_or(""));
            if exists != (name == "assertCollectionExists") {
                return Err(OpError::Client(format!("{name} failed")));
            }
            Ok(None)
        }
        "rename" => {
            let c = coll_of(ctx, obj)?;
            let ns = c.namespace();
            let client = match ctx.ents.values().find_map(|e| {
                if let Entity::Client(c) = e {
                    Some(c.client.clone())
                } else {
                    None
                }
            }) {
                Some(c) => c,
                None => return Err(OpError::Client("no client".into())),
            };
            let to = args.get_str("to").unwrap_or("");
            let mut cmd = doc! {"renameCollection": format!("{}.{}", ns.db, ns.coll), "to": format!("{}.{to}", ns.db)};
            if let Ok(b) = args.get_bool("dropTarget") {
                cmd.insert("dropTarget", b);
            }
            client.database("admin").run_command(cmd).await?;
            Ok(None)
        }
        "bulkWrite" => bulk_write(ctx, obj, &args).await,
        "count" => {
            // The Rust driver has no deprecated count helper; send the
            // command the way drivers that do have one send it.
            let c = coll_of(ctx, obj)?;
            let ns = c.namespace();
            let mut cmd = doc! {"count": ns.coll.clone(), "query": args.get_document("filter").cloned().unwrap_or_default()};
            for k in ["skip", "limit", "collation", "hint", "comment", "maxTimeMS"] {
                if let Some(v) = args.get(k) {
                    cmd.insert(k, v.clone());
                }
            }
            let db = ctx
                .ents
                .values()
                .find_map(|e| match e {
                    Entity::Database(d) if d.name() == ns.db => Some(d.clone()),
                    _ => None,
                })
                .ok_or_else(|| OpError::Client("no database entity".into()))?;
            let r = db.run_command(cmd).await?;
            Ok(Some(r.get("n").cloned().unwrap_or(Bson::Int32(0))))
        }
        other => Err(OpError::Client(format!(
            "operation {other} not implemented"
        ))),
    }
}

/// Collection bulkWrite, emulated like a driver: consecutive requests of the
/// same kind become one insert/update/delete command.
async fn bulk_write(ctx: &Ctx, obj: &str, args: &Document) -> OpResult {
    let c = coll_of(ctx, obj)?;
    let ns = c.namespace();
    let db = match ctx.ents.values().find_map(|e| {
        if let Entity::Database(d) = e {
            (d.name() == ns.db).then(|| d.clone())
        } else {
            None
        }
    }) {
        Some(d) => d,
        None => return Err(OpError::Client("no database entity".into())),
    };
    let ordered = args.get_bool("ordered").unwrap_or(true);
    let reqs = args.get_array("requests").cloned().unwrap_or_default();
    // (kind, global index, statement)
    let mut stmts: Vec<(&'static str, usize, Document)> = Vec::new();
    let mut inserted_ids = Document::new();
    for (i, r) in reqs.iter().enumerate() {
        let r = r.as_document().cloned().unwrap_or_default();
        let (k, a) = r
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.as_document().cloned().unwrap_or_default()))
            .ok_or_else(|| OpError::Client("bad request".into()))?;
        let stmt = match k.as_str() {
            "insertOne" => {
                let mut d = a.get_document("document").cloned().unwrap_or_default();
                if !d.contains_key("_id") {
                    let mut nd = doc! {"_id": bson::oid::ObjectId::new()};
                    nd.extend(d);
                    d = nd;
                }
                inserted_ids.insert(i.to_string(), d.get("_id").cloned().unwrap_or(Bson::Null));
                ("insert", d)
            }
            "updateOne" | "updateMany" | "replaceOne" => {
                let u = if k == "replaceOne" {
                    a.get("replacement").cloned()
                } else {
                    a.get("update").cloned()
                }
                .unwrap_or(Bson::Null);
                match (&u, k.as_str()) {
                    (Bson::Document(d), "replaceOne")
                        if d.keys().next().is_some_and(|x| x.starts_with('$')) =>
                    {
                        return Err(OpError::Client(
                            "replacement document must not contain update operators".into(),
                        ))
                    }
                    (Bson::Document(d), "updateOne" | "updateMany")
                        if !d.keys().next().is_some_and(|x| x.starts_with('$')) =>
                    {
                        return Err(OpError::Client(
                            "update document must contain only update operators".into(),
                        ))
                    }
                    _ => {}
                }
                let mut s =
                    doc! {"q": a.get_document("filter").cloned().unwrap_or_default(), "u": u};
                if k == "updateMany" {
                    s.insert("multi", true);
                }
                for opt in ["upsert", "arrayFilters", "hint", "collation", "sort"] {
                    if let Some(v) = a.get(opt) {
                        s.insert(opt, v.clone());
                    }
                }
                ("update", s)
            }
            "deleteOne" | "deleteMany" => {
                let mut s = doc! {"q": a.get_document("filter").cloned().unwrap_or_default(), "limit": if k == "deleteOne" {1} else {0}};
                for opt in ["hint", "collation"] {
                    if let Some(v) = a.get(opt) {
                        s.insert(opt, v.clone());
                    }
                }
                ("delete", s)
            }
            other => return Err(OpError::Client(format!("unknown bulk request {other}"))),
        };
        stmts.push((stmt.0, i, stmt.1));
    }
    if stmts.is_empty() {
        return Err(OpError::Client(
            "bulkWrite requires at least one request".into(),
        ));
    }
    let mut batches: Vec<(&'static str, Vec<(usize, Document)>)> = Vec::new();
    if ordered {
        for (k, i, s) in stmts {
            match batches.last_mut() {
                Some((bk, v)) if *bk == k => v.push((i, s)),
                _ => batches.push((k, vec![(i, s)])),
            }
        }
    } else {
        for kind in ["insert", "update", "delete"] {
            let v: Vec<(usize, Document)> = stmts
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, i, s)| (*i, s.clone()))
                .collect();
            if !v.is_empty() {
                batches.push((kind, v));
            }
        }
    }
    let (mut ins, mut matched, mut modified, mut deleted) = (0i64, 0i64, 0i64, 0i64);
    let mut upserted = Document::new();
    let mut write_errors = Vec::new();
    let mut last_reply: Option<Document> = None;
    for (kind, items) in batches {
        let field = match kind {
            "insert" => "documents",
            "update" => "updates",
            _ => "deletes",
        };
        let mut cmd = doc! {kind: ns.coll.clone(), field: items.iter().map(|(_, s)| Bson::Document(s.clone())).collect::<Vec<_>>(), "ordered": ordered};
        if let Some(wc) = c.write_concern() {
            if let Ok(w) = bson::to_document(wc) {
                cmd.insert("writeConcern", w);
            }
        }
        for opt in ["bypassDocumentValidation", "comment", "let"] {
            if let Some(v) = args.get(opt) {
                if !(kind == "insert" && opt == "let") {
                    cmd.insert(opt, v.clone());
                }
            }
        }
        let reply = db.run_command(cmd).await?;
        last_reply = Some(reply.clone());
        let n = crate::bsonutil::as_i64(reply.get("n").unwrap_or(&Bson::Int32(0))).unwrap_or(0);
        let mut nup = 0;
        if let Ok(ups) = reply.get_array("upserted") {
            for u in ups {
                if let Some(u) = u.as_document() {
                    let li = u
                        .get("index")
                        .and_then(crate::bsonutil::as_i64)
                        .unwrap_or(0) as usize;
                    if let Some((gi, _)) = items.get(li) {
                        upserted
                            .insert(gi.to_string(), u.get("_id").cloned().unwrap_or(Bson::Null));
                    }
                    nup += 1;
                }
            }
        }
        match kind {
            "insert" => ins += n,
            "update" => {
                matched += n - nup;
                modified += reply
                    .get("nModified")
                    .and_then(crate::bsonutil::as_i64)
                    .unwrap_or(0);
            }
            _ => deleted += n,
        }
        if let Ok(we) = reply.get_array("writeErrors") {
            for w in we {
                if let Some(w) = w.as_document() {
                    let li = w
                        .get("index")
                        .and_then(crate::bsonutil::as_i64)
                        .unwrap_or(0) as usize;
                    let mut w = w.clone();
                    w.insert("index", items.get(li).map(|(g, _)| *g as i32).unwrap_or(0));
                    write_errors.push(w);
                }
            }
            if ordered && !write_errors.is_empty() {
                break;
            }
        }
    }
    let nup = upserted.len() as i64;
    let result = doc! {
        "deletedCount": deleted, "insertedCount": ins, "insertedIds": inserted_ids, "matchedCount": matched,
        "modifiedCount": modified, "upsertedCount": nup, "upsertedIds": upserted,
    };
    if let Some(first) = write_errors.first() {
        return Err(OpError::Server(Box::new(ServerError {
            code: first
                .get("code")
                .and_then(crate::bsonutil::as_i64)
                .unwrap_or(0) as i32,
            code_name: first.get_str("codeName").unwrap_or("").to_string(),
            msg: first.get_str("errmsg").unwrap_or("").to_string(),
            labels: vec![],
            partial: Some(result),
            reply: last_reply,
        })));
    }
    Ok(Some(Bson::Document(result)))
}
