//! Everything one VM instance's host keeps: clock, logs, contexts and their streams, callouts,
//! shared data, metrics. It lives in the wasmtime `Store`, so each `Vm` has its own and tests
//! run in parallel without globals. Shared data and queues sit behind an `Arc` so that several
//! VMs (Envoy workers) can share them when a test asks for it.

use crate::abi::{LogLevel, MetricType, Pairs};
use crate::headers::HeaderMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One line the filter logged (through `proxy_log` or WASI stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// Shared key-value data with compare-and-swap, as in proxy-wasm-cpp-host `SharedData`.
#[derive(Debug, Default)]
pub struct SharedData {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    queues: Vec<SharedQueue>,
}

/// The entry changed since the caller read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasMismatch;

#[derive(Debug)]
pub struct SharedQueue {
    pub vm_id: String,
    pub name: String,
    pub owner_context: u32,
    pub owner_host: u64,
    pub items: VecDeque<Vec<u8>>,
}

impl SharedData {
    fn next_cas(&mut self) -> u32 {
        // cpp-host starts at 1 and skips 0, which callers use to mean "no CAS check".
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        self.next_cas
    }

    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    /// `cas` 0 writes unconditionally; otherwise it must equal the entry's current CAS.
    pub fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch> {
        if cas != 0 {
            match self.entries.get(key) {
                Some((_, current)) if *current == cas => {}
                _ => return Err(CasMismatch),
            }
        }
        let cas = self.next_cas();
        self.entries.insert(key.to_string(), (value.to_vec(), cas));
        Ok(())
    }

    pub fn register_queue(
        &mut self,
        vm_id: &str,
        name: &str,
        owner_context: u32,
        owner_host: u64,
    ) -> u32 {
        if let Some(i) = self
            .queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
        {
            self.queues[i].owner_context = owner_context;
            self.queues[i].owner_host = owner_host;
            return i as u32 + 1;
        }
        self.queues.push(SharedQueue {
            vm_id: vm_id.into(),
            name: name.into(),
            owner_context,
            owner_host,
            items: VecDeque::new(),
        });
        self.queues.len() as u32
    }

    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .map(|i| i as u32 + 1)
    }

    pub fn queue(&mut self, id: u32) -> Option<&mut SharedQueue> {
        self.queues.get_mut((id as usize).checked_sub(1)?)
    }
}

/// A metric the filter defined. Ids carry the type in their low two bits, as Envoy's do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Metric {
    pub name: String,
    pub kind: MetricType,
    pub value: i64,
}

/// Where an exchange stands, per direction, as Envoy's filter manager sees this filter.
#[derive(Debug, Default)]
pub struct Direction {
    /// The header map the filter sees and edits; what is forwarded when headers pass.
    pub headers: Option<HeaderMap>,
    pub trailers: Option<HeaderMap>,
    /// Whether the filter may touch the header/trailer map now (Envoy clears its pointer
    /// once the callback returns Continue: context.cc `decodeHeaders`).
    pub headers_visible: bool,
    pub trailers_visible: bool,
    /// The body buffer the filter sees in a body callback: this chunk, or everything it
    /// buffered so far plus this chunk after it returned Pause (StopIterationAndBuffer).
    pub body: Vec<u8>,
    pub buffering: bool,
    /// Headers returned Pause: Envoy turns that into StopAllIterationAndWatermark and holds
    /// body and trailers without calling the filter until it continues.
    pub stopped_all: bool,
    /// Headers returned Pause under `allow_on_headers_stop_iteration`: Envoy's
    /// `StopIteration`. Headers are held (and stay editable) while body callbacks still run.
    pub headers_stopped: bool,
    pub trailers_stopped: bool,
    pub held_body: Vec<u8>,
    pub held_end: bool,
    pub held_trailers: Option<HeaderMap>,
    pub end_seen: bool,
    /// True during a body callback with end_of_stream: the filter may then add trailers
    /// (context.cc `getMap`: `addDecodedTrailers` when `end_of_stream_`).
    pub in_last_body_callback: bool,
    /// Output: what left the filter towards the next hop.
    pub sent_headers: Option<Pairs>,
    pub sent_body: Vec<u8>,
    pub sent_trailers: Option<Pairs>,
    pub sent_end: bool,
}

/// A reply the filter asked Envoy to send (`send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Pairs,
    pub grpc_status: i32,
}

/// Facts about the downstream connection that properties expose.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub source_address: String,
    pub destination_address: String,
    pub connection_id: u64,
    pub protocol: String,
    pub route_name: String,
    pub cluster_name: String,
    pub upstream_address: String,
}

impl Default for ConnectionInfo {
    fn default() -> Self {
        Self {
            source_address: "127.0.0.1:51000".into(),
            destination_address: "127.0.0.1:10000".into(),
            connection_id: 1,
            protocol: "HTTP/1.1".into(),
            route_name: "models".into(),
            cluster_name: "model_server".into(),
            upstream_address: "127.0.0.1:8000".into(),
        }
    }
}

/// One HTTP exchange and the filter's context for it.
#[derive(Debug, Default)]
pub struct Stream {
    pub context_id: u32,
    pub connection: ConnectionInfo,
    pub started_nanos: u64,
    pub request: Direction,
    pub response: Direction,
    /// Envoy filter state written through `set_property`, keyed `wasm.<path>`.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    pub local_reply: Option<LocalReply>,
    /// Why the stream was reset, if it was (close_stream, a local reply after headers went out).
    pub reset: Option<String>,
    pub access_log_phase: bool,
    /// The filter state as the HTTP connection manager's access log read it.
    pub access_log: Option<BTreeMap<String, Vec<u8>>>,
    /// Envoy's response code details (`response.code_details`), absent until something sets
    /// them: the router on upstream headers (`via_upstream`), a local reply (its details, empty
    /// for the Rust SDK's replies), the connection manager when the exchange is cut short.
    pub code_details: Option<String>,
    pub ended: bool,
    /// A local reply is being encoded; a second one resets the stream instead.
    pub local_reply_started: bool,
    /// A reply went to the client without passing through the filter (Envoy's
    /// `sendDirectLocalReply`); the filter hears nothing more of the response.
    pub direct_reply: bool,
    /// When the stream last had traffic to or from the client (the idle timer's start).
    pub last_activity_nanos: u64,
    /// The client sent the whole request (Envoy's `remoteDecodeComplete`).
    pub client_done: bool,
    /// Events from the client so far, and the traffic seen at the last look (stream_end.rs).
    pub client_events: u64,
    pub traffic_mark: u64,
    /// Details of a filter reply dropped for Envoy's buffer-overflow reply, applied after it.
    pub overflow_details: Option<String>,
    /// The VM failed while this stream was in flight (FAIL_CLOSED: Envoy's `failStream`).
    pub failed_by_vm: bool,
}

impl Stream {
    /// A filter-state value as the access log's `%FILTER_STATE(<key>:PLAIN)%` renders it in
    /// `json_format`: a string, or null when the filter set none.
    pub fn logged(&self, key: &str) -> serde_json::Value {
        self.access_log
            .as_ref()
            .and_then(|m| m.get(key))
            .map(|b| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
            .unwrap_or(serde_json::Value::Null)
    }

    /// The status the client got (`:status` of the headers sent), if headers went out.
    pub fn status(&self) -> Option<&str> {
        self.response
            .sent_headers
            .as_ref()
            .and_then(|h| h.iter().find(|(k, _)| k == ":status"))
            .map(|(_, v)| v.as_str())
    }
}

/// A `dispatch_http_call` waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingCall {
    pub token: u32,
    pub context_id: u32,
    pub cluster: String,
    pub headers: Pairs,
    #[serde(with = "crate::bytes_as_text")]
    pub body: Vec<u8>,
    pub trailers: Pairs,
    pub timeout_ms: u32,
    pub dispatched_at_nanos: u64,
}

/// The answer to a callout, delivered as Envoy's async client would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    Response {
        headers: Pairs,
        body: Vec<u8>,
        trailers: Pairs,
    },
    /// Envoy `onFailure(Reset)`: no headers, `get_status` says BrokenConnection "reset".
    Reset,
    /// The router's timeout answer: a 504 response with body "upstream request timeout".
    Timeout,
}

/// What `on_http_call_response` may read while it runs.
#[derive(Debug, Default)]
pub struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// Work Envoy defers until the VM call returns (context.cc `addAfterVmCallAction`).
#[derive(Debug, Clone)]
pub enum Deferred {
    Continue { context_id: u32, request: bool },
    Reset { context_id: u32, request: bool },
    LocalReply { context_id: u32 },
    QueueReady { context_id: u32, queue_id: u32 },
}

/// Names of the plugin as Envoy's config gives them.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
}

impl Default for PluginInfo {
    fn default() -> Self {
        Self {
            name: "vigil".into(),
            root_id: "vigil".into(),
            vm_id: "vigil".into(),
        }
    }
}

/// The state one VM's host keeps.
pub struct HostState {
    /// Distinguishes VMs that share data and queues.
    pub host_id: u64,
    pub now_nanos: u64,
    pub monotonic_nanos: u64,
    pub log_level: LogLevel,
    pub logs: Vec<LogLine>,
    pub env: Vec<(String, String)>,
    pub rng: u64,
    /// `random_get` reads the operating system's generator (VmOptions::os_random).
    pub os_random: bool,
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    pub plugin: PluginInfo,
    pub root_context_id: u32,
    pub next_context_id: u32,
    /// The context the current VM call is for, or the one `set_effective_context` chose.
    pub current_context: u32,
    pub in_vm_call: bool,
    pub streams: HashMap<u32, Stream>,
    pub clusters: BTreeSet<String>,
    pub next_token: u32,
    pub pending_calls: BTreeMap<u32, PendingCall>,
    /// Every callout the filter dispatched, in order, answered or not.
    pub calls_made: Vec<PendingCall>,
    /// Clusters the filter tried to call that the host does not know (answered BadArgument).
    pub unknown_cluster_calls: Vec<String>,
    /// Known clusters with no healthy host: a callout to one fails at once (InternalFailure).
    pub unhealthy_clusters: BTreeSet<String>,
    pub envoy: crate::vm::EnvoySettings,
    /// Fault injection: the next call of this export (for this context) traps, as if the
    /// filter had panicked there.
    pub trap_next: Option<(String, u32)>,
    pub call_response: Option<CallResponse>,
    pub status: (u32, String),
    pub tick_period_ms: u32,
    pub last_tick_nanos: u64,
    pub shared: Arc<Mutex<SharedData>>,
    pub metrics: BTreeMap<u32, Metric>,
    pub next_metric: [u32; 3],
    pub deferred: VecDeque<Deferred>,
    pub done_called: bool,
    /// Every host import the module called, for coverage checks in tests.
    pub calls_seen: BTreeSet<&'static str>,
}

impl HostState {
    pub fn new(shared: Arc<Mutex<SharedData>>) -> Self {
        static NEXT_HOST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            host_id: NEXT_HOST.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            now_nanos: 0,
            monotonic_nanos: 1_000_000_000,
            log_level: LogLevel::Trace,
            logs: Vec::new(),
            env: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            os_random: false,
            vm_config: Vec::new(),
            plugin_config: Vec::new(),
            plugin: PluginInfo::default(),
            root_context_id: 0,
            next_context_id: 1,
            current_context: 0,
            in_vm_call: false,
            streams: HashMap::new(),
            clusters: BTreeSet::new(),
            next_token: 1,
            pending_calls: BTreeMap::new(),
            calls_made: Vec::new(),
            unknown_cluster_calls: Vec::new(),
            unhealthy_clusters: BTreeSet::new(),
            envoy: crate::vm::EnvoySettings::default(),
            trap_next: None,
            call_response: None,
            status: (0, String::new()),
            tick_period_ms: 0,
            last_tick_nanos: 0,
            shared,
            metrics: BTreeMap::new(),
            next_metric: [0, 0, 0],
            deferred: VecDeque::new(),
            done_called: false,
            calls_seen: BTreeSet::new(),
        }
    }

    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.logs.push(LogLine {
            level,
            message: message.into(),
        });
    }

    /// The stream of the current context, if the current context is a stream.
    pub fn current_stream(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.current_context)
    }

    /// splitmix64: deterministic per host, so replays print the same records every run.
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
