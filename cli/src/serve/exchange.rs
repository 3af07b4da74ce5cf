//! One HTTP exchange through a worker's VM: the client's request goes in as Envoy's
//! decoder events, what the filter lets through goes to the model server as it comes, and
//! the answer goes back through the filter to the client, chunk by chunk.

use super::body::ChannelBody;
use super::pipe::Pipe;
use super::worker::Worker;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};
use vigil_host::abi::Pairs;
use vigil_host::filter_manager::Way;

/// What the client receives: the response headers and a channel of body chunks.
pub type Head = (Pairs, mpsc::Receiver<super::pipe::Item>);

/// A stream in flight, as the worker settles it.
pub struct Link {
    pub request_id: String,
    pub start_time: String,
    pub upstream_started: bool,
    pub upstream: Option<Rc<Pipe>>,
    pub head: Option<oneshot::Sender<Head>>,
    pub client: Option<Rc<Pipe>>,
    pub client_gone: bool,
    /// Notified when the exchange is over (graceful shutdown waits for these).
    pub done: Arc<Notify>,
}

pub type Body = ChannelBody;

fn body_of(rx: mpsc::Receiver<super::pipe::Item>) -> Body {
    ChannelBody::new(rx)
}

fn empty() -> Body {
    ChannelBody::empty()
}

/// Headers as Envoy's codec hands them to filters: pseudo-headers first, names in lower
/// case, one pair per value.
fn request_headers(req: &Request<Incoming>) -> Pairs {
    let mut h = vec![
        (":method".to_string(), req.method().to_string()),
        (
            ":path".to_string(),
            req.uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string()),
        ),
        (":scheme".to_string(), "http".to_string()),
    ];
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    h.push((":authority".to_string(), authority));
    // Envoy's connection manager gives a request without one an x-request-id
    // (`generate_request_id`, on by default), which the record then carries.
    if !req.headers().contains_key("x-request-id") {
        h.push(("x-request-id".to_string(), request_id()));
    }
    for (k, v) in req.headers() {
        if k == hyper::header::HOST || super::upstream::HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        h.push((
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    h
}

/// A random version 4 UUID, as Envoy's request id.
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for half in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Serves one request through the worker's VM.
pub async fn handle(
    worker: Rc<Worker>,
    peer: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let protocol = match req.version() {
        hyper::Version::HTTP_2 => "HTTP/2",
        hyper::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let headers = request_headers(&req);
    let request_id = headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = req.into_body();
    let end = hyper::body::Body::is_end_stream(&body);
    let (head_tx, head_rx) = oneshot::channel::<Head>();
    let id = worker.with_vm(|vm| {
        let id = vm.create_stream()?;
        if let Some(s) = vm.state_mut().streams.get_mut(&id) {
            s.connection.source_address = peer.to_string();
            s.connection.protocol = protocol.into();
        }
        Ok(id)
    });
    let start = vigil_core::time::format_rfc3339_millis(worker.vm.borrow().state().now_nanos);
    worker.links.borrow_mut().insert(
        id,
        Link {
            request_id,
            start_time: start,
            upstream_started: false,
            upstream: None,
            head: Some(head_tx),
            client: None,
            client_gone: false,
            done: Arc::new(Notify::new()),
        },
    );
    worker.with_vm(|vm| vm.request_headers(id, &headers, end));
    if !end {
        tokio::task::spawn_local(feed(Rc::clone(&worker), id, body, Way::Request));
    }
    match head_rx.await {
        Ok((headers, rx)) => {
            let mut resp = Response::builder();
            let mut status = 200;
            for (k, v) in &headers {
                if k == ":status" {
                    status = v.parse().unwrap_or(502);
                } else if !k.starts_with(':') && !super::upstream::HOP_BY_HOP.contains(&k.as_str())
                {
                    resp = resp.header(k.as_str(), v.as_str());
                }
            }
            match resp.status(status).body(body_of(rx)) {
                Ok(r) => Ok(r),
                Err(e) => Err(std::io::Error::other(e)),
            }
        }
        // The stream was reset: the connection is closed without an answer, as Envoy does.
        Err(_) => Err(std::io::Error::other("stream reset")),
    }
}

/// The pipe of a stream, when it has one.
fn pipe(worker: &Worker, id: u32, client: bool) -> Option<Rc<Pipe>> {
    let links = worker.links.borrow();
    let link = links.get(&id)?;
    if client {
        link.client.clone()
    } else {
        link.upstream.clone()
    }
}

/// Backpressure: before reading more from one side, what the filter released towards the
/// other is handed over first.
async fn ready(worker: &Worker, id: u32, client: bool) {
    if let Some(p) = pipe(worker, id, client) {
        p.ready().await;
    }
}

/// A body, chunk by chunk, into the filter: the client's request body (`Way::Request`) or
/// the model server's answer (`Way::Response`). Before each read, what the filter released
/// towards the other side is handed over first (backpressure). A body that breaks off ends
/// the stream as Envoy ends it for a peer gone away.
async fn feed(worker: Rc<Worker>, id: u32, mut body: Incoming, way: Way) {
    let (towards_client, gone) = match way {
        Way::Request => (false, "downstream_remote_disconnect"),
        Way::Response => (true, "upstream_reset_after_response_started"),
    };
    let deliver = |data: &[u8], end: bool| {
        worker.with_vm(|vm| match way {
            Way::Request => vm.request_body(id, data, end),
            Way::Response => vm.response_body(id, data, end),
        })
    };
    loop {
        ready(&worker, id, towards_client).await;
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let end = hyper::body::Body::is_end_stream(&body);
                    deliver(&data, end);
                    if end {
                        return;
                    }
                }
            }
            Some(Err(_)) => {
                worker.with_vm(|vm| vm.abort_stream(id, gone));
                return;
            }
            None => {
                deliver(&[], true);
                return;
            }
        }
    }
}

/// Sends what the filter let through to the model server and feeds its answer back to
/// the filter. An upstream that cannot be reached gets Envoy's router reply: 503 "upstream
/// connect error or disconnect/reset before headers" (router.cc `onUpstreamReset`).
pub async fn forward(
    worker: Rc<Worker>,
    id: u32,
    headers: Pairs,
    rx: mpsc::Receiver<super::pipe::Item>,
    end: bool,
) {
    let body = if end { empty() } else { body_of(rx) };
    let req = worker.upstream.request(&headers, body);
    let resp = match req {
        Ok(req) => worker.upstream.send(req).await,
        Err(e) => Err(e),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(reason) => {
            let body = format!(
                "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
            );
            let headers = vec![
                (":status".to_string(), "503".to_string()),
                ("content-type".to_string(), "text/plain".to_string()),
            ];
            worker.with_vm(|vm| vm.response_headers(id, &headers, false));
            worker.with_vm(|vm| vm.response_body(id, body.as_bytes(), true));
            return;
        }
    };
    let mut h = vec![(":status".to_string(), resp.status().as_u16().to_string())];
    for (k, v) in resp.headers() {
        h.push((
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let body = resp.into_body();
    let end = hyper::body::Body::is_end_stream(&body);
    worker.with_vm(|vm| vm.response_headers(id, &h, end));
    if !end {
        feed(worker, id, body, Way::Response).await;
    }
}
