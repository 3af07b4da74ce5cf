//! Model access in the filter: which model a request names (path, header, or the buffered
//! JSON body), whether the caller may use it, and the filtering of model lists.
//!
//! A body is inspected by buffering it (Pause in body callbacks, so the last one sees it
//! whole) while the request headers have already gone on: Envoy turns a Pause in request
//! headers into StopAllIterationAndWatermark, which would also withhold the body from this
//! filter. A denial at the end of the body is a local reply; Envoy then resets the upstream
//! request, so the model server never gets the body.

use crate::refusal::Refusal;
use vigil_core::access::{model_in_json, ModelAccess, ModelSource};
use vigil_core::identity::Identity;

/// What the request headers tell about the model, before any body.
pub enum ModelCheck {
    /// No model access configured, or a model list request (answer filtered later).
    NotNeeded { list: bool },
    /// The model is in the body: buffer it and decide at its end.
    AwaitBody,
    /// The model is known now.
    Named(String),
}

/// Reads what the request headers say about the model.
pub fn from_headers(
    access: &ModelAccess,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    end_of_stream: bool,
) -> Result<ModelCheck, Refusal> {
    if access.is_list_request(method, path) {
        return Ok(ModelCheck::NotNeeded { list: true });
    }
    match &access.source {
        ModelSource::Body if end_of_stream => Err(Refusal::new(
            400,
            "model_missing",
            "the request has no body naming a model",
        )),
        ModelSource::Body => Ok(ModelCheck::AwaitBody),
        ModelSource::Path => ModelAccess::model_from_path(path)
            .map(ModelCheck::Named)
            .ok_or_else(|| {
                Refusal::new(
                    400,
                    "model_missing",
                    format!("the path {path:?} names no model"),
                )
            }),
        ModelSource::Header(name) => header(name)
            .filter(|m| !m.is_empty())
            .map(ModelCheck::Named)
            .ok_or_else(|| {
                Refusal::new(
                    400,
                    "model_missing",
                    format!("the request has no {name} header naming a model"),
                )
            }),
    }
}

/// Reads the model from a complete request body, parsed once by the caller (`Err` carries
/// the parse error).
pub fn from_body(body: Result<&serde_json::Value, &serde_json::Error>) -> Result<String, Refusal> {
    let why = match body {
        Ok(value) => match model_in_json(value) {
            Ok(model) => return Ok(model),
            Err(why) => why,
        },
        Err(e) => format!("the request body is not JSON ({e})"),
    };
    Err(Refusal::new(400, "model_missing", why))
}

/// Admits or denies the caller for a model.
pub fn admit(
    access: &ModelAccess,
    model: &str,
    identity: Option<&Identity>,
) -> Result<(), Refusal> {
    if access.allows(model, identity) {
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
        "model_denied",
        format!("{who} may not call model {model:?}"),
    ))
}
