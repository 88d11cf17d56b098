//! Several workers in one group on a real broker: connectors that the group
//! gives to a follower get their tasks (the follower sends its task configs
//! to the leader, signed with the session key the leader wrote), the
//! internal endpoint refuses requests that are not signed with that key, a
//! follower forwards the REST writes only the leader can make, and restarts
//! reach the worker that runs the connector or task.

#![allow(clippy::unwrap_used)] // tests panic on unexpected states by design

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use common::*;
use connectd::herder::signing::SessionKey;
use serde_json::json;

/// The worker ids running each connector, once every connector and its
/// task 0 are RUNNING; `None` while that is not yet so.
async fn running_owners(w: &TestWorker, names: &[String]) -> Option<BTreeSet<String>> {
    let mut owners = BTreeSet::new();
    for name in names {
        let (code, st) = w
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        if code != 200
            || st["connector"]["state"] != "RUNNING"
            || st["tasks"][0]["state"] != "RUNNING"
        {
            return None;
        }
        owners.insert(st["connector"]["worker_id"].as_str()?.to_string());
    }
    Some(owners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_connectors_and_forward_what_they_cannot_answer() {
    let cluster = Cluster::new();
    let leader = cluster.start(&[]).await;
    let follower = cluster.start_member(&[]).await;
    assert!(!follower.handle.herder.ownership().unwrap().leader);

    // Created through either worker: a follower forwards the create to the
    // leader, and its answer names the follower in `Location`.
    let names: Vec<String> = (0..4).map(|i| format!("{}-{i}", unique("dist"))).collect();
    for (i, name) in names.iter().enumerate() {
        let w = if i % 2 == 0 { &leader } else { &follower };
        let body =
            json!({"name": name, "config": verifiable_source(&format!("{name}-out"))}).to_string();
        let (code, headers, text) = http_raw(
            &w.base,
            "POST",
            "/connectors",
            Some(&body),
            "application/json",
        )
        .await;
        assert_eq!(code, 201, "create {name} through {}: {text}", w.base);
        assert_eq!(
            headers.get("location").map(String::as_str),
            Some(format!("{}/connectors/{name}", w.base).as_str())
        );
    }
    // The group spreads the connectors over both workers; a connector on
    // the follower only gets a task if the leader wrote the task configs the
    // follower's instance generated.
    let mut owners = None;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        owners = running_owners(&leader, &names).await;
        if owners.as_ref().is_some_and(|o| o.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut states = Vec::new();
    for name in &names {
        states.push(
            leader
                .call("GET", &format!("/connectors/{name}/status"), None)
                .await
                .1,
        );
    }
    assert_eq!(
        owners.as_ref().map(BTreeSet::len),
        Some(2),
        "every connector running with a task, spread over both workers: {states:#?}"
    );

    // The leader wrote a session key in the Java worker's format.
    let keys: Vec<_> = read_topic(&cluster.config_topic)
        .into_iter()
        .filter(|r| r.key_str() == "session-key")
        .collect();
    assert!(
        !keys.is_empty(),
        "no session-key record in the config topic"
    );
    let key = keys.last().unwrap().value_json();
    assert_eq!(key["algorithm"], "HmacSHA256");
    assert!(key["creation-timestamp"].as_i64().unwrap() > 0);

    // Task configs that are not signed with that key are refused, on both
    // workers, before anything is written.
    let path = format!("/connectors/{}/tasks", names[0]);
    let body = r#"[{"task.class":"forged"}]"#;
    for w in [&leader, &follower] {
        let (code, _, text) =
            http_raw(&w.base, "POST", &path, Some(body), "application/json").await;
        assert_eq!(code, 400, "{text}");
        assert!(
            text.contains("Internal request missing required signature"),
            "{text}"
        );
        let (code, _, text) = http_with_headers(
            &w.base,
            "POST",
            &path,
            Some(body),
            &[
                ("Content-Type", "application/json"),
                // Well-formed, but not made with the cluster's session key.
                (
                    "X-Connect-Authorization",
                    "Rf0NRi1Vr3VWrGZkN5xBsHvPoIOs/eoLrnB+xdeTOT8=",
                ),
                ("X-Connect-Request-Signature-Algorithm", "HmacSHA256"),
            ],
        )
        .await;
        assert_eq!(code, 403, "{text}");
        assert!(
            text.contains("Internal request contained invalid signature."),
            "{text}"
        );
    }
    let (_, tasks) = leader
        .call("GET", &format!("/connectors/{}/tasks", names[0]), None)
        .await;
    assert!(
        !tasks.to_string().contains("forged"),
        "a refused request changed the task configs: {tasks}"
    );

    // Signed with the session key as the config topic holds it, the same
    // configs are accepted by the leader. A follower does not forward them
    // (the signature would not survive the hop): 409, and the sender tries
    // again after the rebalance.
    let session = SessionKey {
        key: base64::engine::general_purpose::STANDARD
            .decode(key["key"].as_str().unwrap())
            .unwrap(),
        algorithm: key["algorithm"].as_str().unwrap().to_string(),
        created_ms: key["creation-timestamp"].as_i64().unwrap(),
    };
    let configs: Vec<serde_json::Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["config"].clone())
        .collect();
    let body = serde_json::to_string(&configs).unwrap();
    let signature = session.sign("HmacSHA256", body.as_bytes()).unwrap();
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    headers.extend(signature.iter().map(|(k, v)| (*k, v.as_str())));
    let (code, _, text) =
        http_with_headers(&follower.base, "POST", &path, Some(&body), &headers).await;
    assert_eq!(code, 409, "{text}");
    let (code, _, text) =
        http_with_headers(&leader.base, "POST", &path, Some(&body), &headers).await;
    assert_eq!(code, 204, "{text}");

    // A plain restart only the owner can do: sent to the worker that does
    // not run the connector, it reaches the owner (a follower sends it to
    // the leader, the leader to the owner).
    let not_running = |worker_id: &serde_json::Value| {
        let id = worker_id.as_str().unwrap().to_string();
        if leader.base.ends_with(&id) {
            &follower
        } else {
            assert!(follower.base.ends_with(&id), "{id}");
            &leader
        }
    };
    for name in &names {
        let (_, st) = leader
            .call("GET", &format!("/connectors/{name}/status"), None)
            .await;
        let other = not_running(&st["connector"]["worker_id"]);
        let (code, body) = other
            .call("POST", &format!("/connectors/{name}/restart"), None)
            .await;
        assert_eq!(code, 204, "restart {name} through {}: {body}", other.base);
        let other = not_running(&st["tasks"][0]["worker_id"]);
        let (code, body) = other
            .call("POST", &format!("/connectors/{name}/tasks/0/restart"), None)
            .await;
        assert_eq!(
            code, 204,
            "restart task 0 of {name} through {}: {body}",
            other.base
        );
    }

    // Other leader-only writes are forwarded too; a request that was
    // already forwarded once more (`forward=false`) is not.
    let (code, body) = follower
        .call("PUT", &format!("/connectors/{}/stop", names[1]), None)
        .await;
    assert_eq!(code, 204, "{body}");
    let (code, body) = follower
        .call(
            "DELETE",
            &format!("/connectors/{}?forward=false", names[2]),
            None,
        )
        .await;
    assert_eq!(code, 409, "{body}");
    let (code, body) = follower
        .call("DELETE", &format!("/connectors/{}", names[2]), None)
        .await;
    assert_eq!(code, 204, "{body}");
    let (code, body) = follower
        .call("DELETE", &format!("/connectors/{}", names[2]), None)
        .await;
    assert_eq!(code, 404, "the leader's answer passes through: {body}");
    eventually(Duration::from_secs(30), || async {
        let (_, c) = leader.call("GET", "/connectors", None).await;
        let stopped = leader
            .call("GET", &format!("/connectors/{}/status", names[1]), None)
            .await
            .1;
        !c.to_string().contains(&names[2]) && stopped["connector"]["state"] == "STOPPED"
    })
    .await;

    follower.shutdown().await;
    leader.shutdown().await;
}
