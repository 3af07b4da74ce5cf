//! Remote key sets in the filter: fetching them through the IdP's cluster, holding requests
//! that arrive while the first fetch (or an unknown-`kid` refetch) is in flight, and settling
//! each held request when the answer comes, whichever context it lands in.
//!
//! Fetches are always dispatched by the root context, on its tick: a callout belongs to the
//! context that dispatched it (the SDK routes the answer there, and Envoy cancels a
//! stream's callouts when the stream ends), so a fetch started by a request whose client
//! then left would never finish. A request that needs keys asks for a fetch and speeds the
//! tick up to [`FAST_TICK`] until the answer is in.
//!
//! A held request is decided from the headers it saved, then acted on through
//! `set_effective_context` (Envoy's way to act on another stream from a callout answer):
//! its token is stripped and it is resumed, or it gets its 401. The stream itself picks up
//! the verdict for its record in its next callback.

use crate::logging::ctx_log;
use crate::models::{self, ModelCheck};
use crate::policy;
use crate::refusal::Refusal;
use crate::root::Shared;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm::types::MapType;
use std::time::Duration;
use vigil_core::identity::authenticate::authenticate;
use vigil_core::identity::jwks::{KeySet, MAX_JWKS_BYTES};
use vigil_core::identity::remote::RemoteKeys;
use vigil_core::identity::{AuthError, Identity};

/// The tick while requests wait for a fetch, and otherwise.
pub const FAST_TICK: Duration = Duration::from_millis(20);
pub const SLOW_TICK: Duration = Duration::from_secs(1);

/// A request held until its provider's keys arrive.
pub struct Waiting {
    pub context_id: u32,
    pub provider: usize,
    /// Each provider's token header as the request carried it.
    pub headers: Vec<(String, Option<String>)>,
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub end_of_stream: bool,
}

/// What was decided for a held request, for its stream to record.
pub struct Verdict {
    pub identity: Result<Identity, AuthError>,
    pub model: Option<String>,
    /// The reason of a refusal after identity (model access).
    pub refusal: Option<String>,
    pub await_body: bool,
    pub model_in_body: bool,
    pub list: bool,
    /// What the rules decided, when they could decide before the body.
    pub rules: Option<vigil_core::rules::Verdict>,
    /// The headers the rules refer to, for rules that run at the end of the body.
    pub rule_headers: Vec<(String, Option<String>)>,
}

/// The key set of provider `index`: inline, or the last good remote one.
pub fn keys_of<'a>(
    shared: &'a Shared,
    remote: &'a [Option<RemoteKeys>],
    index: usize,
) -> Option<&'a KeySet> {
    let provider = shared.config.providers.get(index)?;
    provider
        .inline_keys()
        .or_else(|| remote.get(index)?.as_ref()?.keys())
}

/// Asks the root to fetch provider `index`'s key set soon; called from a stream.
pub fn request_fetch(shared: &Shared, index: usize) {
    if let Some(Some(r)) = shared.remote.borrow_mut().get_mut(index) {
        r.want();
    }
    // The tick belongs to the root context whichever context sets it (Envoy context.cc
    // setTimerPeriod uses root_context()->id()).
    let _ = hostcalls::set_tick_period(FAST_TICK);
}

/// Starts fetching provider `index`'s key set from the root context `ctx`. When the cluster
/// refuses the call, the fetch counts as failed, so held requests fail closed.
pub fn fetch(shared: &Shared, index: usize, ctx: &dyn Context, context_id: u32) {
    let mut remote = shared.remote.borrow_mut();
    let Some(Some(r)) = remote.get_mut(index) else {
        return;
    };
    let (authority, path) = r.authority_and_path();
    let headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", authority.as_str()),
        ("accept", "application/json"),
    ];
    let name = &shared.config.providers[index].name;
    r.started();
    match ctx.dispatch_http_call(
        &r.settings.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(r.settings.timeout_ms),
    ) {
        Ok(token) => {
            shared.fetches.borrow_mut().insert(token, index);
            ctx_log!(
                info,
                context_id,
                "fetching key set of provider {} from cluster {}",
                name,
                r.settings.cluster
            );
        }
        Err(status) => {
            r.failed(format!(
                "cluster {} refused the call ({status:?})",
                r.settings.cluster
            ));
            ctx_log!(
                error,
                context_id,
                "cannot fetch key set of provider {}: cluster {} refused the call ({:?})",
                name,
                r.settings.cluster,
                status
            );
        }
    }
}

/// Takes a callout answer if it is a key-set fetch (false otherwise), then settles the
/// requests that were waiting for it.
pub fn answered(
    shared: &Shared,
    token: u32,
    ctx: &dyn Context,
    context_id: u32,
    now: i64,
    num_headers: usize,
    body_size: usize,
) -> bool {
    let Some(index) = shared.fetches.borrow_mut().remove(&token) else {
        return false;
    };
    let name = shared.config.providers[index].name.clone();
    // A reset arrives with no headers (Envoy onFailure); a timeout as the router's 504.
    let status = if num_headers == 0 {
        None
    } else {
        ctx.get_http_call_response_header(":status")
            .and_then(|s| s.parse().ok())
    };
    let result = {
        let mut remote = shared.remote.borrow_mut();
        match remote.get_mut(index).and_then(Option::as_mut) {
            Some(r) if body_size > MAX_JWKS_BYTES => {
                let why = format!(
                    "the key set is {body_size} bytes, over the {MAX_JWKS_BYTES}-byte limit"
                );
                r.failed(why.clone());
                Err(why)
            }
            Some(r) => r.answered(
                status,
                &ctx.get_http_call_response_body(0, body_size)
                    .unwrap_or_default(),
                now,
            ),
            None => Err("not a remote provider".into()),
        }
    };
    match result {
        Ok(n) => ctx_log!(
            info,
            context_id,
            "key set of provider {} loaded: {} usable key(s)",
            name,
            n
        ),
        Err(e) => ctx_log!(
            error,
            context_id,
            "key set of provider {} refused, keeping the last good set if any: {}",
            name,
            e
        ),
    }
    settle(shared, context_id, now);
    true
}

/// The model and rule checks a held request would have had at its headers.
fn model_check(
    shared: &Shared,
    w: &Waiting,
    identity: &Identity,
    settled: &mut Verdict,
) -> Result<(), Refusal> {
    if let Some(access) = &shared.config.models {
        let header = |name: &str| {
            w.headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
        };
        match models::from_headers(access, &w.method, &w.path, header, w.end_of_stream)? {
            ModelCheck::NotNeeded { list } => settled.list = list,
            ModelCheck::AwaitBody => {
                settled.await_body = true;
                settled.model_in_body = true;
            }
            ModelCheck::Named(model) => {
                settled.model = Some(model.clone());
                models::admit(access, &model, Some(identity))?;
            }
        }
    }
    let rules = &shared.config.rules;
    if rules.needs_body() && !w.end_of_stream {
        settled.await_body = true;
    }
    if settled.await_body {
        return Ok(());
    }
    let facts = policy::Facts {
        identity: Some(identity),
        method: &w.method,
        path: &w.path,
        model: settled.model.as_deref(),
        headers: &settled.rule_headers,
        body: None,
        body_bytes: 0,
    };
    let verdict = policy::evaluate(shared, &facts);
    let refusal = policy::refusal(&verdict);
    settled.rules = Some(verdict);
    refusal.map_or(Ok(()), Err)
}

/// Decides every held request whose provider's fetch is no longer in flight.
pub fn settle(shared: &Shared, current_context: u32, now: i64) {
    let ready: Vec<Waiting> = {
        let remote = shared.remote.borrow();
        let mut waiting = shared.waiting.borrow_mut();
        let (ready, still): (Vec<Waiting>, Vec<Waiting>) = waiting.drain(..).partition(|w| {
            !remote
                .get(w.provider)
                .and_then(Option::as_ref)
                .is_some_and(RemoteKeys::pending)
        });
        *waiting = still;
        ready
    };
    if shared.waiting.borrow().is_empty() {
        let _ = hostcalls::set_tick_period(SLOW_TICK);
    }
    for w in ready {
        let verdict = {
            let remote = shared.remote.borrow();
            let header = |name: &str| {
                w.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.clone())
            };
            authenticate(
                &shared.config.providers,
                header,
                |i| keys_of(shared, &remote, i),
                &mut shared.tokens.borrow_mut(),
                now,
            )
        };
        // The held stream may have ended meanwhile (client gone): Envoy refuses the switch.
        if hostcalls::set_effective_context(w.context_id).is_err() {
            continue;
        }
        let rule_names = shared.config.rules.header_names();
        let rule_headers = w
            .headers
            .iter()
            .filter(|(n, _)| rule_names.contains(n))
            .cloned()
            .collect();
        let mut settled = Verdict {
            identity: verdict,
            model: None,
            refusal: None,
            await_body: false,
            model_in_body: false,
            list: false,
            rules: None,
            rule_headers,
        };
        let refusal = match settled.identity.clone() {
            Ok(identity) => model_check(shared, &w, &identity, &mut settled).err(),
            Err(e) => Some(Refusal::unauthenticated(e)),
        };
        match refusal {
            None => {
                if let Ok(identity) = &settled.identity {
                    ctx_log!(
                        debug,
                        w.context_id,
                        "identity: {:?} via provider {} (after key set fetch)",
                        identity.subject,
                        identity.provider
                    );
                }
                for provider in &shared.config.providers {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        &provider.from_header.name,
                        None,
                    );
                }
                if let (Some(c), Some(value)) =
                    (&shared.config.upstream_credential, &shared.credential)
                {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        &c.header,
                        Some(value),
                    );
                }
                let _ = hostcalls::resume_http_request();
            }
            Some(refusal) => {
                ctx_log!(
                    info,
                    w.context_id,
                    "refused with {}: {}",
                    refusal.status,
                    refusal.reason()
                );
                if settled.identity.is_ok() {
                    settled.refusal = Some(refusal.reason());
                }
                let headers: Vec<(&str, &str)> = refusal
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let _ = hostcalls::send_http_response(
                    refusal.status,
                    headers,
                    Some(refusal.body(&w.request_id).as_bytes()),
                );
            }
        }
        shared.verdicts.borrow_mut().insert(w.context_id, settled);
    }
    let _ = hostcalls::set_effective_context(current_context);
}
