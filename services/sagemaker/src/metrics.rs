//! `AWS/SageMaker` endpoint metrics: Invocations, InvocationsPerInstance, ModelLatency,
//! OverheadLatency, Invocation4XXErrors, Invocation5XXErrors and (serverless cold starts)
//! ModelSetupTime per EndpointName and VariantName, as CloudWatch shows them.
//!
//! InvokeEndpoint adds to counters in memory (an atomic add under a short lock: it serves
//! tens of thousands of requests a second); a flusher writes each window's sums as statistic
//! sets, one point per metric and variant, every [`window_ms`] (the metrics AWS publishes per
//! minute, at a finer grain). What a node had not flushed when it died is lost, as a
//! metric's last moments may be on AWS: metrics describe requests already answered.

use crate::Core;
use basalt_store::metrics::{DataPoint, StatSet, StoredPoint};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(crate) const NAMESPACE: &str = "AWS/SageMaker";

/// How often counts become points; `BASALT_SAGEMAKER_METRICS_MS` shortens it for tests.
pub(crate) fn window_ms() -> i64 {
    static MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| basalt_store::ms_from_secs_env("BASALT_SAGEMAKER_METRICS_SECS", 10_000))
}

#[derive(Debug, Default, Clone, Copy)]
struct Stat {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn add(&mut self, v: f64) {
        if self.count == 0.0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1.0;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct Window {
    invocations: f64,
    errors_4xx: f64,
    errors_5xx: f64,
    model_latency_us: Stat,
    overhead_latency_us: Stat,
    /// Serverless cold starts.
    model_setup_us: Stat,
    /// Multi-model endpoints: 1 per request whose model was loaded, 0 per one that loaded it.
    model_cache_hit: Stat,
    model_loading_us: Stat,
    loaded_models: Stat,
    instances: u32,
}

/// (account, region, endpoint, variant).
type Key = (String, String, String, String);

#[derive(Default)]
pub(crate) struct Recorder {
    windows: parking_lot::Mutex<HashMap<Key, Window>>,
}

/// One invocation, as it ended.
pub(crate) struct Invocation<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub endpoint: &'a str,
    pub variant: &'a str,
    pub instances: u32,
    /// The HTTP status the caller got: 200, or the container's error status (4xx/5xx).
    pub status: u16,
    pub model_us: Option<f64>,
    pub overhead_us: f64,
}

impl Recorder {
    /// Runs `f` on the current window of (account, region, endpoint, variant).
    fn with_window(&self, key: (&str, &str, &str, &str), f: impl FnOnce(&mut Window)) {
        let (account, region, endpoint, variant) = key;
        let key = (
            account.to_owned(),
            region.to_owned(),
            endpoint.to_owned(),
            variant.to_owned(),
        );
        let mut windows = self.windows.lock();
        let w = windows.entry(key).or_default();
        w.instances = w.instances.max(1);
        f(w);
    }

    pub(crate) fn record(&self, i: Invocation<'_>) {
        self.with_window((i.account, i.region, i.endpoint, i.variant), |w| {
            w.instances = i.instances.max(1);
            match i.status {
                400..=499 => w.errors_4xx += 1.0,
                500.. => w.errors_5xx += 1.0,
                _ => {}
            }
            w.invocations += 1.0;
            if let Some(m) = i.model_us {
                w.model_latency_us.add(m);
            }
            w.overhead_latency_us.add(i.overhead_us);
        });
    }

    /// A serverless variant's cold start (ModelSetupTime).
    pub(crate) fn record_setup(
        &self,
        account: &str,
        region: &str,
        endpoint: &str,
        variant: &str,
        us: f64,
    ) {
        self.with_window((account, region, endpoint, variant), |w| {
            w.model_setup_us.add(us)
        });
    }

    /// A multi-model endpoint's request: whether its model was loaded (ModelCacheHit), how
    /// long loading it took when it was not (ModelLoadingTime), how many models the variant
    /// has loaded (LoadedModelCount).
    pub(crate) fn record_model_load(
        &self,
        key: (&str, &str, &str, &str),
        loading_us: Option<f64>,
        loaded: usize,
    ) {
        self.with_window(key, |w| {
            w.model_cache_hit
                .add(if loading_us.is_none() { 1.0 } else { 0.0 });
            if let Some(us) = loading_us {
                w.model_loading_us.add(us);
            }
            w.loaded_models.add(loaded as f64);
        });
    }

    /// The points of what was recorded since the last call, stamped `now_ms`.
    fn drain(&self, now_ms: i64) -> Vec<StoredPoint> {
        let windows = std::mem::take(&mut *self.windows.lock());
        let mut out = Vec::new();
        for ((account, region, endpoint, variant), w) in windows {
            let dims: BTreeMap<String, String> = [
                ("EndpointName".to_owned(), endpoint),
                ("VariantName".to_owned(), variant),
            ]
            .into();
            let point = |metric: &str, unit: &str, stat: Stat| StoredPoint {
                point: DataPoint {
                    account_id: account.clone(),
                    region: region.clone(),
                    namespace: NAMESPACE.into(),
                    metric: metric.into(),
                    dimensions: dims.clone(),
                    value: if stat.count > 0.0 {
                        stat.sum / stat.count
                    } else {
                        0.0
                    },
                    unit: unit.into(),
                    timestamp_ms: now_ms,
                },
                stats: Some(StatSet {
                    sample_count: stat.count,
                    sum: stat.sum,
                    min: stat.min,
                    max: stat.max,
                }),
                values: None,
                storage_resolution: None,
            };
            // A count as a statistic set of one sample, so Sum and Average read alike.
            let count = |v: f64| Stat {
                count: 1.0,
                sum: v,
                min: v,
                max: v,
            };
            out.push(point("Invocations", "None", count(w.invocations)));
            out.push(point(
                "InvocationsPerInstance",
                "None",
                count(w.invocations / f64::from(w.instances)),
            ));
            out.push(point("Invocation4XXErrors", "None", count(w.errors_4xx)));
            out.push(point("Invocation5XXErrors", "None", count(w.errors_5xx)));
            if w.model_latency_us.count > 0.0 {
                out.push(point("ModelLatency", "Microseconds", w.model_latency_us));
            }
            if w.overhead_latency_us.count > 0.0 {
                out.push(point(
                    "OverheadLatency",
                    "Microseconds",
                    w.overhead_latency_us,
                ));
            }
            if w.model_setup_us.count > 0.0 {
                out.push(point("ModelSetupTime", "Microseconds", w.model_setup_us));
            }
            if w.model_cache_hit.count > 0.0 {
                out.push(point("ModelCacheHit", "None", w.model_cache_hit));
                out.push(point("LoadedModelCount", "None", w.loaded_models));
            }
            if w.model_loading_us.count > 0.0 {
                out.push(point(
                    "ModelLoadingTime",
                    "Microseconds",
                    w.model_loading_us,
                ));
            }
        }
        out
    }
}

/// Writes the counts (and the captured data, `capture.rs`) every window, on this node.
pub(crate) fn start_flusher(core: Arc<Core>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(window_ms() as u64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            core.captures.flush(&core).await;
            let points = core.invocations.drain(core.now_ms());
            if points.is_empty() {
                continue;
            }
            let ops = core.metrics.stored_ops(&points);
            let state = core.state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = state.batch(&ops) {
                    tracing::warn!("writing AWS/SageMaker metrics: {e}");
                }
            })
            .await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_becomes_one_point_per_metric() {
        let r = Recorder::default();
        for (status, model) in [
            (200, Some(100.0)),
            (200, Some(300.0)),
            (424, None),
            (503, None),
        ] {
            r.record(Invocation {
                account: "a",
                region: "r",
                endpoint: "e",
                variant: "v",
                instances: 2,
                status,
                model_us: model,
                overhead_us: 10.0,
            });
        }
        let points = r.drain(1_000);
        let get = |m: &str| points.iter().find(|p| p.point.metric == m).unwrap();
        assert_eq!(get("Invocations").stats.unwrap().sum, 4.0);
        assert_eq!(get("InvocationsPerInstance").stats.unwrap().sum, 2.0);
        assert_eq!(get("Invocation4XXErrors").stats.unwrap().sum, 1.0);
        assert_eq!(get("Invocation5XXErrors").stats.unwrap().sum, 1.0);
        let latency = get("ModelLatency").stats.unwrap();
        assert_eq!(
            (latency.sample_count, latency.min, latency.max),
            (2.0, 100.0, 300.0)
        );
        assert_eq!(get("ModelLatency").point.value, 200.0);
        assert_eq!(
            get("Invocations").point.dimensions,
            BTreeMap::from([
                ("EndpointName".to_owned(), "e".to_owned()),
                ("VariantName".to_owned(), "v".to_owned())
            ])
        );
        assert!(r.drain(2_000).is_empty(), "a window is written once");
    }
}
