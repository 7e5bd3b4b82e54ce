//! Acknowledged means durable: clients ingest while the server is killed with SIGKILL and
//! restarted, over and over; afterwards every acknowledged event is stored exactly once, and
//! retrying the unacknowledged ones never creates a duplicate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Start, TestServer, event};

const CYCLES: usize = 20;
const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), Start::default()).await;
    let token = server.api_token(&["ingest", "read"]).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let attempted: Arc<Mutex<HashSet<String>>> = Arc::default();

    for cycle in 0..CYCLES {
        let mut clients = Vec::new();
        for client_no in 0..CLIENTS {
            let (http, url, token) = (server.client.clone(), server.url("/ingest"), token.clone());
            let (acked, attempted) = (Arc::clone(&acked), Arc::clone(&attempted));
            clients.push(tokio::spawn(async move {
                for n in 0.. {
                    // Alternate single events and small batches.
                    let ids: Vec<String> = (0..=(n % 3))
                        .map(|k| format!("c{cycle}-{client_no}-{n}-{k}"))
                        .collect();
                    attempted.lock().unwrap().extend(ids.iter().cloned());
                    let body = Value::Array(ids.iter().map(|id| event(id)).collect());
                    let Ok(response) = http.post(&url).bearer_auth(&token).json(&body).send().await
                    else {
                        return;
                    };
                    if response.status() != StatusCode::ACCEPTED {
                        return;
                    }
                    let Ok(reply) = response.json::<Value>().await else {
                        return;
                    };
                    assert_eq!(
                        reply["accepted"].as_u64().unwrap() + reply["duplicates"].as_u64().unwrap(),
                        ids.len() as u64
                    );
                    acked.lock().unwrap().extend(ids);
                }
            }));
        }
        // Let the clients run for a varying while, then pull the plug.
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 250)).await;
        server.kill();
        for client in clients {
            client.await.unwrap();
        }
        drop(server);
        server = TestServer::start(dir.path(), Start::default()).await;
    }

    let stored = server.all_event_ids(&token).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &stored {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > CYCLES * CLIENTS,
        "the load was too light to mean anything: {}",
        acked.len()
    );
    for id in &acked {
        assert_eq!(
            counts.get(id.as_str()),
            Some(&1),
            "acknowledged event {id} is not stored exactly once"
        );
    }
    assert!(counts.values().all(|&n| n == 1), "an event is stored twice");

    // Retrying everything attempted (as a client would after a timeout) adds each one once.
    let attempted: Vec<String> = attempted.lock().unwrap().iter().cloned().collect();
    for chunk in attempted.chunks(500) {
        let body = Value::Array(chunk.iter().map(|id| event(id)).collect());
        let (status, reply) = server.post_json("/ingest", Some(&token), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    }
    let after = server.all_event_ids(&token).await;
    assert_eq!(after.len(), attempted.len());
    assert_eq!(after.iter().collect::<HashSet<_>>().len(), after.len());
    let (_, ready) = server.get("/ready", None).await;
    assert_eq!(ready["events"], json!(attempted.len()));
}
