//! The admin address (`--admin ADDR`): `/stats/prometheus` (the filter's metrics summed over
//! the workers, named as Envoy's Prometheus output names a Wasm filter's custom metrics:
//! `vigil_...`, no `envoy_` prefix; docs/envoy-behaviour.md), and `/ready`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::collections::BTreeMap;
use std::sync::Mutex;
use vigil_host::abi::MetricType;
use vigil_host::Vm;

/// Each worker's metrics as of its last finished exchange.
#[derive(Default)]
pub struct Metrics {
    workers: Mutex<Vec<BTreeMap<String, (MetricType, i64)>>>,
}

impl Metrics {
    pub fn new(workers: usize) -> Self {
        Self {
            workers: Mutex::new(vec![BTreeMap::new(); workers]),
        }
    }

    pub fn publish(&self, worker: usize, vm: &Vm) {
        let now: BTreeMap<String, (MetricType, i64)> = vm
            .state()
            .metrics
            .values()
            .map(|m| (m.name.clone(), (m.kind, m.value)))
            .collect();
        if let Ok(mut w) = self.workers.lock() {
            if let Some(slot) = w.get_mut(worker) {
                *slot = now;
            }
        }
    }

    /// Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let mut sum: BTreeMap<String, (MetricType, i64)> = BTreeMap::new();
        if let Ok(w) = self.workers.lock() {
            for m in w.iter() {
                for (name, (kind, v)) in m {
                    let e = sum.entry(prometheus_name(name)).or_insert((*kind, 0));
                    e.1 += v;
                }
            }
        }
        let mut out = String::new();
        for (name, (kind, v)) in sum {
            let ty = match kind {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                MetricType::Histogram => "untyped",
            };
            out.push_str(&format!("# TYPE {name} {ty}\n{name} {v}\n"));
        }
        out
    }
}

fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

pub async fn handle(
    metrics: std::sync::Arc<Metrics>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (status, ty, body) = match req.uri().path() {
        "/stats/prometheus" => (200, "text/plain; version=0.0.4", metrics.prometheus()),
        "/ready" => (200, "text/plain", "LIVE\n".to_string()),
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", ty)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default())
}
