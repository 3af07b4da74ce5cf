//! The twin scenario table (testdata/gate/scenarios.json): each decision path once, run
//! natively against the gate (here, [`run_native`]) and through `vigil.wasm` in the host
//! (host/tests/gate_twin.rs). Both produce an [`Ending`] and check it against the same
//! [`Expect`], so the gate and the compiled filter cannot drift apart. Test material: nothing
//! in the filter calls it, so it is not in `vigil.wasm`.

use super::{Callers, Cx, Flow, Gate, Phase, Reply, RequestStart, Secrets, ServiceCall, Step};
use crate::approval::protocol::TicketRequest;
use crate::identity::verifier::Verifier;
use crate::record::Route;
use crate::PluginConfig;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// none | inline | remote | remote_fails
    pub identity: String,
    #[serde(default)]
    pub policy: Value,
    /// Adds the `wires` rule (prompt "wire transfer" requires approval) and the service.
    #[serde(default)]
    pub approval_rule: bool,
    pub request: Request,
    #[serde(default)]
    pub approval: Vec<Answer>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub token: bool,
    /// Absent: a body-less request.
    pub body: Option<Vec<String>>,
    #[serde(default)]
    pub trailers: bool,
}

/// One answer of the approval service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub status: Option<String>,
    #[serde(default)]
    pub granted: bool,
    #[serde(default)]
    pub garbage: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub forwarded: bool,
    pub status: Option<u32>,
    pub code: Option<String>,
    pub decision: String,
    pub rule_id: Option<String>,
    pub approval_status: Option<String>,
    #[serde(default)]
    pub shadow: Vec<String>,
    #[serde(default)]
    pub token_stripped: bool,
}

/// How one run of a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub forwarded: bool,
    /// The refusal's status and code, when Vigil answered itself.
    pub refused: Option<(u32, String)>,
    pub decision: String,
    pub rule_id: Option<String>,
    pub approval_status: Option<String>,
    pub shadow: Vec<String>,
    /// The caller's token did not reach the model server (true when no headers went on).
    pub token_stripped: bool,
}

impl Expect {
    /// What differs between this expectation and how a run ended (empty: none).
    pub fn differences(&self, e: &Ending) -> Vec<String> {
        let mut d = Vec::new();
        let mut check = |what: &str, want: String, got: String| {
            if want != got {
                d.push(format!("{what}: expected {want}, got {got}"));
            }
        };
        check(
            "forwarded",
            self.forwarded.to_string(),
            e.forwarded.to_string(),
        );
        if let Some(status) = self.status {
            check(
                "refusal",
                format!("{status} {}", self.code.as_deref().unwrap_or("?")),
                e.refused
                    .as_ref()
                    .map_or("none".into(), |(s, c)| format!("{s} {c}")),
            );
        }
        check("decision", self.decision.clone(), e.decision.clone());
        if self.rule_id.is_some() {
            check(
                "rule_id",
                format!("{:?}", self.rule_id),
                format!("{:?}", e.rule_id),
            );
        }
        check(
            "approval status",
            format!("{:?}", self.approval_status),
            format!("{:?}", e.approval_status),
        );
        check(
            "shadow",
            format!("{:?}", self.shadow),
            format!("{:?}", e.shadow),
        );
        if self.token_stripped {
            check(
                "token stripped",
                "true".into(),
                e.token_stripped.to_string(),
            );
        }
        d
    }
}

impl Scenario {
    /// The scenario's policy: its own fields over a base with masking off, the identity
    /// provider its mode names (with `vector`'s keys), and the approval rule when asked.
    pub fn policy(&self, vector: &Value) -> Value {
        let mut p = json!({"id": "twin", "version": "1", "masking": {"entities": {}}});
        let provider = |keys: Value| {
            let mut provider = json!({"name": "corp", "issuer": vector["policy"]["issuer"],
                "algorithms": vector["policy"]["allowed_algs"]});
            if let (Some(o), Some(k)) = (provider.as_object_mut(), keys.as_object()) {
                o.extend(k.clone());
            }
            json!({"providers": [provider]})
        };
        match self.identity.as_str() {
            "inline" => p["identity"] = provider(json!({"jwks": vector["jwks"]})),
            "remote" | "remote_fails" => {
                p["identity"] = provider(json!({"remote_jwks": {"cluster": "idp",
                    "uri": "https://idp.bank.internal/jwks", "cache_duration_s": 600, "timeout_ms": 500}}))
            }
            _ => {}
        }
        if self.approval_rule {
            p["rules"] = json!([{"id": "wires", "when": {"prompt": {"matches": ["(?i)wire transfer"]}},
                "action": {"type": "require_approval", "approvers": ["risk"]}}]);
        }
        if let (Some(o), Some(extra)) = (p.as_object_mut(), self.policy.as_object()) {
            o.extend(extra.clone());
        }
        if self.approval_rule || p.get("default_action").is_some() {
            p["approval"] = json!({"cluster": "approvals"});
        }
        p
    }

    /// The request headers, the caller's token included when the scenario sends it.
    pub fn headers(&self, vector: &Value) -> Vec<(String, String)> {
        let mut h = vec![
            (":method".to_string(), self.request.method.clone()),
            (":path".to_string(), self.request.path.clone()),
            (":authority".to_string(), "models".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("x-request-id".to_string(), "twin".to_string()),
        ];
        if self.request.token {
            let token = vector["token"].as_str().unwrap_or_default();
            h.push(("authorization".into(), format!("Bearer {token}")));
        }
        h
    }
}

impl Answer {
    /// The service's answer to a call about the ticket `opened` asked for, at `now_ms`.
    pub fn to_http(&self, opened: &TicketRequest, now_ms: i64) -> (u16, Vec<u8>) {
        if self.garbage {
            return (200, b"<html>oops</html>".to_vec());
        }
        let status = self.status.as_deref().unwrap_or("pending");
        let body = honest_ticket(opened, status, self.granted, now_ms);
        (200, body.to_string().into_bytes())
    }
}

/// What an honest service answers about the ticket `opened` asked for, at `now_ms`: the
/// caller, rule and approver groups echoed, lifetimes and uses within the rule's. Tests
/// tamper with it to play a forger.
pub fn honest_ticket(opened: &TicketRequest, status: &str, granted: bool, now_ms: i64) -> Value {
    let at = |ms: i64| crate::time::format_rfc3339_millis((ms.max(0) as u64) * 1_000_000);
    let decided = status != "pending";
    let expires = if decided {
        now_ms + (opened.approved_ttl_s as i64) * 1000
    } else {
        now_ms + (opened.ttl_s as i64) * 1000
    };
    let mut t = json!({"id": "t-1", "status": status, "request_digest": opened.request_digest,
        "rule_id": opened.rule_id, "approver_groups": opened.approver_groups,
        "subject": opened.subject, "issuer": opened.issuer,
        "expires_at": at(expires), "granted": granted,
        "uses": u32::from(granted), "max_uses": opened.uses});
    if decided {
        t["approver"] = json!("officer@bank.test");
        t["decided_at"] = json!(at(now_ms));
        t["reason"] = json!("checked");
    }
    t
}

/// The ticket request an approval call opens (its create-or-get body; consume and poll calls
/// have none).
pub fn open_request(call: &ServiceCall) -> Option<TicketRequest> {
    serde_json::from_slice(call.body.as_deref()?).ok()
}

/// Runs a scenario natively: the gate fed as the filter feeds it, its steps carried out on a
/// model of the request (headers edited, approval calls answered from the script, key sets
/// fetched with the vector's keys).
pub fn run_native(s: &Scenario, vector: &Value) -> Result<Ending, String> {
    let config = PluginConfig::parse(s.policy(vector).to_string().as_bytes())
        .map_err(|e| format!("policy: {e:?}"))?;
    let mut verifier = Verifier::new(&config.providers, 64);
    let secrets = Secrets::default();
    let now_s = vector["policy"]["now"].as_u64().unwrap_or(0);
    let clock = move || now_s * 1_000_000_000;
    let mut headers = s.headers(vector);
    let mut gate = Gate::new();
    let mut run = NativeRun::default();
    let body: Vec<Vec<u8>> = s
        .request
        .body
        .iter()
        .flatten()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    let bodyless = s.request.body.is_none() && !s.request.trailers;
    let start = RequestStart {
        route: Route {
            method: s.request.method.clone(),
            path: s.request.path.clone(),
            authority: "models".into(),
        },
        request_id: "twin".into(),
        client_address: None,
    };
    let mut answers = s.approval.iter();
    let mut flow = {
        let mut cx = cx(&config, &mut verifier, &secrets, &clock);
        let snapshot = headers.clone();
        let header = |n: &str| {
            snapshot
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        let reply = gate.request_headers(&mut cx, start, &header, bodyless);
        run.take(reply, &mut headers)
    };
    // Held for keys: the root fetches them, then settles the request through its gate.
    if let Some(provider) = run.fetch.take() {
        if let Some(r) = verifier.remote_mut(provider) {
            r.started();
            let answer = match s.identity.as_str() {
                "remote_fails" => r.answered(Some(503), b"", now_s as i64),
                _ => r.answered(
                    Some(200),
                    vector["jwks"].to_string().as_bytes(),
                    now_s as i64,
                ),
            };
            let _ = answer;
        }
        let mut cx = cx(&config, &mut verifier, &secrets, &clock);
        flow = run.take(gate.keys_settled(&mut cx), &mut headers);
    }
    answer_calls(
        &mut run,
        &mut gate,
        &config,
        &mut verifier,
        &secrets,
        &clock,
        &mut answers,
        &mut headers,
        &mut flow,
    )?;
    // The body reaches the filter once the headers went on.
    if flow == Flow::Continue && run.refused.is_none() {
        let mut buffered = Vec::new();
        let chunks = body.len();
        for (i, chunk) in body.iter().enumerate() {
            buffered.extend_from_slice(chunk);
            let end = i + 1 == chunks && !s.request.trailers;
            let seen = buffered.clone();
            let mut cx = cx(&config, &mut verifier, &secrets, &clock);
            let reply = gate.request_body(&mut cx, seen.len(), end, &|| seen.clone());
            flow = run.take(reply, &mut headers);
            if run.refused.is_some() {
                break;
            }
            if flow == Flow::Continue {
                buffered.clear();
            }
        }
        if s.request.trailers && run.refused.is_none() {
            let seen = buffered.clone();
            let mut cx = cx(&config, &mut verifier, &secrets, &clock);
            flow = run.take(
                gate.request_trailers(&mut cx, &|| seen.clone()),
                &mut headers,
            );
        }
        answer_calls(
            &mut run,
            &mut gate,
            &config,
            &mut verifier,
            &secrets,
            &clock,
            &mut answers,
            &mut headers,
            &mut flow,
        )?;
    }
    let log = gate.log();
    let decision = log.decision();
    Ok(Ending {
        forwarded: gate.phase() == Phase::Admitted && run.refused.is_none(),
        refused: run.refused,
        decision: decision.action.as_str().to_string(),
        rule_id: decision.rule_id.clone(),
        approval_status: log.approval().map(|a| a.status.name().to_string()),
        shadow: decision.shadow.iter().map(|m| m.rule_id.clone()).collect(),
        token_stripped: !run.went_on || !headers.iter().any(|(k, _)| k == "authorization"),
    })
}

fn cx<'a>(
    config: &'a PluginConfig,
    verifier: &'a mut Verifier,
    secrets: &'a Secrets,
    clock: &'a dyn Fn() -> u64,
) -> Cx<'a> {
    Cx {
        config,
        callers: Callers::Verify(verifier),
        secrets,
        clock,
        verbose: false,
    }
}

#[allow(clippy::too_many_arguments)]
fn answer_calls<'s>(
    run: &mut NativeRun,
    gate: &mut Gate,
    config: &PluginConfig,
    verifier: &mut Verifier,
    secrets: &Secrets,
    clock: &dyn Fn() -> u64,
    answers: &mut impl Iterator<Item = &'s Answer>,
    headers: &mut Vec<(String, String)>,
    flow: &mut Flow,
) -> Result<(), String> {
    while let Some(call) = run.call.take() {
        let opened = open_request(&call)
            .or_else(|| run.opened.clone())
            .ok_or("an approval call before any ticket was opened")?;
        run.opened = Some(opened.clone());
        let answer = answers
            .next()
            .ok_or_else(|| format!("the script has no answer for {:?}", call.headers))?;
        let mut cx = cx(config, verifier, secrets, clock);
        let now_ms = (clock() / 1_000_000) as i64;
        let reply = gate.approval_answer(&mut cx, Ok(answer.to_http(&opened, now_ms)));
        *flow = run.take(reply, headers);
    }
    Ok(())
}

#[derive(Default)]
struct NativeRun {
    fetch: Option<usize>,
    call: Option<ServiceCall>,
    opened: Option<TicketRequest>,
    refused: Option<(u32, String)>,
    /// The request headers went on to the model server.
    went_on: bool,
}

impl NativeRun {
    fn take(&mut self, reply: Reply, headers: &mut Vec<(String, String)>) -> Flow {
        for step in reply.steps {
            match step {
                Step::RequestHeader(name, value) => {
                    headers.retain(|(k, _)| *k != name);
                    if let Some(v) = value {
                        headers.push((name.into_owned(), v.into_owned()));
                    }
                }
                Step::FetchKeys(p) => self.fetch = Some(p),
                Step::CallApproval(c) => self.call = Some(c),
                Step::Refuse(r) => self.refused = Some((r.status, r.code.code().to_string())),
                _ => {}
            }
        }
        self.went_on |= reply.flow == Flow::Continue && self.refused.is_none();
        reply.flow
    }
}
