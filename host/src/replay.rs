//! Runs a capture through a plugin in the host and reports what happened in the replay
//! output contract (docs/design.md): what the client got, what reached the model server, the
//! callouts, the session record as the access log saw it, and whether `expect` held.
//!
//! Body chunks are delivered one by one, as captured. Callouts are answered from the
//! capture's script in the order they were dispatched; a callout the script cannot answer is
//! an error of this capture, never a hang.

use crate::abi::Pairs;
use crate::capture::{self, LoadedCapture};
use crate::live::LiveClusters;
use crate::state::CallAnswer;
use crate::vm::{HostError, Plugin, Vm, VmOptions};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

/// What reached the model server.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpstreamRequest {
    pub headers: Pairs,
    pub body: String,
}

/// One callout the filter made.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalloutSeen {
    pub cluster: String,
    pub headers: Pairs,
    pub body: String,
}

/// One line of `vigil replay --json` (contract).
#[derive(Debug, Clone, Serialize)]
pub struct ReplayResult {
    pub name: String,
    /// `forwarded` or `local_response`; null when the capture could not run at all.
    pub outcome: Option<String>,
    /// The status the client got; 0 when it got no response headers (reset), null when the
    /// capture could not run.
    pub status: Option<u16>,
    pub client_headers: Pairs,
    pub client_body: String,
    pub upstream_request: Option<UpstreamRequest>,
    pub callouts: Vec<CalloutSeen>,
    pub record: serde_json::Value,
    pub expect_ok: Option<bool>,
    pub error: Option<String>,
    #[serde(skip)]
    pub expect_failures: Vec<String>,
    #[serde(skip)]
    pub unusable: bool,
    #[serde(skip)]
    pub logs: Vec<crate::LogLine>,
}

impl ReplayResult {
    fn failed(name: String, error: String, unusable: bool) -> Self {
        Self {
            name,
            outcome: None,
            status: None,
            client_headers: Vec::new(),
            client_body: String::new(),
            upstream_request: None,
            callouts: Vec::new(),
            record: serde_json::Value::Null,
            expect_ok: None,
            error: Some(error),
            expect_failures: Vec::new(),
            unusable,
            logs: Vec::new(),
        }
    }
}

/// The filter-state key the session record is written under, from the capture's config
/// (or the embedded default when the config is empty or not Vigil's).
fn record_key(config: &[u8]) -> String {
    let property = vigil_core::PluginConfig::parse(config)
        .map(|c| c.record.property)
        .unwrap_or_else(|_| vigil_core::config::DEFAULT_RECORD_PROPERTY.into());
    format!("wasm.{property}")
}

/// Loads and runs one capture file.
pub fn replay_file(plugin: &Plugin, path: &Path) -> ReplayResult {
    replay_file_live(plugin, path, &[])
}

/// Replays a capture file, sending the callouts of the `live` clusters to real addresses.
pub fn replay_file_live(
    plugin: &Plugin,
    path: &Path,
    live: &[(String, std::net::SocketAddr)],
) -> ReplayResult {
    match capture::load(path) {
        Ok(loaded) => run_live(plugin, &loaded, live),
        Err(e) => {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            ReplayResult::failed(name, e.0, true)
        }
    }
}

/// FNV-1a of a capture's name.
fn seed_from(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs a loaded capture.
pub fn run(plugin: &Plugin, loaded: &LoadedCapture) -> ReplayResult {
    run_live(plugin, loaded, &[])
}

/// Runs a loaded capture; callouts to the `live` clusters go to their real addresses
/// instead of the capture's script.
pub fn run_live(
    plugin: &Plugin,
    loaded: &LoadedCapture,
    live: &[(String, std::net::SocketAddr)],
) -> ReplayResult {
    let c = &loaded.capture;
    let mut clusters: Vec<String> = loaded.callouts.keys().cloned().collect();
    clusters.extend(live.iter().map(|(name, _)| name.clone()));
    let options = VmOptions {
        plugin_config: loaded.config_bytes.clone(),
        env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        now_nanos: loaded.now_nanos,
        clusters,
        // Each capture is its own Envoy worker: a seed from its name gives it its own chain
        // id (the same every run), so the records of several replays verify together.
        random_seed: seed_from(&c.name),
        ..VmOptions::default()
    };
    let mut vm = match Vm::start(plugin, options) {
        Ok(vm) => vm,
        Err(e) => return ReplayResult::failed(c.name.clone(), e.to_string(), false),
    };
    let mut exchange = Exchange {
        script: loaded
            .callouts
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect(),
        errors: Vec::new(),
        stopped: false,
        live: LiveClusters::new(live.iter().cloned()),
    };
    let outcome = exchange.drive(&mut vm, loaded);
    let mut result = collect(
        &vm,
        c.name.clone(),
        outcome.as_ref().ok().copied(),
        &record_key(&loaded.config_bytes),
    );
    if let Err(e) = outcome {
        // Envoy fails the stream closed when the VM traps: a 503 local reply
        // (context.cc failStream), and the filter is not called again.
        result.outcome = Some("local_response".into());
        result.status = Some(503);
        result.client_headers = vec![(":status".into(), "503".into())];
        result.client_body = String::new();
        exchange.errors.insert(0, e.to_string());
    }
    if !exchange.errors.is_empty() {
        result.error = Some(exchange.errors.join("; "));
    }
    if let Some(expect) = &c.expect {
        result.expect_failures = check_expectations(expect, &result, vm.logs());
        result.expect_ok = Some(result.expect_failures.is_empty());
    }
    result.logs = vm.logs().to_vec();
    result
}

/// How many ticks a replay waits for a held exchange before calling it stuck.
const MAX_TICKS: usize = 500;

struct Exchange {
    script: BTreeMap<String, VecDeque<CallAnswer>>,
    errors: Vec<String>,
    stopped: bool,
    live: LiveClusters,
}

/// Longest a replay waits for one live callout's answer beyond its own timeout.
const LIVE_WAIT: Duration = Duration::from_secs(600);

impl Exchange {
    /// Plays the capture; returns the stream's context id.
    fn drive(&mut self, vm: &mut Vm, loaded: &LoadedCapture) -> Result<u32, HostError> {
        let c = &loaded.capture;
        let id = vm.create_stream()?;
        let req = &c.request;
        let n = loaded.request_body.len();
        vm.request_headers(id, &req.headers, n == 0 && req.trailers.is_none())?;
        self.pump(vm)?;
        for (i, chunk) in loaded.request_body.iter().enumerate() {
            vm.request_body(id, chunk, i + 1 == n && req.trailers.is_none())?;
            self.pump(vm)?;
        }
        if let Some(t) = &req.trailers {
            vm.request_trailers(id, t)?;
            self.pump(vm)?;
        }
        self.wait_on_ticks(vm, id, |s| s.request.sent_end)?;
        let stream = vm
            .stream(id)
            .ok_or_else(|| HostError::Usage("stream vanished".into()))?;
        let answered_locally = stream.local_reply_started || stream.reset.is_some();
        if !answered_locally && !self.stopped {
            if !stream.request.sent_end {
                self.errors.push("the filter held the request and neither forwarded it nor answered it, with no callout pending".into());
            } else if let Some(up) = &c.upstream {
                let n = loaded.upstream_body.len();
                vm.response_headers(id, &up.headers, n == 0 && up.trailers.is_none())?;
                self.pump(vm)?;
                for (i, chunk) in loaded.upstream_body.iter().enumerate() {
                    vm.response_body(id, chunk, i + 1 == n && up.trailers.is_none())?;
                    self.pump(vm)?;
                }
                if let Some(t) = &up.trailers {
                    vm.response_trailers(id, t)?;
                    self.pump(vm)?;
                }
                self.wait_on_ticks(vm, id, |s| s.response.sent_end)?;
                let stream = vm
                    .stream(id)
                    .ok_or_else(|| HostError::Usage("stream vanished".into()))?;
                if !stream.response.sent_end && stream.reset.is_none() && !self.stopped {
                    self.errors.push("the filter held the response and never released it, with no callout pending".into());
                }
            } else {
                self.errors.push(
                    "the request reached the model server but the capture has no `upstream` answer"
                        .into(),
                );
            }
        }
        vm.complete_stream(id)?;
        Ok(id)
    }

    /// While the filter holds this direction with no callout pending but a tick running,
    /// lets time pass tick by tick (Envoy's timer keeps firing), answering any callouts the
    /// ticks start, until the direction is released, answered, or [`MAX_TICKS`] passed.
    fn wait_on_ticks(
        &mut self,
        vm: &mut Vm,
        id: u32,
        released: impl Fn(&crate::state::Stream) -> bool,
    ) -> Result<(), HostError> {
        for _ in 0..MAX_TICKS {
            let Some(s) = vm.stream(id) else { break };
            let period = vm.state().tick_period_ms as u64;
            if self.stopped
                || released(s)
                || s.local_reply_started
                || s.reset.is_some()
                || period == 0
            {
                break;
            }
            vm.advance(period * 1_000_000)?;
            self.pump(vm)?;
        }
        Ok(())
    }

    /// Answers pending callouts from the script until none is pending.
    fn pump(&mut self, vm: &mut Vm) -> Result<(), HostError> {
        for cluster in std::mem::take(&mut vm.state_mut().unknown_cluster_calls) {
            self.errors.push(format!("the filter called cluster {cluster:?}, which the capture's `callouts` does not script (the filter got BadArgument)"));
        }
        while !self.stopped {
            if self.live.waiting(vm) {
                self.live.pump(vm, LIVE_WAIT)?;
                continue;
            }
            let Some(call) = vm.state().pending_calls.values().next().cloned() else {
                break;
            };
            match self
                .script
                .get_mut(&call.cluster)
                .and_then(VecDeque::pop_front)
            {
                Some(CallAnswer::Timeout) if call.timeout_ms > 0 => {
                    vm.advance(call.timeout_ms as u64 * 1_000_000)?
                }
                Some(answer) => vm.answer_call(call.token, answer)?,
                None => {
                    let path = call
                        .headers
                        .iter()
                        .find(|(k, _)| k == ":path")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("");
                    self.errors.push(format!("unscripted callout to cluster {:?} ({path}): callouts.{} has no answer left", call.cluster, call.cluster));
                    self.stopped = true;
                }
            }
        }
        Ok(())
    }
}

fn collect(vm: &Vm, name: String, id: Option<u32>, record_key: &str) -> ReplayResult {
    let mut result = ReplayResult::failed(name, String::new(), false);
    result.error = None;
    result.callouts = vm
        .state()
        .calls_made
        .iter()
        .map(|c| CalloutSeen {
            cluster: c.cluster.clone(),
            headers: c.headers.clone(),
            body: String::from_utf8_lossy(&c.body).into_owned(),
        })
        .collect();
    let Some(stream) = id
        .and_then(|id| vm.stream(id))
        .or_else(|| vm.state().streams.values().next())
    else {
        return result;
    };
    let response = &stream.response;
    result.client_headers = response.sent_headers.clone().unwrap_or_default();
    result.client_body = String::from_utf8_lossy(&response.sent_body).into_owned();
    result.status = Some(
        response
            .sent_headers
            .as_ref()
            .and_then(|h| h.iter().find(|(k, _)| k == ":status"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0),
    );
    result.outcome = Some(
        if stream.local_reply_started {
            "local_response"
        } else {
            "forwarded"
        }
        .into(),
    );
    result.upstream_request = stream
        .request
        .sent_headers
        .as_ref()
        .map(|h| UpstreamRequest {
            headers: h.clone(),
            body: String::from_utf8_lossy(&stream.request.sent_body).into_owned(),
        });
    result.record = match stream
        .access_log
        .as_ref()
        .and_then(|state| state.get(record_key))
    {
        Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        }),
        None => serde_json::Value::Null,
    };
    result
}

fn header<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn check_headers(
    what: &str,
    pairs: &Pairs,
    want: &BTreeMap<String, Option<String>>,
    failures: &mut Vec<String>,
) {
    for (name, expected) in want {
        let got = header(pairs, name);
        if got != expected.as_deref() {
            failures.push(format!(
                "{what} header {name}: expected {expected:?}, got {got:?}"
            ));
        }
    }
}

/// Every expectation that did not hold, as a sentence.
pub fn check_expectations(
    expect: &capture::Expect,
    r: &ReplayResult,
    logs: &[crate::LogLine],
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(outcome) = &expect.outcome {
        if r.outcome.as_deref() != Some(outcome) {
            failures.push(format!(
                "outcome: expected {outcome:?}, got {:?}",
                r.outcome
            ));
        }
    }
    if let Some(status) = expect.status {
        if r.status != Some(status) {
            failures.push(format!("status: expected {status}, got {:?}", r.status));
        }
    }
    check_headers(
        "client",
        &r.client_headers,
        &expect.client_headers,
        &mut failures,
    );
    for needle in &expect.client_body_contains {
        if !r.client_body.contains(needle) {
            failures.push(format!("client body does not contain {needle:?}"));
        }
    }
    for needle in &expect.client_body_excludes {
        if r.client_body.contains(needle) {
            failures.push(format!("client body contains {needle:?}"));
        }
    }
    let upstream = r.upstream_request.clone();
    if !expect.upstream_headers.is_empty() || !expect.upstream_body_contains.is_empty() {
        match &upstream {
            None => failures.push("nothing reached the model server".into()),
            Some(up) => {
                check_headers(
                    "upstream",
                    &up.headers,
                    &expect.upstream_headers,
                    &mut failures,
                );
                for needle in &expect.upstream_body_contains {
                    if !up.body.contains(needle) {
                        failures.push(format!("upstream body does not contain {needle:?}"));
                    }
                }
            }
        }
    }
    if let Some(n) = expect.callouts {
        if r.callouts.len() != n {
            failures.push(format!("callouts: expected {n}, got {}", r.callouts.len()));
        }
    }
    for (pointer, want) in &expect.record {
        let got = r.record.pointer(pointer);
        if got != Some(want) {
            failures.push(format!(
                "record {pointer}: expected {want}, got {}",
                got.map(ToString::to_string)
                    .unwrap_or_else(|| "nothing".into())
            ));
        }
    }
    for needle in &expect.log_contains {
        if !logs.iter().any(|l| l.message.contains(needle)) {
            failures.push(format!("no log line contains {needle:?}"));
        }
    }
    failures
}
