//! TCP server: accept loop, per-connection tasks, fail-point handling,
//! `hello`, awaiting getMores and the reply envelope ($clusterTime etc.).

use crate::changestream::Oplog;
use crate::commands::{self, ConnCtx};
use crate::error::{CmdError, Error, Result};
use crate::state::State;
use crate::wire::{self, Request};
use bson::{doc, Bson, Document};
use std::future::Future;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Server options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port to bind on 127.0.0.1 (0 = any free port).
    pub port: u16,
    pub bind: String,
    pub repl_set: String,
    pub oplog_max_events: Option<usize>,
    pub oplog_max_bytes: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            bind: "127.0.0.1".into(),
            repl_set: "rs0".into(),
            oplog_max_events: None,
            oplog_max_bytes: None,
        }
    }
}

pub struct Shared {
    state: Mutex<State>,
    pub opts: Options,
    pub me: String,
    pub process_id: bson::oid::ObjectId,
    pub cancel: CancellationToken,
    /// Bumped by `simDropConnections`: every connection task closes.
    pub drop_gen: watch::Sender<u64>,
    /// Topology version counter; awaitable hellos and waiting getMores watch it.
    pub topology: watch::Sender<i64>,
    pub oplog_seq: watch::Receiver<u64>,
    next_conn: AtomicI64,
    next_req: AtomicI32,
    pub started: std::time::Instant,
}

impl Shared {
    /// Lock the state. A poisoned lock means a command panicked mid-update;
    /// the simulator keeps serving with whatever state is there.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn next_request_id(&self) -> i32 {
        self.next_req.fetch_add(1, Ordering::Relaxed)
    }
}

/// Spawn a named task that stops when `cancel` fires. The name is attached
/// as a tracing span (tokio's task Builder is unstable).
pub fn spawn_named<F>(name: &str, cancel: CancellationToken, fut: F) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let span = tracing::debug_span!("task", name = %name);
    tracing::debug!(parent: &span, "spawn");
    tokio::spawn(
        async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = fut => {}
            }
        }
        .instrument(span),
    )
}

pub struct Server;

/// Handle to a running simulator.
pub struct ServerHandle {
    port: u16,
    uri: String,
    shared: Arc<Shared>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `mongodb://127.0.0.1:PORT/?replicaSet=rs0`
    pub fn uri(&self) -> String {
        self.uri.clone()
    }
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    /// Stop accepting, close all connections and wait for the accept loop.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        if let Some(a) = self.accept.take() {
            let _ = a.await;
        }
    }
}

/// Dropping the handle without `shutdown` still stops every task.
impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl Server {
    pub async fn start(opts: Options) -> Result<ServerHandle> {
        let listener = TcpListener::bind((opts.bind.as_str(), opts.port)).await?;
        let port = listener.local_addr()?.port();
        let oplog = Oplog::new(opts.oplog_max_events, opts.oplog_max_bytes);
        let oplog_seq = oplog.notify.subscribe();
        let state = State::new(oplog);
        let me = format!("127.0.0.1:{port}");
        let uri = format!("mongodb://{me}/?replicaSet={}", opts.repl_set);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            opts,
            me,
            process_id: bson::oid::ObjectId::new(),
            cancel: CancellationToken::new(),
            drop_gen: watch::channel(0).0,
            topology: watch::channel(0).0,
            oplog_seq,
            next_conn: AtomicI64::new(1),
            next_req: AtomicI32::new(1),
            started: std::time::Instant::now(),
        });
        let sh = shared.clone();
        let accept = spawn_named("accept", shared.cancel.clone(), async move {
            loop {
                match listener.accept().await {
                    Ok((sock, _)) => {
                        let _ = sock.set_nodelay(true);
                        let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
                        let s2 = sh.clone();
                        spawn_named(&format!("conn-{id}"), sh.cancel.clone(), async move {
                            if let Err(e) = serve_conn(s2, sock, id).await {
                                tracing::debug!("connection {id} closed: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(ServerHandle {
            port,
            uri,
            shared,
            accept: Some(accept),
        })
    }
}

async fn serve_conn(shared: Arc<Shared>, sock: TcpStream, id: i64) -> Result<()> {
    let (rd, wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    let mut ctx = ConnCtx { id, app_name: None };
    let mut drop_rx = shared.drop_gen.subscribe();
    drop_rx.borrow_and_update();
    loop {
        let req = tokio::select! {
            r = wire::read_request(&mut rd) => r?,
            _ = drop_rx.changed() => return Ok(()),
        };
        let Some(req) = req else { return Ok(()) };
        let (req_id, body, legacy, flags) = match req {
            Request::Msg {
                header,
                flags,
                body,
            } => (header.request_id, body, false, flags),
            Request::Query {
                header,
                full_collection,
                query,
            } => {
                let mut q = query;
                if !q.contains_key("$db") {
                    let db = full_collection
                        .split('.')
                        .next()
                        .unwrap_or("admin")
                        .to_string();
                    q.insert("$db", db);
                }
                (header.request_id, q, true, 0)
            }
        };
        let reply = tokio::select! {
            r = handle(&shared, &mut ctx, body) => r,
            _ = drop_rx.changed() => return Ok(()),
        };
        let Some(reply) = reply else {
            // closeConnection fail point: drop the socket without replying.
            return Ok(());
        };
        if flags & wire::FLAG_MORE_TO_COME != 0 {
            continue; // unacknowledged write: no reply expected
        }
        let bytes = if legacy {
            wire::encode_reply(shared.next_request_id(), req_id, &reply)?
        } else {
            wire::encode_msg(shared.next_request_id(), req_id, 0, &reply)?
        };
        wr.write_all(&bytes).await?;
        wr.flush().await?;
    }
}

fn cluster_time(st: &State) -> Document {
    doc! {
        "clusterTime": st.last_ts,
        "signature": {"hash": Bson::Binary(bson::Binary{subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0u8; 20]}), "keyId": 0i64},
    }
}

pub fn hello_doc(shared: &Shared, st: &mut State, ctx: &ConnCtx, legacy_name: bool) -> Document {
    let primary = !st.stepped_down;
    let mut d = doc! {
        "topologyVersion": {"processId": shared.process_id, "counter": st.topology_counter},
        "hosts": [shared.me.clone()],
        "setName": shared.opts.repl_set.clone(),
        "setVersion": 1,
    };
    if legacy_name {
        d.insert("ismaster", primary);
    } else {
        d.insert("isWritablePrimary", primary);
    }
    d.insert("secondary", !primary);
    if primary {
        d.insert("primary", shared.me.clone());
    }
    d.insert("me", shared.me.clone());
    d.insert(
        "electionId",
        bson::oid::ObjectId::from_bytes([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]),
    );
    let op_time = doc! {"ts": st.last_ts, "t": 1i64};
    d.insert(
        "lastWrite",
        doc! {"opTime": op_time.clone(), "lastWriteDate": bson::DateTime::now(), "majorityOpTime": op_time.clone(), "majorityWriteDate": bson::DateTime::now()},
    );
    d.insert("maxBsonObjectSize", 16_777_216);
    d.insert("maxMessageSizeBytes", 48_000_000);
    d.insert("maxWriteBatchSize", 100_000);
    d.insert("localTime", bson::DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", 30);
    d.insert("connectionId", ctx.id as i32);
    d.insert("minWireVersion", 0);
    d.insert("maxWireVersion", 21);
    d.insert("readOnly", false);
    d.insert("ok", 1.0);
    d
}

/// Run one command and build the reply. `None` means close the connection.
async fn handle(shared: &Arc<Shared>, ctx: &mut ConnCtx, cmd: Document) -> Option<Document> {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let db = cmd.get_str("$db").unwrap_or("admin").to_string();
    if matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
        return Some(hello(shared, ctx, &cmd, &name).await);
    }
    // Fail points first, as mongod evaluates failCommand before running.
    let action = {
        let mut st = shared.lock();
        let is_cs_getmore = name == "getMore"
            && cmd
                .get("getMore")
                .and_then(crate::bsonutil::as_i64)
                .is_some_and(|id| {
                    matches!(st.cursors.get(&id), Some(crate::state::Cursor::Change(_)))
                });
        let mut found = None;
        let app = ctx.app_name.clone();
        for (fp_name, fp) in st.fail_points.iter_mut() {
            if let Some(a) = fp.trigger(fp_name, &name, app.as_deref(), is_cs_getmore) {
                found = Some(a);
                break;
            }
        }
        found
    };
    let mut wce = None;
    if let Some(act) = action {
        if let Some(ms) = act.block_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if act.close_connection {
            return None;
        }
        if let Some(e) = act.error {
            let st = shared.lock();
            return Some(finish_reply(&st, e.to_reply()));
        }
        wce = act.write_concern_error;
    }
    let result = if name == "getMore" {
        commands::get_more(shared, &cmd, &db).await
    } else if name == "replSetStepDown" {
        step_down(shared, &cmd)
    } else if name == "simDropConnections" {
        // Bump the generation after replying would be nicer, but connection
        // tasks select on it, so this one closes too: that is documented.
        shared.drop_gen.send_modify(|g| *g += 1);
        Ok(doc! {})
    } else {
        let mut st = shared.lock();
        commands::run(shared, &mut st, ctx, &name, &db, &cmd)
    };
    let st = shared.lock();
    let mut reply = match result {
        Ok(mut d) => {
            if !d.contains_key("ok") {
                d.insert("ok", 1.0);
            }
            d
        }
        Err(e) => e.to_reply(),
    };
    if let Some(w) = wce {
        reply.insert("writeConcernError", w);
    }
    Some(finish_reply(&st, reply))
}

fn finish_reply(st: &State, mut reply: Document) -> Document {
    reply.insert("$clusterTime", cluster_time(st));
    reply.insert("operationTime", st.last_ts);
    reply
}

async fn hello(shared: &Arc<Shared>, ctx: &mut ConnCtx, cmd: &Document, name: &str) -> Document {
    if let Ok(c) = cmd.get_document("client") {
        if let Ok(app) = c
            .get_document("application")
            .and_then(|a| a.get_str("name"))
        {
            ctx.app_name = Some(app.to_string());
        }
    }
    // Awaitable hello: wait for a topology change or maxAwaitTimeMS.
    if let (Ok(tv), Some(wait)) = (
        cmd.get_document("topologyVersion"),
        cmd.get("maxAwaitTimeMS").and_then(crate::bsonutil::as_i64),
    ) {
        let same_process = tv.get_object_id("processId").ok() == Some(shared.process_id);
        let counter = tv.get("counter").and_then(crate::bsonutil::as_i64);
        let mut rx = shared.topology.subscribe();
        let cur = *rx.borrow_and_update();
        if same_process && counter == Some(cur) {
            let _ =
                tokio::time::timeout(Duration::from_millis(wait.max(0) as u64), rx.changed()).await;
        }
    }
    let mut st = shared.lock();
    let d = hello_doc(shared, &mut st, ctx, name != "hello");
    finish_reply(&st, d)
}

/// `replSetStepDown: <secs>`: become secondary for `secs` (fractions allowed,
/// default 1), bumping the topology version on the way down and up.
fn step_down(shared: &Arc<Shared>, cmd: &Document) -> std::result::Result<Document, CmdError> {
    let secs = cmd
        .get("replSetStepDown")
        .and_then(crate::bsonutil::as_f64)
        .unwrap_or(1.0)
        .clamp(0.0, 600.0);
    let counter = {
        let mut st = shared.lock();
        if st.stepped_down {
            return Err(CmdError::new(10107, "not primary so can't step down"));
        }
        st.stepped_down = true;
        st.topology_counter += 1;
        st.topology_counter
    };
    shared.topology.send_replace(counter);
    let sh = shared.clone();
    spawn_named("step-up", shared.cancel.clone(), async move {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let counter = {
            let mut st = sh.lock();
            st.stepped_down = false;
            st.topology_counter += 1;
            st.topology_counter
        };
        sh.topology.send_replace(counter);
    });
    Ok(doc! {})
}

impl From<Error> for CmdError {
    fn from(e: Error) -> Self {
        CmdError::new(1, e.to_string())
    }
}
