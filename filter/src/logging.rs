//! Log lines that start with the context id (`#3 on_http_request_headers: ...`), so one
//! request's lines can be picked out of a busy Envoy log.

macro_rules! ctx_log {
    ($level:ident, $id:expr, $($arg:tt)+) => {
        log::$level!("#{} {}", $id, format_args!($($arg)+))
    };
}
pub(crate) use ctx_log;
