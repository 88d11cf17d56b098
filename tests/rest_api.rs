//! The REST contract (kafka-connect-contract.md §1, checklist §8) against a
//! real distributed worker on the real broker.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

async fn running(w: &TestWorker, name: &str, tasks: usize) {
    eventually(Duration::from_secs(30), || async {
        let (code, body) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        code == 200
            && body["connector"]["state"] == "RUNNING"
            && body["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == tasks && t.iter().all(|t| t["state"] == "RUNNING"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_lifecycle_over_rest() {
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;
    let name = unique("life");
    let topic = unique("t");

    // GET / has exactly version, commit, kafka_cluster_id.
    let (code, info) = w.call("GET", "/", None).await;
    assert_eq!(code, 200);
    let mut keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["commit", "kafka_cluster_id", "version"]);
    assert!(info["kafka_cluster_id"].is_string(), "{info}");

    let (code, health) = w.call("GET", "/health", None).await;
    assert_eq!((code, health["status"].as_str()), (200, Some("healthy")));

    // Create: 201, absolute Location, config.name set, no tasks yet.
    let body = json!({"name": name, "config": verifiable_source(&topic)}).to_string();
    let (code, headers, text) = http_raw(
        &w.base,
        "POST",
        "/connectors",
        Some(&body),
        "application/json",
    )
    .await;
    assert_eq!(code, 201, "{text}");
    let loc = headers.get("location").expect("Location header");
    assert!(
        loc.starts_with("http://") && loc.ends_with(&format!("/connectors/{name}")),
        "{loc}"
    );
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["config"]["name"], name.as_str());
    assert_eq!(created["tasks"], json!([]));
    assert_eq!(created["type"], "source");

    // Duplicate create: 409 with the Java message.
    let (code, err) = w
        .call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": verifiable_source(&topic)})),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        err,
        json!({"error_code": 409, "message": format!("Connector {name} already exists")})
    );

    running(&w, &name, 1).await;
    let (code, st) = w
        .call("GET", &format!("/connectors/{name}/status"), None)
        .await;
    assert_eq!(code, 200);
    assert!(
        st["connector"].get("trace").is_none(),
        "trace is absent when not failed: {st}"
    );
    assert_eq!(st["tasks"][0]["id"], 0);
    assert_eq!(st["type"], "source");

    let (code, list) = w.call("GET", "/connectors", None).await;
    assert_eq!(code, 200);
    assert!(list.as_array().unwrap().contains(&json!(name)));
    let (code, expanded) = w
        .call("GET", "/connectors?expand=status&expand=info", None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(expanded[&name]["info"]["name"], name.as_str());
    assert_eq!(expanded[&name]["status"]["connector"]["state"], "RUNNING");

    let (code, tasks) = w
        .call("GET", &format!("/connectors/{name}/tasks"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": name, "task": 0}));
    assert_eq!(
        tasks[0]["config"]["task.class"],
        "org.apache.kafka.connect.tools.VerifiableSourceTask"
    );
    assert_eq!(tasks[0]["config"]["id"], "0");

    let (code, ts) = w
        .call("GET", &format!("/connectors/{name}/tasks/0/status"), None)
        .await;
    assert_eq!((code, ts["state"].as_str()), (200, Some("RUNNING")));
    let (code, _) = w
        .call("GET", &format!("/connectors/{name}/tasks/7/status"), None)
        .await;
    assert_eq!(code, 404);

    // PUT updates (200), PATCH merges and removes nulls.
    let mut cfg = verifiable_source(&topic);
    cfg["throughput"] = json!("60");
    let (code, updated) = w
        .call("PUT", &format!("/connectors/{name}/config"), Some(&cfg))
        .await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["config"]["throughput"], "60");
    let (code, patched) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/config"),
            Some(&json!({"throughput": "70", "extra.key": "x"})),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["config"]["throughput"], "70");
    assert_eq!(patched["config"]["extra.key"], "x");
    let (code, patched) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/config"),
            Some(&json!({"extra.key": null})),
        )
        .await;
    assert_eq!(code, 200);
    assert!(patched["config"].get("extra.key").is_none());
    let (code, _) = w
        .call("PATCH", "/connectors/nope/config", Some(&json!({"a": "b"})))
        .await;
    assert_eq!(code, 404);

    // PUT with a mismatching name: 400.
    let mut bad = verifiable_source(&topic);
    bad["name"] = json!("other");
    let (code, err) = w
        .call("PUT", &format!("/connectors/{name}/config"), Some(&bad))
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("doesn't match connector name in the URL"),
        "{err}"
    );

    // Pause / resume.
    let (code, _) = w
        .call("PUT", &format!("/connectors/{name}/pause"), None)
        .await;
    assert_eq!(code, 202);
    eventually(Duration::from_secs(20), || async {
        let (_, st) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        st["connector"]["state"] == "PAUSED" && st["tasks"][0]["state"] == "PAUSED"
    })
    .await;
    let (code, _) = w
        .call("PUT", &format!("/connectors/{name}/resume"), None)
        .await;
    assert_eq!(code, 202);
    running(&w, &name, 1).await;

    // Restart: plain 204; includeTasks 202 with RESTARTING.
    let (code, body) = w
        .call("POST", &format!("/connectors/{name}/restart"), None)
        .await;
    assert_eq!((code, body), (204, serde_json::Value::Null));
    let (code, body) = w
        .call(
            "POST",
            &format!("/connectors/{name}/restart?includeTasks=true"),
            None,
        )
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["connector"]["state"], "RESTARTING");
    assert_eq!(body["tasks"][0]["state"], "RESTARTING");
    running(&w, &name, 1).await;
    let (code, _) = w
        .call("POST", &format!("/connectors/{name}/tasks/0/restart"), None)
        .await;
    assert_eq!(code, 204);
    running(&w, &name, 1).await;

    // Offsets: visible while running; altering needs STOPPED.
    eventually(Duration::from_secs(20), || async {
        let (_, o) = w
            .call("GET", &format!("/connectors/{name}/offsets"), None)
            .await;
        o["offsets"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let (_, o) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(o["offsets"][0]["partition"], json!({"id": 0}));
    assert!(o["offsets"][0]["offset"]["seqno"].is_i64());
    let alter = json!({"offsets": [{"partition": {"id": 0}, "offset": {"seqno": 1000}}]});
    let (code, err) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&alter),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("must be in the STOPPED state"),
        "{err}"
    );

    // Stop: 204, STOPPED with no tasks.
    let (code, _) = w
        .call("PUT", &format!("/connectors/{name}/stop"), None)
        .await;
    assert_eq!(code, 204);
    eventually(Duration::from_secs(20), || async {
        let (_, st) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        st["connector"]["state"] == "STOPPED" && st["tasks"] == json!([])
    })
    .await;
    let (code, msg) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&alter),
        )
        .await;
    assert_eq!(code, 200, "{msg}");
    assert!(msg["message"]
        .as_str()
        .unwrap()
        .contains("altered successfully"));
    let (_, o) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(
        o["offsets"],
        json!([{"partition": {"id": 0}, "offset": {"seqno": 1000}}])
    );
    let (code, _) = w
        .call(
            "PATCH",
            &format!("/connectors/{name}/offsets"),
            Some(&json!({"offsets": []})),
        )
        .await;
    assert_eq!(code, 400);

    // Resume from STOPPED continues after the altered offset.
    let (code, _) = w
        .call("PUT", &format!("/connectors/{name}/resume"), None)
        .await;
    assert_eq!(code, 202);
    running(&w, &name, 1).await;
    eventually(Duration::from_secs(20), || async {
        let (_, o) = w
            .call("GET", &format!("/connectors/{name}/offsets"), None)
            .await;
        o["offsets"][0]["offset"]["seqno"]
            .as_i64()
            .is_some_and(|s| s > 1000)
    })
    .await;

    // Stop and reset.
    w.call("PUT", &format!("/connectors/{name}/stop"), None)
        .await;
    eventually(Duration::from_secs(20), || async {
        let (_, st) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        st["connector"]["state"] == "STOPPED"
    })
    .await;
    let (code, msg) = w
        .call("DELETE", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(code, 200, "{msg}");
    assert!(msg["message"]
        .as_str()
        .unwrap()
        .contains("reset successfully"));
    let (_, o) = w
        .call("GET", &format!("/connectors/{name}/offsets"), None)
        .await;
    assert_eq!(o["offsets"], json!([]));

    // Topics tracked while it ran.
    let (code, topics) = w
        .call("GET", &format!("/connectors/{name}/topics"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(topics, json!({name.clone(): {"topics": [topic]}}));
    let (code, _) = w
        .call("PUT", &format!("/connectors/{name}/topics/reset"), None)
        .await;
    assert_eq!(code, 202);

    // Delete: 204, then 404.
    let (code, _) = w.call("DELETE", &format!("/connectors/{name}"), None).await;
    assert_eq!(code, 204);
    let (code, err) = w.call("GET", &format!("/connectors/{name}"), None).await;
    assert_eq!(code, 404);
    assert_eq!(err["message"], format!("Connector {name} not found"));
    let (code, _) = w.call("DELETE", &format!("/connectors/{name}"), None).await;
    assert_eq!(code, 404);

    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_validation_and_bad_requests() {
    let cluster = Cluster::new();
    let w = cluster.start(&[]).await;

    let (code, plugins) = w.call("GET", "/connector-plugins", None).await;
    assert_eq!(code, 200);
    assert!(plugins.as_array().unwrap().iter().any(|p| p["class"]
        == "org.apache.kafka.connect.tools.VerifiableSourceConnector"
        && p["type"] == "source"));
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["type"] == "source" || p["type"] == "sink"));
    let (_, all) = w
        .call("GET", "/connector-plugins?connectorsOnly=false", None)
        .await;
    for kind in [
        "converter",
        "transformation",
        "predicate",
        "header_converter",
    ] {
        assert!(
            all.as_array().unwrap().iter().any(|p| p["type"] == kind),
            "no {kind} in {all}"
        );
    }
    let (code, cfg) = w
        .call(
            "GET",
            "/connector-plugins/VerifiableSourceConnector/config",
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert!(cfg
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["name"] == "tasks.max" && k["default_value"] == "1"));
    let (code, _) = w
        .call("GET", "/connector-plugins/NoSuchPlugin/config", None)
        .await;
    assert_eq!(code, 404);

    // Validate: 200 with errors counted for an invalid config.
    let bad = json!({"connector.class": "org.apache.kafka.connect.tools.VerifiableSourceConnector", "tasks.max": "0",
        "transforms": "r", "transforms.r.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.r.regex": "(.*)", "transforms.r.replacement": "x-$1"});
    let (code, infos) = w
        .call(
            "PUT",
            "/connector-plugins/VerifiableSourceConnector/config/validate",
            Some(&bad),
        )
        .await;
    assert_eq!(code, 200, "{infos}");
    assert_eq!(
        infos["name"],
        "org.apache.kafka.connect.tools.VerifiableSourceConnector"
    );
    assert_eq!(
        infos["error_count"], 2,
        "missing name and tasks.max=0: {infos}"
    );
    let groups = infos["groups"].as_array().unwrap();
    assert!(
        groups.contains(&json!("Common")) && groups.contains(&json!("Transforms: r")),
        "{groups:?}"
    );
    let tm = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "tasks.max")
        .unwrap();
    assert_eq!(
        tm["value"]["errors"][0],
        "Invalid value 0 for configuration tasks.max: Value must be at least 1"
    );
    assert_eq!(tm["definition"]["type"], "INT");
    let (code, err) = w
        .call(
            "PUT",
            "/connector-plugins/VerifiableSourceConnector/config/validate",
            Some(&json!({"a": "b"})),
        )
        .await;
    assert_eq!(code, 400);
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("contains no connector type"));

    // Invalid create: 400 with the Java message prefix; unknown class: 500.
    let (code, err) = w
        .call("POST", "/connectors", Some(&json!({"name": unique("bad"), "config": {"connector.class": "VerifiableSource", "tasks.max": "zero"}})))
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"].as_str().unwrap().starts_with(
            "Connector configuration is invalid and contains the following 1 error(s):"
        ),
        "{err}"
    );
    let (code, err) = w
        .call("POST", "/connectors", Some(&json!({"name": unique("bad"), "config": {"connector.class": "com.example.Missing"}})))
        .await;
    assert_eq!(code, 500);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to find any class that implements Connector"),
        "{err}"
    );

    // Bad HTTP input: malformed JSON 400, unknown path 404, wrong method 405, oversized 413.
    let (code, err) = http(
        &w.base,
        "POST",
        "/connectors",
        Some("{not json"),
        "application/json",
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(err["error_code"], 400);
    let (code, err) = w.call("GET", "/nope", None).await;
    assert_eq!((code, err["error_code"].as_i64()), (404, Some(404)));
    let (code, err) = w.call("DELETE", "/connector-plugins", None).await;
    assert_eq!((code, err["error_code"].as_i64()), (405, Some(405)));
    let huge = format!(
        "{{\"name\":\"x\",\"config\":{{\"a\":\"{}\"}}}}",
        "x".repeat(11 * 1024 * 1024)
    );
    let (code, _, _) = http_raw(
        &w.base,
        "POST",
        "/connectors",
        Some(&huge),
        "application/json",
    )
    .await;
    assert_eq!(code, 413);
    for bad_name in ["", "a/b", "tab\tname", &"n".repeat(300)] {
        let (code, err) = w
            .call("POST", "/connectors", Some(&json!({"name": bad_name, "config": {"connector.class": "VerifiableSource", "topic": "t", "throughput": "1"}})))
            .await;
        assert_eq!(code, 400, "name {bad_name:?}: {err}");
    }
    // Status of an unknown connector.
    let (code, err) = w.call("GET", "/connectors/unknown/status", None).await;
    assert_eq!(code, 404);
    assert_eq!(err["message"], "No status found for connector unknown");

    // Loggers.
    let (code, loggers) = w.call("GET", "/admin/loggers", None).await;
    assert_eq!(code, 200);
    assert!(loggers.get("root").is_some(), "{loggers}");
    let (code, _) = w
        .call(
            "PUT",
            "/admin/loggers/connectd",
            Some(&json!({"level": "NOPE"})),
        )
        .await;
    assert_eq!(code, 404);
    let (code, _) = w
        .call("PUT", "/admin/loggers/connectd", Some(&json!({})))
        .await;
    assert_eq!(code, 400);
    let (code, changed) = w
        .call(
            "PUT",
            "/admin/loggers/connectd",
            Some(&json!({"level": "debug"})),
        )
        .await;
    assert_eq!(code, 200);
    assert!(changed.as_array().unwrap().contains(&json!("connectd")));

    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_state_tasks_config_and_logger_lookup() {
    let cluster = Cluster::new();
    let cluster_config_topic = cluster.config_topic.clone();
    let w = cluster.start(&[]).await;
    let stopped = unique("init-stopped");
    let (code, body) = w
        .call("POST", "/connectors", Some(&json!({"name": stopped, "config": verifiable_source(&unique("t")), "initial_state": "stopped"})))
        .await;
    assert_eq!(code, 201, "{body}");
    eventually(Duration::from_secs(20), || async {
        let (_, st) = w
            .call("GET", &format!("/connectors/{stopped}/status"), None)
            .await;
        st["connector"]["state"] == "STOPPED" && st["tasks"] == json!([])
    })
    .await;
    let paused = unique("init-paused");
    let (code, _) = w
        .call("POST", "/connectors", Some(&json!({"name": paused, "config": verifiable_source(&unique("t")), "initial_state": "PAUSED"})))
        .await;
    assert_eq!(code, 201);
    // A connector created PAUSED is not started, so it has no tasks until resumed.
    eventually(Duration::from_secs(20), || async {
        let (_, st) = w
            .call("GET", &format!("/connectors/{paused}/status"), None)
            .await;
        st["connector"]["state"] == "PAUSED" && st["tasks"] == json!([])
    })
    .await;
    let (code, _) = w
        .call("PUT", &format!("/connectors/{paused}/resume"), None)
        .await;
    assert_eq!(code, 202);
    running(&w, &paused, 1).await;
    let (code, tc) = w
        .call("GET", &format!("/connectors/{paused}/tasks-config"), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        tc[format!("{paused}-0")]["task.class"],
        "org.apache.kafka.connect.tools.VerifiableSourceTask"
    );
    let (code, _) = w
        .call("POST", "/connectors", Some(&json!({"name": unique("bad-state"), "config": verifiable_source("t"), "initial_state": "SLEEPING"})))
        .await;
    assert_eq!(code, 400);

    let (code, root) = w.call("GET", "/admin/loggers/root", None).await;
    assert_eq!(code, 200);
    assert!(root["level"].is_string(), "{root}");
    let (code, err) = w.call("GET", "/admin/loggers/no.such.logger", None).await;
    assert_eq!(code, 404);
    assert_eq!(err["message"], "Logger no.such.logger not found.");
    // Cluster scope goes through the config topic and comes back to this worker.
    let (code, _) = w
        .call(
            "PUT",
            "/admin/loggers/connectd::cluster_test?scope=cluster",
            Some(&json!({"level": "TRACE"})),
        )
        .await;
    assert_eq!(code, 204);
    eventually(Duration::from_secs(20), || async {
        let (code, l) = w
            .call("GET", "/admin/loggers/connectd::cluster_test", None)
            .await;
        code == 200 && l["level"] == "TRACE"
    })
    .await;
    let cfg = read_topic(&cluster_config_topic);
    assert!(
        cfg.iter()
            .any(|r| r.key_str() == "logger-cluster-connectd::cluster_test"
                && r.value_str().as_deref() == Some(r#"{"level":"TRACE"}"#)),
        "the level is recorded in the config topic"
    );
    w.shutdown().await;
}
