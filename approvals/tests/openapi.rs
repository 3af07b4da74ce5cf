//! The OpenAPI document and the service agree: every documented path and method is served
//! (not the router's bare 404 or 405), and the service hands out the document itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::*;

/// `(path, methods)` of docs/approvals.openapi.yaml, read from its `paths:` block.
fn documented() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(
        vigil_host::artifacts::workspace_root().join("docs/approvals.openapi.yaml"),
    )
    .unwrap();
    let block = text
        .split("\npaths:\n")
        .nth(1)
        .unwrap()
        .split("\ncomponents:\n")
        .next()
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        if let Some(path) = line
            .strip_prefix("  ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|l| l.starts_with('/'))
        {
            out.push((path.to_string(), Vec::new()));
        } else if let Some(m) = line
            .strip_prefix("    ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|m| ["get", "post"].contains(m))
        {
            out.last_mut().unwrap().1.push(m.to_uppercase());
        }
    }
    out
}

#[test]
fn every_documented_route_is_served_and_the_document_is_too() {
    let db = Db::sqlite("openapi");
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let routes = documented();
    assert!(routes.len() >= 8, "{routes:?}");
    for (path, methods) in &routes {
        assert!(!methods.is_empty(), "{path} has no method");
        for method in methods {
            let url = svc.url(&path.replace("{id}", "t_0"));
            let res = match ureq::request(method, &url).send_string("{}") {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => panic!("{method} {path}: {e}"),
            };
            let (status, body) = (res.status(), res.into_string().unwrap());
            // The router's own 404/405 has an empty body; the service's errors are JSON.
            assert!(
                !body.is_empty(),
                "{method} {path}: {status} with an empty body: not served"
            );
            assert_ne!(status, 405, "{method} {path}");
        }
    }
    let served = ureq::get(&svc.url("/openapi.yaml"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let file = std::fs::read_to_string(
        vigil_host::artifacts::workspace_root().join("docs/approvals.openapi.yaml"),
    )
    .unwrap();
    assert_eq!(served, file);
}
