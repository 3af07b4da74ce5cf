//! The model server (`--upstream URL`): requests as the filter let them through, over a
//! pooled HTTP/1.1 client, the body streamed as the filter releases it.

use super::body::ChannelBody;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use vigil_host::abi::Pairs;

/// Hop-by-hop headers (RFC 9110 7.6.1): never forwarded, as Envoy's codec does not.
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
];

pub struct Upstream {
    base: Uri,
    client: Client<HttpConnector, ChannelBody>,
}

impl Upstream {
    pub fn new(url: &str) -> Result<Self, String> {
        let base: Uri = url
            .parse()
            .map_err(|e| format!("--upstream {url:?}: not a URL ({e})"))?;
        if base.scheme_str() != Some("http") || base.authority().is_none() {
            return Err(format!(
                "--upstream {url:?}: expected http://HOST:PORT (TLS to the model server is Envoy's job)"
            ));
        }
        Ok(Self {
            base,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        })
    }

    /// The request the filter let through, addressed to the model server.
    pub fn request(
        &self,
        headers: &Pairs,
        body: ChannelBody,
    ) -> Result<Request<ChannelBody>, String> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let path = get(":path").unwrap_or("/");
        let base = self.base.path().trim_end_matches('/');
        let authority = self
            .base
            .authority()
            .map(|a| a.as_str())
            .unwrap_or_default();
        let uri = format!("http://{authority}{base}{path}");
        let mut req = Request::builder()
            .method(get(":method").unwrap_or("GET"))
            .uri(uri);
        for (k, v) in headers {
            if k.starts_with(':') || HOP_BY_HOP.contains(&k.as_str()) {
                continue;
            }
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(host) = get(":authority") {
            req = req.header(hyper::header::HOST, host);
        }
        req.body(body).map_err(|e| e.to_string())
    }

    pub async fn send(
        &self,
        req: Request<ChannelBody>,
    ) -> Result<Response<hyper::body::Incoming>, String> {
        self.client.request(req).await.map_err(|e| {
            let s = format!("{e:?}");
            if s.contains("ConnectError") || s.contains("Connect") {
                "remote connection failure".to_string()
            } else {
                "connection termination".to_string()
            }
        })
    }
}
