//! Runs tests/mongo-sim/python/test_pymongo.py with pytest against the
//! simulator (or MONGODB_URI). Fails with install instructions when pymongo
//! is not importable.

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_suite() {
    let probe = Command::new("python3")
        .args(["-c", "import pymongo, pytest"])
        .output();
    let ok = probe.as_ref().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "pymongo/pytest are not importable by python3: run `pip install -r scripts/requirements-test.txt` ({})",
        probe
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_else(|e| e.to_string())
    );
    let t = common::Target::new().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/test_pymongo.py");
    let uri = t.uri.clone();
    let is_sim = t.sim.is_some();
    // pytest blocks; run it off the runtime so the in-process server keeps serving.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
            .env("MONGODB_URI", &uri)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MONGO_SIM", if is_sim { "1" } else { "0" })
            .output()
    })
    .await
    .expect("join")
    .expect("spawn python3");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    t.shutdown().await;
    assert!(out.status.success(), "pytest failed");
}
