//! This node's identity and its view of the shared storage, for `/_basalt/health`: which
//! backends it runs on and how long a round trip to each takes, probed in the background so
//! that a health check never waits on a slow or unreachable database.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basalt_store::Store;
use parking_lot::Mutex;
use serde_json::{Value, json};

const PROBE_EVERY: Duration = Duration::from_secs(2);
/// A record and a blob that are never written: reading them costs one round trip.
const PROBE_TABLE: &str = "basalt.health";
const PROBE_KEY: &str = "probe";

#[derive(Clone, Default)]
struct Probe {
    /// Milliseconds of the last round trip, or the error it ended with.
    result: Option<Result<f64, String>>,
    at_ms: u64,
}

pub struct NodeHealth {
    node_id: String,
    state_backend: &'static str,
    blobs_backend: &'static str,
    /// The state store's own vector index (`pgvector 0.8.5`), if it has one.
    vectors: Option<String>,
    state: Mutex<Probe>,
    blobs: Mutex<Probe>,
}

impl NodeHealth {
    /// Starts probing `store` every [`PROBE_EVERY`] on the current runtime.
    pub fn start(
        node_id: String,
        state_backend: &'static str,
        blobs_backend: &'static str,
        store: Store,
    ) -> Arc<NodeHealth> {
        let h = Arc::new(NodeHealth {
            node_id,
            state_backend,
            blobs_backend,
            vectors: store.state.vectors().and_then(|v| v.describe()),
            state: Mutex::default(),
            blobs: Mutex::default(),
        });
        let weak = Arc::downgrade(&h);
        tokio::spawn(async move {
            loop {
                let Some(h) = weak.upgrade() else { return };
                let store = store.clone();
                let (s, b) = tokio::task::spawn_blocking(move || {
                    let s = timed(|| store.state.get(PROBE_TABLE, PROBE_KEY).map(drop));
                    let b = timed(|| store.blobs.len(PROBE_KEY).map(drop));
                    (s, b)
                })
                .await
                .unwrap_or_else(|e| (Err(e.to_string()), Err(e.to_string())));
                let at_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                *h.state.lock() = Probe {
                    result: Some(s),
                    at_ms,
                };
                *h.blobs.lock() = Probe {
                    result: Some(b),
                    at_ms,
                };
                drop(h);
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
        h
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The `node` section of `/_basalt/health`.
    pub fn render(&self) -> Value {
        let one = |backend: &str, p: &Probe| {
            let mut v = json!({ "backend": backend });
            match &p.result {
                None => v["status"] = "probing".into(),
                Some(Ok(ms)) => {
                    v["status"] = "ok".into();
                    v["latencyMs"] = json!((ms * 1000.0).round() / 1000.0);
                }
                Some(Err(e)) => {
                    v["status"] = "unavailable".into();
                    v["error"] = e.clone().into();
                }
            }
            if p.at_ms > 0 {
                v["checkedAtMs"] = p.at_ms.into();
            }
            v
        };
        let mut state = one(self.state_backend, &self.state.lock());
        if let Some(v) = &self.vectors {
            state["vectors"] = v.as_str().into();
        }
        json!({
            "id": self.node_id,
            "state": state,
            "blobs": one(self.blobs_backend, &self.blobs.lock()),
        })
    }
}

fn timed(f: impl FnOnce() -> Result<(), basalt_store::StoreError>) -> Result<f64, String> {
    let t = Instant::now();
    f().map_err(|e| e.to_string())?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// The default node id: the host's name and the port.
pub fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{port}")
}
