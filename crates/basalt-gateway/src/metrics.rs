//! Request counters and latency histograms, rendered in Prometheus text format.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Extra gauges/counters that other parts of Basalt publish (e.g. model token counts).
pub type ExtraRenderer = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    extra: Mutex<Vec<ExtraRenderer>>,
}

impl Metrics {
    pub fn record(&self, service: &str, operation: &str, status: u16, seconds: f64) {
        let mut map = self.series.lock();
        let key = (service.to_owned(), operation.to_owned(), status);
        let s = map.entry(key).or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    pub fn add_renderer(&self, r: ExtraRenderer) {
        self.extra.lock().push(r);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP basalt_requests_total Requests by service, operation and HTTP status.\n",
        );
        out.push_str("# TYPE basalt_requests_total counter\n");
        let map = self.series.lock();
        for ((svc, op, status), s) in map.iter() {
            let _ = writeln!(
                out,
                "basalt_requests_total{{service=\"{svc}\",operation=\"{op}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP basalt_request_duration_seconds Request latency.\n");
        out.push_str("# TYPE basalt_request_duration_seconds histogram\n");
        let mut by_op: BTreeMap<(&str, &str), Series> = BTreeMap::new();
        for ((svc, op, _), s) in map.iter() {
            let agg = by_op.entry((svc, op)).or_default();
            agg.count += s.count;
            agg.sum += s.sum;
            for i in 0..BUCKETS.len() {
                agg.buckets[i] += s.buckets[i];
            }
        }
        for ((svc, op), s) in by_op {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "basalt_request_duration_seconds_bucket{{service=\"{svc}\",operation=\"{op}\",le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "basalt_request_duration_seconds_bucket{{service=\"{svc}\",operation=\"{op}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "basalt_request_duration_seconds_sum{{service=\"{svc}\",operation=\"{op}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "basalt_request_duration_seconds_count{{service=\"{svc}\",operation=\"{op}\"}} {}",
                s.count
            );
        }
        drop(map);
        for r in self.extra.lock().iter() {
            r(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record("sts", "GetCallerIdentity", 200, 0.0007);
        m.record("sts", "GetCallerIdentity", 200, 0.02);
        m.record("sts", "AssumeRole", 400, 0.001);
        let text = m.render();
        assert!(text.contains("basalt_requests_total{service=\"sts\",operation=\"GetCallerIdentity\",status=\"200\"} 2"));
        assert!(text.contains("basalt_request_duration_seconds_bucket{service=\"sts\",operation=\"GetCallerIdentity\",le=\"0.001\"} 1"));
        assert!(text.contains(
            "basalt_request_duration_seconds_count{service=\"sts\",operation=\"AssumeRole\"} 1"
        ));
    }
}
