//! Per-invocation accounting: tokens, latency and cost by model id, as the `AWS/Bedrock`
//! CloudWatch metrics report them (Invocations, InputTokenCount, OutputTokenCount,
//! InvocationLatency, InvocationThrottles), stored durably as data points for the CloudWatch
//! API and rendered in `/_basalt/metrics`.

use basalt_chat::Usage;
use basalt_core::RequestContext;
use basalt_store::metrics::Metrics;
use basalt_store::{MemoryState, StateStore};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// On-demand prices in USD per million input / output tokens (Bedrock's us-east-1 list).
const PRICES: &[(&str, f64, f64)] = &[
    ("anthropic.claude-3-haiku", 0.25, 1.25),
    ("anthropic.claude-3-sonnet", 3.0, 15.0),
    ("anthropic.claude-3-opus", 15.0, 75.0),
    ("anthropic.claude-3-5-haiku", 0.8, 4.0),
    ("anthropic.claude-3-5-sonnet", 3.0, 15.0),
    ("anthropic.claude-3-7-sonnet", 3.0, 15.0),
    ("anthropic.claude-sonnet-4", 3.0, 15.0),
    ("anthropic.claude-opus-4", 15.0, 75.0),
    ("anthropic.claude-v2", 8.0, 24.0),
    ("anthropic.claude-instant", 0.8, 2.4),
    ("amazon.titan-text-express", 0.2, 0.6),
    ("amazon.titan-text-lite", 0.15, 0.2),
    ("amazon.titan-text-premier", 0.5, 1.5),
    ("amazon.nova-micro", 0.035, 0.14),
    ("amazon.nova-lite", 0.06, 0.24),
    ("amazon.nova-pro", 0.8, 3.2),
    ("meta.llama3-8b", 0.3, 0.6),
    ("meta.llama3-70b", 2.65, 3.5),
    ("meta.llama3-1-8b", 0.22, 0.22),
    ("meta.llama3-1-70b", 0.72, 0.72),
    ("mistral.mistral-7b", 0.15, 0.2),
    ("mistral.mixtral-8x7b", 0.45, 0.7),
    ("mistral.mistral-large", 4.0, 12.0),
    ("cohere.command-r-plus", 3.0, 15.0),
    ("cohere.command-r", 0.5, 1.5),
    ("ai21.jamba-1-5-mini", 0.2, 0.4),
    ("deepseek.r1", 1.35, 5.4),
    ("amazon.titan-embed-text-v1", 0.1, 0.0),
    ("amazon.titan-embed-text-v2", 0.02, 0.0),
    ("cohere.embed", 0.1, 0.0),
];

/// USD cost of `usage` on `model_id` (0 when the price is unknown).
pub fn cost_usd(model_id: &str, usage: &Usage) -> f64 {
    let base = basalt_chat::providers::base_model_id(model_id).unwrap_or(model_id);
    PRICES
        .iter()
        .filter(|(prefix, _, _)| base.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, i, o)| {
            // Cached input at the cached-token prices (a factor of the input price).
            let cached = crate::prompt_cache::support(model_id).map_or(0.0, |s| {
                let w1h = usage
                    .cache_write_1h_input_tokens
                    .min(usage.cache_write_input_tokens);
                f64::from(usage.cache_read_input_tokens) * s.read_factor
                    + f64::from(usage.cache_write_input_tokens - w1h) * s.write_factor
                    + f64::from(w1h) * s.write_1h_factor
            });
            ((f64::from(usage.input_tokens) + cached) * i + f64::from(usage.output_tokens) * o)
                / 1_000_000.0
        })
        .unwrap_or(0.0)
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub invocations: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub throttles: u64,
    pub cost_usd: f64,
}

/// A CloudWatch data point in the `AWS/Bedrock` namespace, dimension `ModelId`.
pub use basalt_store::metrics::{DATAPOINT_TABLE, DataPoint};
pub const NAMESPACE: &str = "AWS/Bedrock";
pub const GUARDRAILS_NAMESPACE: &str = "AWS/Bedrock/Guardrails";

/// Token, latency and cost accounting of every invocation: running totals for
/// `/_basalt/metrics`, and durable CloudWatch data points.
pub struct Accounting {
    totals: Mutex<BTreeMap<String, Totals>>,
    metrics: Metrics,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting::new(Arc::new(MemoryState::default()))
    }
}

impl Accounting {
    pub fn new(state: Arc<dyn StateStore>) -> Accounting {
        Accounting {
            totals: Mutex::default(),
            metrics: Metrics::new(state),
        }
    }

    pub fn record(&self, ctx: &RequestContext, model_id: &str, usage: &Usage, latency_ms: u64) {
        let cost = cost_usd(model_id, usage);
        {
            let mut totals = self.totals.lock();
            let t = totals.entry(model_id.to_owned()).or_default();
            t.invocations += 1;
            t.input_tokens += u64::from(usage.input_tokens);
            t.output_tokens += u64::from(usage.output_tokens);
            t.latency_ms += latency_ms;
            t.cost_usd += cost;
        }
        let mut points = vec![
            ("Invocations", 1.0, "Count"),
            ("InputTokenCount", f64::from(usage.input_tokens), "Count"),
            ("OutputTokenCount", f64::from(usage.output_tokens), "Count"),
            ("InvocationLatency", latency_ms as f64, "Milliseconds"),
        ];
        if usage.cache_read_input_tokens + usage.cache_write_input_tokens > 0 {
            points.push((
                "CacheReadInputTokenCount",
                f64::from(usage.cache_read_input_tokens),
                "Count",
            ));
            points.push((
                "CacheWriteInputTokenCount",
                f64::from(usage.cache_write_input_tokens),
                "Count",
            ));
        }
        self.publish(ctx, model_id, &points);
    }

    pub fn throttled(&self, ctx: &RequestContext, model_id: &str) {
        self.totals
            .lock()
            .entry(model_id.to_owned())
            .or_default()
            .throttles += 1;
        self.publish(ctx, model_id, &[("InvocationThrottles", 1.0, "Count")]);
    }

    /// Writes the points (dimension `ModelId`) in one transaction, off the request threads.
    fn publish(&self, ctx: &RequestContext, model_id: &str, metrics: &[(&str, f64, &str)]) {
        let dims = BTreeMap::from([("ModelId".to_owned(), model_id.to_owned())]);
        self.publish_in(
            ctx,
            NAMESPACE,
            &metrics
                .iter()
                .map(|&(m, v, u)| (m, v, u, dims.clone()))
                .collect::<Vec<_>>(),
        );
    }

    fn publish_in(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        metrics: &[(&str, f64, &str, BTreeMap<String, String>)],
    ) {
        let now = chrono::Utc::now().timestamp_millis();
        self.metrics.publish(
            metrics
                .iter()
                .map(|(metric, value, unit, dimensions)| DataPoint {
                    account_id: ctx.account_id.clone(),
                    region: ctx.region.clone(),
                    namespace: namespace.to_owned(),
                    metric: (*metric).to_owned(),
                    dimensions: dimensions.clone(),
                    value: *value,
                    unit: (*unit).to_owned(),
                    timestamp_ms: now,
                })
                .collect(),
        );
    }

    /// One guardrail evaluation in `AWS/Bedrock/Guardrails`: Invocations, InvocationLatency,
    /// TextUnitCount and InvocationsIntervened by guardrail and version, by operation, by
    /// content source, and interventions by policy type (`GuardrailPolicyType`).
    #[allow(clippy::too_many_arguments)]
    pub fn guardrail(
        &self,
        ctx: &RequestContext,
        arn: &str,
        version: &str,
        operation: &str,
        source: basalt_guardrails::Source,
        outcome: &basalt_guardrails::Outcome,
        latency_ms: u64,
    ) {
        let by_guardrail = BTreeMap::from([
            ("GuardrailArn".to_owned(), arn.to_owned()),
            ("GuardrailVersion".to_owned(), version.to_owned()),
        ]);
        let by_operation = BTreeMap::from([("Operation".to_owned(), operation.to_owned())]);
        let mut by_source = by_guardrail.clone();
        by_source.insert(
            "GuardrailContentSource".to_owned(),
            match source {
                basalt_guardrails::Source::Input => "Input",
                basalt_guardrails::Source::Output => "Output",
            }
            .to_owned(),
        );
        let intervened = if outcome.intervened { 1.0 } else { 0.0 };
        let units = outcome.usage.total() as f64;
        let mut points = vec![
            ("Invocations", 1.0, "Count", by_guardrail.clone()),
            (
                "InvocationLatency",
                latency_ms as f64,
                "Milliseconds",
                by_guardrail.clone(),
            ),
            ("TextUnitCount", units, "Count", by_guardrail.clone()),
            (
                "InvocationsIntervened",
                intervened,
                "Count",
                by_guardrail.clone(),
            ),
            ("Invocations", 1.0, "Count", by_operation.clone()),
            ("InvocationsIntervened", intervened, "Count", by_operation),
            ("Invocations", 1.0, "Count", by_source.clone()),
            ("InvocationsIntervened", intervened, "Count", by_source),
        ];
        for policy in &outcome.policies_intervened {
            let mut dims = by_guardrail.clone();
            dims.insert("GuardrailPolicyType".to_owned(), (*policy).to_owned());
            points.push(("InvocationsIntervened", 1.0, "Count", dims));
        }
        self.publish_in(ctx, GUARDRAILS_NAMESPACE, &points);
    }

    pub fn totals(&self, model_id: &str) -> Totals {
        self.totals
            .lock()
            .get(model_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The stored points of one metric, oldest first.
    pub fn data_points(
        &self,
        account_id: &str,
        region: &str,
        metric: &str,
    ) -> Result<Vec<DataPoint>, basalt_store::StoreError> {
        self.metrics.points(account_id, region, NAMESPACE, metric)
    }

    /// Prometheus text for `/_basalt/metrics`.
    pub fn render(&self, out: &mut String) {
        let totals = self.totals.lock();
        for (name, help, get) in [
            (
                "basalt_bedrock_invocations_total",
                "Bedrock invocations by model id.",
                (|t: &Totals| t.invocations as f64) as fn(&Totals) -> f64,
            ),
            (
                "basalt_bedrock_input_tokens_total",
                "Input tokens by model id.",
                |t| t.input_tokens as f64,
            ),
            (
                "basalt_bedrock_output_tokens_total",
                "Output tokens by model id.",
                |t| t.output_tokens as f64,
            ),
            (
                "basalt_bedrock_invocation_latency_seconds_total",
                "Summed invocation latency by model id.",
                |t| t.latency_ms as f64 / 1000.0,
            ),
            (
                "basalt_bedrock_invocation_throttles_total",
                "Throttled invocations by model id.",
                |t| t.throttles as f64,
            ),
            (
                "basalt_bedrock_cost_usd_total",
                "What the invocations would have cost on Bedrock on demand.",
                |t| t.cost_usd,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (model, t) in totals.iter() {
                let _ = writeln!(out, "{name}{{model_id=\"{model}\"}} {}", get(t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_cost_their_prices() {
        let model = "anthropic.claude-3-7-sonnet-20250219-v1:0";
        let plain = Usage {
            input_tokens: 1_000_000,
            ..Default::default()
        };
        let read = Usage {
            cache_read_input_tokens: 1_000_000,
            ..Default::default()
        };
        let write = Usage {
            cache_write_input_tokens: 1_000_000,
            ..Default::default()
        };
        assert!((cost_usd(model, &plain) - 3.0).abs() < 1e-9);
        assert!((cost_usd(model, &read) - 0.3).abs() < 1e-9);
        assert!((cost_usd(model, &write) - 3.75).abs() < 1e-9);
    }

    #[test]
    fn prices_and_totals() {
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Default::default()
        };
        assert_eq!(
            cost_usd("anthropic.claude-3-sonnet-20240229-v1:0", &u),
            18.0
        );
        assert_eq!(
            cost_usd("us.anthropic.claude-3-haiku-20240307-v1:0", &u),
            1.5
        );
        assert_eq!(cost_usd("unknown.model", &u), 0.0);
        let a = Accounting::default();
        let ctx = RequestContext::internal("000000000000", "us-east-1", "http://x");
        a.record(
            &ctx,
            "anthropic.claude-3-sonnet-20240229-v1:0",
            &Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Default::default()
            },
            120,
        );
        let t = a.totals("anthropic.claude-3-sonnet-20240229-v1:0");
        assert_eq!(
            (t.invocations, t.input_tokens, t.output_tokens, t.latency_ms),
            (1, 10, 5, 120)
        );
        let points = a
            .data_points("000000000000", "us-east-1", "InputTokenCount")
            .unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(
            (
                points[0].value,
                points[0].unit.as_str(),
                points[0].dimensions["ModelId"].as_str()
            ),
            (10.0, "Count", "anthropic.claude-3-sonnet-20240229-v1:0")
        );
        a.throttled(&ctx, "anthropic.claude-3-sonnet-20240229-v1:0");
        assert_eq!(
            a.data_points("000000000000", "us-east-1", "InvocationThrottles")
                .unwrap()
                .len(),
            1
        );
        assert!(
            a.data_points("111111111111", "us-east-1", "Invocations")
                .unwrap()
                .is_empty()
        );
        let mut s = String::new();
        a.render(&mut s);
        assert!(s.contains("basalt_bedrock_input_tokens_total{model_id=\"anthropic.claude-3-sonnet-20240229-v1:0\"} 10"));
    }

    #[test]
    fn data_points_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("basalt-acct-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ctx = RequestContext::internal("000000000000", "us-east-1", "http://x");
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Default::default()
        };
        {
            let state = Arc::new(basalt_store::SqliteState::open(&dir.join("s.db")).unwrap());
            let a = Accounting::new(state);
            a.record(&ctx, "amazon.nova-micro-v1:0", &usage, 10);
            a.record(&ctx, "amazon.nova-micro-v1:0", &usage, 30);
        }
        let state = Arc::new(basalt_store::SqliteState::open(&dir.join("s.db")).unwrap());
        let a = Accounting::new(state);
        a.record(&ctx, "amazon.nova-micro-v1:0", &usage, 20);
        let latencies: Vec<f64> = a
            .data_points("000000000000", "us-east-1", "InvocationLatency")
            .unwrap()
            .iter()
            .map(|p| p.value)
            .collect();
        assert_eq!(latencies, vec![10.0, 30.0, 20.0], "all kept, in time order");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
