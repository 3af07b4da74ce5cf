//! The way in: identity, model access and the rules, in that order, each able to refuse.
//! A request whose key set is not loaded is held, not refused; a request whose model or
//! rules need the body waits for it; a rule that asks for approval hands over to
//! [`super::approval`].

use super::{Callers, Cx, Flow, Gate, Level, Phase, Refusal, RefusalCode, Reply, Step};
use crate::access::{model_in_json, ModelAccess, ModelSource};
use crate::config::PluginConfig;
use crate::identity::{AuthError, Identity};
use crate::rules::{Action, RequestFacts, Verdict};
use serde_json::Value;

impl Gate {
    /// A request header as it was at request headers (`config.decision_headers` only).
    fn saved_header(&self, config: &PluginConfig, name: &str) -> Option<String> {
        let i = config.decision_headers.iter().position(|n| n == name)?;
        self.headers.get(i)?.clone()
    }

    /// Identity, from the saved headers. `may_hold`: a refusal a key-set fetch may change
    /// holds the request instead (at request headers; a held request is decided for good).
    pub(super) fn identify(&mut self, cx: &mut Cx<'_>, may_hold: bool) -> Reply {
        let config = cx.config;
        let now = cx.now_secs();
        let verified: Result<Option<Identity>, AuthError> = match &mut cx.callers {
            Callers::Given(identity) => Ok(identity.clone()),
            Callers::Verify(_) if config.providers.is_empty() => Ok(None),
            Callers::Verify(verifier) => {
                let result = verifier.authenticate(
                    &config.providers,
                    |name| self.saved_header(config, name),
                    now,
                );
                match result {
                    Ok(identity) => Ok(Some(identity)),
                    Err(e) => match verifier.fetch_may_help(&e, now).filter(|_| may_hold) {
                        Some(provider) => {
                            self.phase = Phase::HeldForKeys(provider);
                            self.note(cx, Level::Debug, || {
                                format!(
                                    "held until the key set of provider {} arrives",
                                    config.providers[provider].name
                                )
                            });
                            self.steps.push(Step::FetchKeys(provider));
                            return self.reply(Flow::Pause);
                        }
                        None => Err(e),
                    },
                }
            }
        };
        match verified {
            Err(e) => self.refuse(cx, Refusal::unauthenticated(e)),
            Ok(identity) => {
                if let Some(identity) = identity {
                    self.note(cx, Level::Debug, || {
                        format!(
                            "identity: {} (groups {:?}) via provider {}",
                            identity.subject.as_deref().unwrap_or("(no subject)"),
                            identity.groups,
                            identity.provider
                        )
                    });
                    self.log.identify(identity);
                }
                // The caller's token never reaches the model server.
                for provider in &config.providers {
                    self.steps.push(Step::RequestHeader(
                        provider.from_header.name.clone().into(),
                        None,
                    ));
                }
                self.check_model_at_headers(cx)
            }
        }
    }

    /// Model access from what the headers say (path, header), or wait for the body.
    fn check_model_at_headers(&mut self, cx: &mut Cx<'_>) -> Reply {
        let config = cx.config;
        if let Some(access) = &config.models {
            let (method, path) = (self.log.method(), self.path.as_str());
            if access.is_list_request(method, path) {
                self.list_request = true;
            } else {
                let named = match &access.source {
                    ModelSource::Body if self.bodyless => Err(Refusal::new(
                        400,
                        RefusalCode::ModelMissing,
                        "the request has no body naming a model",
                    )),
                    ModelSource::Body => {
                        self.model_in_body = true;
                        Ok(None)
                    }
                    ModelSource::Path => {
                        ModelAccess::model_from_path(path).map(Some).ok_or_else(|| {
                            Refusal::new(
                                400,
                                RefusalCode::ModelMissing,
                                format!("the path {path:?} names no model"),
                            )
                        })
                    }
                    ModelSource::Header(name) => self
                        .saved_header(config, name)
                        .filter(|m| !m.is_empty())
                        .map(|m| {
                            // A body may name a model too: it must be the same one.
                            self.model_in_header = !self.bodyless;
                            Some(m)
                        })
                        .ok_or_else(|| {
                            Refusal::new(
                                400,
                                RefusalCode::ModelMissing,
                                format!("the request has no {name} header naming a model"),
                            )
                        }),
                };
                match named {
                    Err(refusal) => return self.refuse(cx, refusal),
                    Ok(Some(model)) => {
                        if let Err(refusal) = self.admit_model(cx, access, &model) {
                            return self.refuse(cx, refusal);
                        }
                    }
                    Ok(None) => {}
                }
            }
        }
        let ask_usage = self.may_ask_stream_usage(cx);
        if self.model_in_body
            || self.model_in_header
            || ask_usage
            || (config.rules.needs_body() && !self.bodyless)
        {
            // What the headers decide is decided now: a block by method, path, caller or
            // header is refused before the body comes; an allow needs no body unless the
            // model is named in it.
            if let Some(verdict) = self.verdict_at_headers(cx) {
                let block = matches!(verdict.action, Action::Block { .. });
                if block || !(self.model_in_body || self.model_in_header || ask_usage) {
                    self.note(cx, Level::Debug, || "decided at the headers".into());
                    return self.act_on(cx, verdict, None, b"");
                }
            }
            self.phase = Phase::AwaitingBody;
            if !config.envoy.hold_request_headers {
                // Envoy would withhold the body from a filter that holds the headers.
                self.note(cx, Level::Debug, || {
                    "the body decides: buffering it (the headers go on: no header hold)".into()
                });
                self.forwarded_before_decision = true;
                self.forward_headers(cx);
                return self.reply(Flow::Continue);
            }
            if let Some(body) = self.held_body.take() {
                return self.decide_on_held_body(cx, &body);
            }
            self.note(cx, Level::Debug, || {
                "the body decides: buffering it with the headers held".into()
            });
            return self.reply(Flow::Pause);
        }
        self.decide_rules(cx, None, b"")
    }

    /// Whether a streamed OpenAI-style request may be asked for usage (crate::usage): the
    /// policy wants it, the headers are held (the body's length changes), the request has a
    /// body for chat or completions, and no masked request body replaces it anyway.
    fn may_ask_stream_usage(&self, cx: &Cx<'_>) -> bool {
        let config = cx.config;
        config.record.ask_stream_usage
            && config.envoy.hold_request_headers
            && !self.bodyless
            && self.log.method() == "POST"
            && matches!(
                crate::usage::operation_name(&self.path),
                Some("chat") | Some("text_completion")
            )
            && (!config.masking.mask_request || config.masking.is_off())
    }

    /// The service credential goes in as the headers go on to the model server, never
    /// before: a refused request's headers never carry it.
    pub(super) fn forward_headers(&mut self, cx: &Cx<'_>) {
        if self.headers_forwarded {
            return;
        }
        self.headers_forwarded = true;
        if let (Some(c), Some(value)) = (&cx.config.upstream_credential, &cx.secrets.credential) {
            self.steps.push(Step::RequestHeader(
                c.header.clone().into(),
                Some(value.clone().into()),
            ));
        }
    }

    /// The request is admitted: its headers (and body) go on.
    pub(super) fn admit(&mut self, cx: &Cx<'_>) -> Reply {
        self.phase = Phase::Admitted;
        self.forward_headers(cx);
        self.reply(Flow::Continue)
    }

    /// A body that ended while its request was held for a key set, decided once the keys
    /// came (outside the body's callbacks). With `mask_request` the model must get the masked
    /// body, which can only be written in a body callback: fail closed, the client retries.
    fn decide_on_held_body(&mut self, cx: &mut Cx<'_>, body: &[u8]) -> Reply {
        if cx.config.masking.mask_request && !cx.config.masking.is_off() {
            return self.refuse(
                cx,
                Refusal::new(
                    503,
                    RefusalCode::KeysLoading,
                    "the identity provider's key set was still loading when the request body ended; send the request again",
                )
                .with_header("retry-after", "1"),
            );
        }
        self.decide_on_body(cx, body)
    }

    /// Records the model and admits the caller for it, or says why not.
    fn admit_model(
        &mut self,
        cx: &Cx<'_>,
        access: &ModelAccess,
        model: &str,
    ) -> Result<(), Refusal> {
        self.log.set_model(model);
        let identity = self.log.identity();
        if access.allows(model, identity, &cx.config.provider_names) {
            self.note(cx, Level::Debug, || {
                format!(
                    "model {:?}: the caller may use it",
                    crate::redact::model(model)
                )
            });
            return Ok(());
        }
        let who = match identity {
            Some(i) => format!(
                "{} (groups {:?})",
                i.subject.as_deref().unwrap_or("the caller"),
                i.groups
            ),
            None => "an unauthenticated caller".into(),
        };
        Err(Refusal::new(
            403,
            RefusalCode::ModelDenied,
            format!("{who} may not call model {:?}", crate::redact::model(model)),
        ))
    }

    /// The whole buffered request body: the model it names, then the rules. One parse
    /// serves both.
    pub(super) fn decide_on_body(&mut self, cx: &mut Cx<'_>, body: &[u8]) -> Reply {
        self.request_seen(cx, body, true);
        let config = cx.config;
        let text = match json_text(body) {
            Ok(text) => text,
            Err(why) => {
                return self.refuse(cx, Refusal::new(400, RefusalCode::BodyNotJson, why));
            }
        };
        let parsed = serde_json::from_slice::<Value>(text);
        if std::mem::take(&mut self.model_in_header) {
            // The server reads the model from the body: a header naming another one would
            // have the policy check a model the server does not run.
            let named = parsed.as_ref().ok().and_then(|v| v.get("model"));
            if let Some(named) = named {
                if named.as_str() != self.log.model() {
                    return self.refuse(
                        cx,
                        Refusal::new(
                            400,
                            RefusalCode::ModelMismatch,
                            "the body names another model than the header the policy reads",
                        ),
                    );
                }
            }
        }
        if std::mem::take(&mut self.model_in_body) {
            let model = match &parsed {
                Ok(value) => model_in_json(value),
                Err(e) => Err(format!("the request body is not JSON ({e})")),
            };
            let admitted = match model {
                Err(why) => Err(Refusal::new(400, RefusalCode::ModelMissing, why)),
                Ok(model) => match &config.models {
                    Some(access) => self.admit_model(cx, access, &model),
                    None => Ok(()),
                },
            };
            if let Err(refusal) = admitted {
                return self.refuse(cx, refusal);
            }
        }
        if let Ok(v) = &parsed {
            if self.may_ask_stream_usage(cx) {
                if let Some(asked) = crate::usage::ask_for_stream_usage(text, v) {
                    // The headers are held: the length can still change.
                    self.steps
                        .push(Step::RequestHeader("content-length".into(), None));
                    self.steps.push(Step::ReplaceBody(asked, body.len()));
                    self.asked_stream_usage = true;
                }
            }
        }
        let parsed = match parsed {
            _ if !config.rules.needs_body() => None,
            Ok(v) => Some(v),
            Err(_) if config.rules.block_non_json => {
                return self.refuse(
                    cx,
                    Refusal::new(
                        400,
                        RefusalCode::BodyNotJson,
                        "the policy inspects request bodies as JSON, and this one is not JSON",
                    ),
                );
            }
            Err(_) => None,
        };
        if config.rules.has_prompt_rules()
            && !config.rules.allow_token_ids
            && crate::rules::prompt::token_ids(parsed.as_ref())
        {
            return self.refuse(
                cx,
                Refusal::new(
                    400,
                    RefusalCode::PromptUnreadable,
                    "the prompt is given as token ids, which the policy's prompt rules cannot read",
                ),
            );
        }
        self.decide_rules(cx, parsed.as_ref(), body)
    }

    /// What the rules see of this request, with the body when there is one.
    pub(super) fn with_facts<R>(
        &self,
        config: &PluginConfig,
        body: Option<&Value>,
        body_bytes: u64,
        f: impl FnOnce(&RequestFacts<'_>) -> R,
    ) -> R {
        let header = |name: &str| self.saved_header(config, name);
        f(&RequestFacts {
            identity: self.log.identity(),
            providers: &config.provider_names,
            method: self.log.method(),
            path: &self.path,
            model: self.log.model(),
            header: &header,
            body,
            body_bytes,
        })
    }

    /// The rules' verdict from the headers alone, when they decide it.
    fn verdict_at_headers(&self, cx: &Cx<'_>) -> Option<Verdict> {
        let model_known = !self.model_in_body;
        self.with_facts(cx.config, None, 0, |facts| {
            cx.config.rules.evaluate_at_headers(facts, model_known)
        })
    }

    /// The rules' verdict, acted on: admit, refuse, or ask for approval.
    pub(super) fn decide_rules(
        &mut self,
        cx: &mut Cx<'_>,
        body: Option<&Value>,
        raw: &[u8],
    ) -> Reply {
        let config = cx.config;
        let verdict = self.with_facts(config, body, raw.len() as u64, |facts| {
            let explained = if cx.verbose {
                config.rules.explain(facts)
            } else {
                Vec::new()
            };
            (config.rules.evaluate(facts), explained)
        });
        let (verdict, explained) = verdict;
        self.steps.extend(
            explained
                .into_iter()
                .map(|line| Step::Note(Level::Debug, line)),
        );
        self.act_on(cx, verdict, body, raw)
    }

    /// Acts on a verdict: admit, refuse, or ask for approval.
    fn act_on(
        &mut self,
        cx: &mut Cx<'_>,
        verdict: Verdict,
        body: Option<&Value>,
        raw: &[u8],
    ) -> Reply {
        self.count(format!(
            "vigil.decision.{}.{}",
            verdict.action.name(),
            verdict.rule_id.as_deref().unwrap_or("default")
        ));
        for (id, action) in &verdict.shadowed {
            self.count(format!("vigil.shadow.{action}.{id}"));
        }
        self.log.decide(&verdict);
        self.note(cx, Level::Debug, || decided(&verdict));
        match &verdict.action {
            Action::Allow => self.admit(cx),
            Action::Block { status, message } => {
                let refusal = Refusal::new(*status, RefusalCode::BlockedByPolicy, message.clone())
                    .for_rule(verdict.rule_id.clone());
                // The record keeps the rule's own reason; the error body carries the message.
                self.refuse_as_recorded(cx, refusal)
            }
            Action::RequireApproval(rule) => {
                let rule = rule.clone();
                self.ask_approval(cx, rule, verdict.rule_id.clone(), raw, body)
            }
        }
    }
}

fn decided(v: &Verdict) -> String {
    format!(
        "decision: {} by {}: {}",
        v.action.name(),
        v.rule_id
            .as_deref()
            .map(|r| format!("rule {r}"))
            .unwrap_or_else(|| "the policy default".into()),
        v.reason
    )
}

/// The JSON text of a body: a UTF-8 byte order mark is dropped (it is JSON all the same, and
/// servers read it so); UTF-16 and UTF-32, which no rule could read as sent, are refused.
fn json_text(body: &[u8]) -> Result<&[u8], &'static str> {
    let utf16_or_32 = body.starts_with(&[0xFE, 0xFF])
        || body.starts_with(&[0xFF, 0xFE])
        || body.starts_with(&[0, 0, 0xFE, 0xFF])
        || (body.len() >= 2 && (body[0] == 0 || body[1] == 0));
    if utf16_or_32 {
        return Err("the request body is UTF-16 or UTF-32; send it as UTF-8");
    }
    Ok(body.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(body))
}
