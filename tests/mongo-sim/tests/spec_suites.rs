//! Holds the simulator to MongoDB's unified specification tests: every
//! change-streams test that fits a 7.0 replica set must pass, and at least
//! 200 CRUD tests must pass.

use std::path::Path;

const SPEC_ROOT: &str = "/work/shared/mongodb-spec-tests";

fn spec_dir(name: &str) -> Option<std::path::PathBuf> {
    let root = std::env::var("MONGODB_SPEC_TESTS").unwrap_or_else(|_| SPEC_ROOT.to_string());
    let p = Path::new(&root).join(name);
    if p.is_dir() {
        Some(p)
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_streams_spec_suite() {
    let dir = spec_dir("change-streams").expect("spec tests dir (set MONGODB_SPEC_TESTS)");
    let s = mongo_sim::spec::run_dir(&dir, None, false).await.unwrap();
    println!(
        "change-streams: {} passed, {} failed, {} skipped",
        s.passed, s.failed, s.skipped
    );
    for (t, e) in &s.failures {
        println!("FAILED {t}: {e}");
    }
    assert_eq!(
        s.failed, 0,
        "change-streams spec failures: {:?}",
        s.failures
    );
    assert!(s.passed >= 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_spec_suite() {
    let dir = spec_dir("crud").expect("spec tests dir (set MONGODB_SPEC_TESTS)");
    let s = mongo_sim::spec::run_dir(&dir, None, false).await.unwrap();
    let total = s.passed + s.failed + s.skipped;
    println!(
        "crud: {} passed, {} failed, {} skipped; pass rate {:.1}% of {} ({:.1}% of the {} runnable)",
        s.passed,
        s.failed,
        s.skipped,
        100.0 * s.passed as f64 / total as f64,
        total,
        100.0 * s.passed as f64 / (s.passed + s.failed).max(1) as f64,
        s.passed + s.failed
    );
    assert!(s.passed >= 200, "only {} CRUD spec tests passed", s.passed);
}
