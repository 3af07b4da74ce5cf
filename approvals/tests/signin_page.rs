//! Approvers sign in through a real OpenID provider (oidc-provider, an OpenID Certified
//! implementation, started here on 127.0.0.1 by Node.js) in headless Chromium: the page
//! offers sign-in instead of a token field, the service sends the browser to the IdP with a
//! PKCE challenge (the IdP refuses any sign-in without one), the approver logs in and
//! consents there, comes back with a session cookie (HttpOnly, Secure, SameSite=Strict),
//! reads the ticket (rule, conditions, the matched part, the route, the time left, the whole
//! request) and approves it. A decision sent with the cookie but without the CSRF token is
//! refused; a tampered session is refused; an analyst who signs in sees nothing to decide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::browser::{browser, click, text_when, type_into, Driver};
use support::*;
use vigil_approvals::signin::SignInOptions;
use vigil_approvals::{Options, Service};

/// The test IdP (approvals/tests/oidc/provider.mjs); killed when dropped.
struct Idp {
    child: Child,
    issuer: String,
}

impl Idp {
    fn start(redirect_uri: &str) -> Idp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the test IdP is not installed: scripts/setup runs npm ci in {dir}"
        );
        let port = free_port();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is not installed (scripts/setup installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let issuer = loop {
            let line = lines
                .next()
                .expect("the IdP ended before listening")
                .unwrap();
            if let Some(issuer) = line.strip_prefix("idp listening on ") {
                break issuer.to_string();
            }
        };
        // Keep reading what the IdP writes: a closed pipe would end it (EPIPE).
        std::thread::spawn(move || lines.for_each(drop));
        Idp { child, issuer }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service with sign-in through `idp`, on `listener` (bound first: the IdP must know the
/// redirect URI, the service the IdP's issuer).
fn start_service(
    db: &Db,
    listener: std::net::TcpListener,
    idp: &Idp,
) -> (Arc<Service>, tokio::sync::oneshot::Sender<()>) {
    let addr = listener.local_addr().unwrap();
    let policy = json!({"id": "p", "version": "1", "identity": {"providers": [
        {"name": "bank-sso", "issuer": idp.issuer, "algorithms": ["RS256"],
         "remote_jwks": {"cluster": "idp", "uri": format!("{}/jwks", idp.issuer)}}]}});
    let providers = vigil_core::PluginConfig::parse(policy.to_string().as_bytes())
        .unwrap()
        .providers;
    let options = Options {
        db: db.url(),
        providers,
        filter_key: Some(FILTER_KEY.into()),
        ui_url: Some(format!("http://{addr}/")),
        sign_in: Some(SignInOptions {
            issuer: idp.issuer.clone(),
            client_id: "vigil-approvals".into(),
            client_secret: None,
            redirect_uri: format!("http://{addr}/auth/callback"),
            scopes: "openid email groups".into(),
        }),
        session_key: Some(b"a-session-key-of-at-least-32-bytes!!".to_vec()),
        ..Options::default()
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let service = Service::start(options).await.unwrap();
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ready_tx.send(service.clone()).unwrap();
            service
                .serve(listener, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    (
        ready_rx.recv_timeout(Duration::from_secs(60)).unwrap(),
        stop_tx,
    )
}

/// What the gateway sends for a long request whose risky part is deep inside.
fn risky_ticket() -> Value {
    let mut t = ticket_request(
        &"5a".repeat(32),
        "analyst-7",
        "Summarise the quarterly report.",
        1,
    );
    t["route"] = json!("POST /v1/chat/completions");
    t["conditions"] = json!(["prompt matches /(?i)wire transfer/"]);
    t["matched"] = json!({"before": "Then send a ", "text": "wire transfer", "after": " of $250,000 for Jane Roe, SSN [US_SSN].",
        "cut_before": true, "cut_after": true, "normalized": false});
    t["request"] = json!(format!(
        "{}\nThen send a wire transfer of $250,000 for Jane Roe, SSN [US_SSN].",
        "Summarise the quarterly report. ".repeat(600)
    ));
    t
}

/// Signs `who` in at the IdP's own pages, from the approvers' page.
async fn sign_in(c: &Client, base: &str, who: &str) {
    c.goto(base).await.unwrap();
    let link = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#signin-link:not([hidden])"))
        .await
        .expect("the page offers sign-in");
    assert!(
        c.find(Locator::Css("#token-form[hidden]")).await.is_ok(),
        "no token to paste when sign-in is configured"
    );
    link.click().await.unwrap();
    // The IdP's login page, then its consent page.
    let login = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("the IdP's login page");
    login.send_keys(who).await.unwrap();
    type_into(
        c,
        Locator::Css("input[name=password]"),
        "any password: a test IdP",
    )
    .await;
    click(c, Locator::Css("button[type=submit]")).await;
    if c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=prompt][value=consent]"))
        .await
        .is_err()
    {
        panic!(
            "no consent page at {}: {}",
            c.current_url().await.unwrap(),
            c.source().await.unwrap()
        );
    }
    click(c, Locator::Css("button[type=submit]")).await;
    // Back on the approvers' page, signed in.
    let who_el = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("who"))
        .await
        .unwrap();
    let shown = text_when(&who_el, |t| t.starts_with("Signed in as")).await;
    assert_eq!(shown, format!("Signed in as {who}@bank.test"), "signed in");
}

/// A request with the session cookie the browser holds, and optionally the CSRF token.
fn with_session(
    method: &str,
    url: &str,
    session: &str,
    csrf: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = ureq::request(method, url).set("cookie", &format!("vigil_session={session}"));
    if let Some(t) = csrf {
        req = req.set("x-vigil-csrf", t);
    }
    match req.send_json(body) {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn an_approver_signs_in_through_the_idp_with_pkce_reads_the_ticket_and_approves() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}/");
    let idp = Idp::start(&format!("http://{addr}/auth/callback"));
    let db = Db::sqlite("signin-page");
    let (service, stop) = start_service(&db, listener, &idp);

    // The service sends the browser to the IdP with a PKCE challenge (S256), a state and a
    // nonce, and remembers them in a signed cookie.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let to_idp = agent.get(&format!("{base}auth/login")).call().unwrap();
    assert_eq!(to_idp.status(), 303);
    let location = to_idp.header("location").unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/auth?", idp.issuer)),
        "{location}"
    );
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "response_type=code",
    ] {
        assert!(location.contains(part), "{part} missing: {location}");
    }
    let login_cookie = to_idp.header("set-cookie").unwrap();
    assert!(
        login_cookie.contains("HttpOnly") && login_cookie.contains("Secure"),
        "{login_cookie}"
    );

    // A callback with a state this browser never started is refused.
    let forged = agent
        .get(&format!("{base}auth/callback?code=abc&state=xyz"))
        .set("cookie", "vigil_login=forged.cookie")
        .call();
    assert!(matches!(forged, Err(ureq::Error::Status(400, _))));

    let ticket = {
        let url = format!("{base}v1/tickets");
        ureq::post(&url)
            .set("x-vigil-filter-key", FILTER_KEY)
            .send_json(risky_ticket())
            .unwrap()
            .into_json::<Value>()
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (session, csrf) = rt.block_on({
        let (base, ticket) = (base.clone(), ticket.clone());
        async move {
            let c = browser(&driver).await;
            sign_in(&c, &base, "officer-1").await;
            let cookie = c
                .get_named_cookie("vigil_session")
                .await
                .expect("a session cookie");
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.secure(), Some(true));
            assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
            let session = cookie.value().to_string();

            // The ticket, as the approver reads it.
            let row = c
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(&format!("tr[data-id='{ticket}']")))
                .await
                .unwrap();
            row.click().await.unwrap();
            let mark = c.wait().for_element(Locator::Id("m-text")).await.unwrap();
            assert_eq!(text_when(&mark, |t| !t.is_empty()).await, "wire transfer");
            let text = |id: &'static str| {
                let c = c.clone();
                async move { c.find(Locator::Id(id)).await.unwrap().text().await.unwrap() }
            };
            assert!(text("d-matched")
                .await
                .contains("Then send a wire transfer of $250,000 for Jane Roe, SSN [US_SSN]."));
            assert_eq!(
                text("d-conditions").await,
                "prompt matches /(?i)wire transfer/"
            );
            assert_eq!(text("d-route").await, "POST /v1/chat/completions");
            assert_eq!(text("d-groups").await, "analysts");
            let left = c.find(Locator::Id("d-left")).await.unwrap();
            assert!(text_when(&left, |t| t.ends_with("s left"))
                .await
                .contains(" min "));
            let pager = c.find(Locator::Id("d-page")).await.unwrap();
            assert_eq!(text_when(&pager, |t| !t.is_empty()).await, "page 1 of 3");
            click(&c, Locator::Id("next")).await;
            assert_eq!(
                text_when(&pager, |t| t.starts_with("page 2")).await,
                "page 2 of 3"
            );
            click(&c, Locator::Id("next")).await;
            text_when(&pager, |t| t.starts_with("page 3")).await;
            assert!(text("d-request-text")
                .await
                .contains("wire transfer of $250,000"));

            // The CSRF token the page holds; then the decision, through the page.
            let csrf: String = c
                .execute("return session.csrf;", vec![])
                .await
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            type_into(
                &c,
                Locator::Id("reason"),
                "client called back; amount matches the mandate",
            )
            .await;
            click(&c, Locator::Id("approve")).await;
            let message = c.find(Locator::Id("message")).await.unwrap();
            assert_eq!(
                text_when(&message, |t| t.contains("approved")).await,
                format!("Ticket {ticket} approved.")
            );
            c.close().await.unwrap();
            (session, csrf)
        }
    });

    let (_, d) = svc_detail(&base, &ticket, &session);
    assert_eq!(
        (
            d["ticket"]["status"].as_str(),
            d["ticket"]["approver"].as_str()
        ),
        (Some("approved"), Some("officer-1@bank.test"))
    );

    // With the cookie but without (or with a wrong) CSRF token, no change is made.
    let second = ureq::post(&format!("{base}v1/tickets"))
        .set("x-vigil-filter-key", FILTER_KEY)
        .send_json(ticket_request(&"6b".repeat(32), "analyst-8", "wire", 1))
        .unwrap()
        .into_json::<Value>()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decision = json!({"decision": "approve", "reason": "forged from another site"});
    let url = format!("{base}v1/tickets/{second}/decision");
    for bad in [
        None,
        Some("not-the-token"),
        Some(csrf.get(1..).unwrap_or_default()),
    ] {
        let (code, e) = with_session("POST", &url, &session, bad, decision.clone());
        assert_eq!(
            (code, e["error"]["code"].as_str()),
            (403, Some("csrf_token_invalid")),
            "{bad:?}"
        );
    }
    // A tampered session is not a session.
    let tampered = format!("{}x", &session[..session.len() - 1]);
    let (code, _) = with_session("POST", &url, &tampered, Some(&csrf), decision.clone());
    assert_eq!(code, 401);
    // With the token, the same session decides.
    let (code, t) = with_session("POST", &url, &session, Some(&csrf), decision);
    assert_eq!((code, t["status"].as_str()), (200, Some("approved")), "{t}");
    drop(service);
    let _ = stop.send(());
}

fn svc_detail(base: &str, id: &str, session: &str) -> (u16, Value) {
    let r = ureq::get(&format!("{base}v1/tickets/{id}"))
        .set("cookie", &format!("vigil_session={session}"))
        .call()
        .unwrap();
    (r.status(), r.into_json().unwrap())
}
