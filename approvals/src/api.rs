//! The HTTP API (docs/approvals.openapi.yaml): the gateway's calls under `/v1/tickets`
//! (create-or-get, long-poll status, consume; filter key), and the approvers' (pending list,
//! detail with history, decision; their own JWT). Errors are `{"error": {"code", "message"}}`.

use crate::auth::same_secret;
use crate::store::{DecideRefused, Decision, StoreError, TicketView};
use crate::Service;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::approval::excerpt::MAX_REQUEST_BYTES;
use vigil_core::approval::protocol::{
    ConsumeRequest, Status, TicketRequest, FILTER_KEY_HEADER, MAX_POLL_WAIT_S,
};
use vigil_core::identity::Identity;

/// Largest reason an approver may give.
const MAX_REASON: usize = 2000;
/// How often a long poll re-reads the database (decisions taken on another replica).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Every route on one listener.
pub fn router(service: Arc<Service>) -> Router {
    gateway_routes()
        .merge(approver_routes())
        .route("/healthz", get(health))
        .with_state(service)
}

/// The gateway's routes alone (`--approvers-listen`): only the mesh reaches them, not
/// approvers' browsers.
pub fn gateway_router(service: Arc<Service>) -> Router {
    gateway_routes()
        .route("/healthz", get(health))
        .with_state(service)
}

/// The approvers' routes alone.
pub fn approver_router(service: Arc<Service>) -> Router {
    approver_routes()
        .route("/healthz", get(health))
        .with_state(service)
}

/// The gateway's calls (filter key): create-or-get, long-poll status, consume.
fn gateway_routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/v1/tickets", post(create_or_get))
        .route("/v1/tickets/{id}/status", get(status))
        .route("/v1/tickets/{id}/consume", post(consume))
}

/// The approvers' calls (their own tokens): the page, the API document, the pending list,
/// a ticket's detail, the decision.
fn approver_routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(ui))
        .route("/openapi.yaml", get(openapi))
        .route("/v1/tickets", get(list_pending))
        .route("/v1/tickets/{id}", get(detail))
        .route("/v1/tickets/{id}/decision", post(decide))
        .route("/auth/login", get(crate::session::login))
        .route("/auth/callback", get(crate::session::callback))
        .route("/auth/session", get(crate::session::current))
        .route("/auth/logout", post(crate::session::logout))
}

/// An error answer.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": {"code": self.1, "message": self.2}})),
        )
            .into_response()
    }
}

impl Service {
    /// A store that failed: logged, and a 503 for the caller.
    fn store_failed(&self, e: StoreError) -> ApiError {
        self.log.line(&e);
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the ticket store is not answering".into(),
        )
    }
}

type Answer<T> = Result<T, ApiError>;

fn not_found(id: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "ticket_not_found",
        format!("no ticket {id:?}"),
    )
}

/// The gateway's calls carry the filter key when the service was given one.
fn check_filter(service: &Service, headers: &HeaderMap) -> Answer<()> {
    let Some(key) = &service.filter_key else {
        return Ok(());
    };
    let given = headers
        .get(FILTER_KEY_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if same_secret(given, key.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "filter_key_invalid",
            format!("gateway calls need the filter key in {FILTER_KEY_HEADER}"),
        ))
    }
}

/// The approver behind a request: their bearer token (the API), or the page's session
/// cookie; a `change` made with the cookie also needs its CSRF token.
async fn approver(service: &Service, headers: &HeaderMap, change: bool) -> Answer<Identity> {
    if !headers.contains_key("authorization") {
        if let Some(signed_in) = crate::session::from_cookie(service, headers, change).await {
            return signed_in.map(|(who, _)| who);
        }
    }
    let now_s = service.clock.now_ms() / 1000;
    service
        .approvers
        .identify(
            |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            },
            now_s,
        )
        .await
        .map_err(|e| ApiError(StatusCode::UNAUTHORIZED, e.code.code(), e.message))
}

/// How an approver is named in tickets and history.
fn name_of(i: &Identity) -> String {
    i.email
        .clone()
        .or_else(|| i.subject.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether `i` is in one of the ticket's approver groups; `corp-idp:risk-officers` names the
/// group of one provider only (vigil_core `Identity::member_of`).
fn may_decide(i: &Identity, t: &TicketView, providers: &[String]) -> bool {
    t.approver_groups.iter().any(|g| i.member_of(g, providers))
}

fn is_requester(i: &Identity, t: &TicketView) -> bool {
    let same_subject = i.subject.is_some() && i.subject == t.subject && i.issuer == t.issuer;
    let same_email = i.email.is_some() && i.email == t.email;
    same_subject || same_email
}

/// Shown at the top of the page of a service without a filter key.
const INSECURE_BANNER: &str = r#"<p class="insecure" role="alert">INSECURE: this service was started without a filter key (--insecure-no-filter-key). Anyone who reaches it can open tickets with approver groups and uses of their choosing; gateways refuse such tickets, but do not run it this way in production.</p>"#;

async fn ui(State(s): State<Arc<Service>>) -> Html<String> {
    let page = include_str!("ui.html");
    if s.log.insecure() {
        Html(page.replacen("<!--insecure-->", INSECURE_BANNER, 1))
    } else {
        Html(page.to_string())
    }
}

async fn openapi() -> impl IntoResponse {
    (
        [("content-type", "application/yaml")],
        include_str!("../../docs/approvals.openapi.yaml"),
    )
}

async fn health(State(s): State<Arc<Service>>) -> Json<serde_json::Value> {
    let w = s.webhook.as_ref().map(|w| {
        use std::sync::atomic::Ordering::Relaxed;
        json!({"delivered": w.stats.delivered.load(Relaxed), "failed": w.stats.failed.load(Relaxed),
               "dropped": w.stats.dropped.load(Relaxed), "attempts": w.stats.attempts.load(Relaxed)})
    });
    Json(json!({"status": "ok", "webhook": w, "insecure": s.log.insecure()}))
}

fn check_request(r: &TicketRequest) -> Answer<()> {
    let bad = |why: String| Err(ApiError(StatusCode::BAD_REQUEST, "bad_ticket_request", why));
    if r.request_digest.len() != 64 || !r.request_digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("request_digest must be 64 hex digits (SHA-256)".into());
    }
    if r.approver_groups.is_empty() {
        return bad("approver_groups must name at least one group".into());
    }
    if r.ttl_s == 0 || r.approved_ttl_s == 0 || r.uses == 0 {
        return bad("ttl_s, approved_ttl_s and uses must be positive".into());
    }
    if r.excerpt.len() > 64 * 1024 {
        return bad("the excerpt is over 64 KiB".into());
    }
    let matched = r
        .matched
        .as_ref()
        .map_or(0, |m| m.before.len() + m.text.len() + m.after.len());
    if matched > 64 * 1024 {
        return bad("the matched text is over 64 KiB".into());
    }
    if r.conditions.len() > 64 || r.conditions.iter().any(|c| c.len() > 4096) {
        return bad("conditions: at most 64, each under 4 KiB".into());
    }
    if r.route.len() > 8192 {
        return bad("the route is over 8 KiB".into());
    }
    if r.request.len() > MAX_REQUEST_BYTES + 4096 {
        return bad(format!("the request is over {MAX_REQUEST_BYTES} bytes"));
    }
    Ok(())
}

/// POST /v1/tickets: the gateway's create-or-get.
async fn create_or_get(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<TicketView>)> {
    check_filter(&s, &headers)?;
    let request: TicketRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_ticket_request", e.to_string()))?;
    check_request(&request)?;
    let opened = s
        .store
        .create_or_get(&request, s.clock.now_ms())
        .await
        .map_err(|e| s.store_failed(e))?;
    if opened.created {
        if let Some(w) = &s.webhook {
            w.notify(crate::webhook::message(&opened.ticket, s.ui_url.as_deref()));
        }
    }
    let code = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(opened.ticket)))
}

#[derive(Deserialize)]
struct StatusQuery {
    digest: String,
    #[serde(default)]
    wait_s: u64,
}

/// GET /v1/tickets/{id}/status?digest=&wait_s=: the gateway's long poll. Answers at once
/// unless the ticket is pending; then when it changes, or after `wait_s`.
async fn status(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
    headers: HeaderMap,
) -> Answer<Json<TicketView>> {
    check_filter(&s, &headers)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait_s.min(MAX_POLL_WAIT_S));
    loop {
        // Registered before the read, so a decision between the read and the wait still wakes.
        let changed = s.changed.notified();
        let ticket = s
            .store
            .get(&id, s.clock.now_ms())
            .await
            .map_err(|e| s.store_failed(e))?;
        let ticket = match ticket {
            Some(t) if t.request_digest == q.digest => t,
            _ => return Err(not_found(&id)),
        };
        if ticket.status != Status::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(Json(ticket));
        }
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + POLL_EVERY),
            changed,
        )
        .await;
    }
}

/// POST /v1/tickets/{id}/consume: takes one use of an approved ticket.
async fn consume(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer<Json<TicketView>> {
    check_filter(&s, &headers)?;
    let request: ConsumeRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_consume_request",
            e.to_string(),
        )
    })?;
    let ticket = s
        .store
        .consume(
            &id,
            &request.request_digest,
            &request.request_id,
            s.clock.now_ms(),
        )
        .await
        .map_err(|e| s.store_failed(e))?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(ticket))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
}

/// GET /v1/tickets: pending tickets this approver may decide (not their own).
async fn list_pending(
    State(s): State<Arc<Service>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Answer<Json<serde_json::Value>> {
    let who = approver(&s, &headers, false).await?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let tickets: Vec<TicketView> = s
        .store
        .pending(s.clock.now_ms(), 5000)
        .await
        .map_err(|e| s.store_failed(e))?
        .into_iter()
        .filter(|t| may_decide(&who, t, s.approvers.names()) && !is_requester(&who, t))
        .take(limit as usize)
        .collect();
    Ok(Json(
        json!({"approver": name_of(&who), "groups": who.groups, "tickets": tickets}),
    ))
}

#[derive(Deserialize)]
struct DetailQuery {
    /// Which page of the whole request (from 1).
    #[serde(default)]
    page: Option<usize>,
}

/// Characters of the whole request on one page of a ticket's detail.
pub const REQUEST_PAGE_CHARS: usize = 8000;

/// Page `page` (from 1) of `text`: (the page, how many pages).
fn page_of(text: &str, page: usize) -> (String, usize) {
    let chars = text.chars().count();
    let pages = chars.div_ceil(REQUEST_PAGE_CHARS).max(1);
    let page = page.clamp(1, pages);
    let shown = text
        .chars()
        .skip((page - 1) * REQUEST_PAGE_CHARS)
        .take(REQUEST_PAGE_CHARS)
        .collect();
    (shown, pages)
}

/// GET /v1/tickets/{id}?page=: a ticket with its history and a page of the whole masked
/// request, for its approvers and its requester.
async fn detail(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
    headers: HeaderMap,
) -> Answer<Json<serde_json::Value>> {
    let who = approver(&s, &headers, false).await?;
    let ticket = s
        .store
        .get(&id, s.clock.now_ms())
        .await
        .map_err(|e| s.store_failed(e))?
        .ok_or_else(|| not_found(&id))?;
    if !may_decide(&who, &ticket, s.approvers.names()) && !is_requester(&who, &ticket) {
        return Err(not_found(&id));
    }
    let events = s.store.events(&id).await.map_err(|e| s.store_failed(e))?;
    let can_decide = ticket.status == Status::Pending
        && may_decide(&who, &ticket, s.approvers.names())
        && !is_requester(&who, &ticket);
    let (text, truncated) = s
        .store
        .request_text(&id)
        .await
        .map_err(|e| s.store_failed(e))?
        .unwrap_or_default();
    let page = q.page.unwrap_or(1).max(1);
    let (shown, pages) = page_of(&text, page);
    let request = json!({"text": shown, "page": page.min(pages), "pages": pages,
        "page_chars": REQUEST_PAGE_CHARS, "truncated": truncated});
    Ok(Json(
        json!({"ticket": ticket, "events": events, "can_decide": can_decide, "request": request}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    reason: String,
}

/// POST /v1/tickets/{id}/decision: approve or deny, with a reason.
async fn decide(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer<Json<TicketView>> {
    let who = approver(&s, &headers, true).await?;
    let d: DecisionBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_decision", e.to_string()))?;
    let decision = match d.decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "bad_decision",
                format!("decision must be \"approve\" or \"deny\", found {other:?}"),
            ))
        }
    };
    let reason = d.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "reason_required",
            format!("a decision needs a reason of 1 to {MAX_REASON} bytes"),
        ));
    }
    let now = s.clock.now_ms();
    let ticket = s
        .store
        .get(&id, now)
        .await
        .map_err(|e| s.store_failed(e))?
        .ok_or_else(|| not_found(&id))?;
    if is_requester(&who, &ticket) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "self_approval",
            "nobody decides on their own request".into(),
        ));
    }
    if !may_decide(&who, &ticket, s.approvers.names()) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "not_an_approver",
            format!(
                "{} is not in any of the approver groups {}",
                name_of(&who),
                ticket.approver_groups.join(", ")
            ),
        ));
    }
    match s
        .store
        .decide(&id, &name_of(&who), decision, reason, now)
        .await
        .map_err(|e| s.store_failed(e))?
    {
        Ok(t) => {
            s.changed.notify_waiters();
            Ok(Json(t))
        }
        Err(DecideRefused::NotFound) => Err(not_found(&id)),
        Err(DecideRefused::NotPending(status)) => Err(ApiError(
            StatusCode::CONFLICT,
            "not_pending",
            format!(
                "ticket {id} is {}; only a pending ticket can be decided",
                status.name()
            ),
        )),
    }
}
