//! Direct calls of imports whose error statuses the SDK would turn into panics, so the probes
//! can report the status Envoy gives instead.
use crate::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_buffer_bytes(
        kind: u32,
        start: usize,
        size: usize,
        data: *const u8,
        len: usize,
    ) -> u32;
    fn proxy_http_call(
        up: *const u8,
        ul: usize,
        hp: *const u8,
        hl: usize,
        bp: *const u8,
        bl: usize,
        tp: *const u8,
        tl: usize,
        timeout: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_grpc_call(
        up: *const u8,
        ul: usize,
        sp: *const u8,
        sl: usize,
        mp: *const u8,
        ml: usize,
        ip: *const u8,
        il: usize,
        dp: *const u8,
        dl: usize,
        t: u32,
        ret: *mut u32,
    ) -> u32;
    fn proxy_grpc_stream(
        up: *const u8,
        ul: usize,
        sp: *const u8,
        sl: usize,
        mp: *const u8,
        ml: usize,
        ip: *const u8,
        il: usize,
        ret: *mut u32,
    ) -> u32;
    fn proxy_grpc_send(token: u32, p: *const u8, l: usize, end: u32) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
    fn proxy_grpc_close(token: u32) -> u32;
    fn proxy_get_status(code: *mut u32, ptr: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_effective_context(id: u32) -> u32;
    fn proxy_call_foreign_function(
        np: *const u8,
        nl: usize,
        ap: *const u8,
        al: usize,
        rp: *mut *mut u8,
        rl: *mut usize,
    ) -> u32;
    fn proxy_done() -> u32;
    fn proxy_get_log_level(ret: *mut u32) -> u32;
    fn proxy_continue_stream(kind: u32) -> u32;
    fn proxy_close_stream(kind: u32) -> u32;
    fn proxy_set_property(pp: *const u8, pl: usize, vp: *const u8, vl: usize) -> u32;
    fn proxy_log(level: u32, p: *const u8, l: usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        rp: *mut *mut u8,
        rl: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        kp: *const u8,
        kl: usize,
        vp: *const u8,
        vl: usize,
    ) -> u32;
}

pub fn set_buffer(kind: u32, start: usize, size: usize, data: &[u8]) -> u32 {
    unsafe { proxy_set_buffer_bytes(kind, start, size, data.as_ptr(), data.len()) }
}

pub fn http_call_with_timeout(cluster: &str, timeout: u32) -> u32 {
    let headers: [u8; 4] = 0u32.to_le_bytes();
    let mut token = 0;
    unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            4,
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            timeout,
            &mut token,
        )
    }
}

/// (status, code, message) of proxy_get_status.
pub fn get_status() -> (u32, u32, String) {
    let mut code = 0;
    let mut ptr: *mut u8 = std::ptr::null_mut();
    let mut len = 0;
    let status = unsafe { proxy_get_status(&mut code, &mut ptr, &mut len) };
    let message = if ptr.is_null() {
        String::new()
    } else {
        unsafe { String::from_utf8(Vec::from_raw_parts(ptr, len, len)).unwrap() }
    };
    (status, code, message)
}

pub fn done() -> u32 {
    unsafe { proxy_done() }
}

/// Statuses of imports called with arguments Envoy refuses, or in the wrong place.
pub struct Raw;
impl Context for Raw {}
impl HttpContext for Raw {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let svc = "svc";
        let empty: [u8; 4] = [0; 4];
        let mut ret = 0u32;
        unsafe {
            report(
                "grpc_call",
                proxy_grpc_call(
                    svc.as_ptr(),
                    3,
                    svc.as_ptr(),
                    3,
                    svc.as_ptr(),
                    3,
                    empty.as_ptr(),
                    4,
                    std::ptr::null(),
                    0,
                    1000,
                    &mut ret,
                ),
            );
            report(
                "grpc_call_unknown_cluster",
                proxy_grpc_call(
                    b"zz".as_ptr(),
                    2,
                    svc.as_ptr(),
                    3,
                    svc.as_ptr(),
                    3,
                    empty.as_ptr(),
                    4,
                    std::ptr::null(),
                    0,
                    1000,
                    &mut ret,
                ),
            );
            report(
                "grpc_stream",
                proxy_grpc_stream(
                    svc.as_ptr(),
                    3,
                    svc.as_ptr(),
                    3,
                    svc.as_ptr(),
                    3,
                    empty.as_ptr(),
                    4,
                    &mut ret,
                ),
            );
            report("grpc_send", proxy_grpc_send(7, svc.as_ptr(), 3, 0));
            report("grpc_cancel", proxy_grpc_cancel(7));
            report("grpc_close", proxy_grpc_close(7));
            report(
                "effective_context_unknown",
                proxy_set_effective_context(999),
            );
            let mut rp: *mut u8 = std::ptr::null_mut();
            let mut rl = 0usize;
            report(
                "foreign_clear_route_cache",
                proxy_call_foreign_function(
                    b"clear_route_cache".as_ptr(),
                    17,
                    std::ptr::null(),
                    0,
                    &mut rp,
                    &mut rl,
                ),
            );
            report(
                "foreign_unknown",
                proxy_call_foreign_function(
                    b"nope".as_ptr(),
                    4,
                    std::ptr::null(),
                    0,
                    &mut rp,
                    &mut rl,
                ),
            );
            let mut level = 99u32;
            report("log_level", (proxy_get_log_level(&mut level), level));
            report("continue_bad_type", proxy_continue_stream(9));
            report("continue_upstream", proxy_continue_stream(3));
            report("close_bad_type", proxy_close_stream(9));
            report("log_bad_level", proxy_log(17, b"x".as_ptr(), 1));
            report(
                "log_bad_pointer",
                proxy_log(2, 0xFFFF_FFF0usize as *const u8, 64),
            );
            report(
                "map_bad_type",
                proxy_get_header_map_value(42, b"a".as_ptr(), 1, &mut rp, &mut rl),
            );
            // Response headers do not exist yet in the request phase.
            report(
                "response_map_in_request_phase",
                proxy_replace_header_map_value(2, b"a".as_ptr(), 1, b"b".as_ptr(), 1),
            );
        }
        Action::Continue
    }
    fn on_http_request_body(&mut self, _size: usize, _eos: bool) -> Action {
        // Request headers are gone once their callback returned Continue.
        let mut rp: *mut u8 = std::ptr::null_mut();
        let mut rl = 0usize;
        report("request_headers_in_body_phase", unsafe {
            proxy_get_header_map_value(0, b":path".as_ptr(), 5, &mut rp, &mut rl)
        });
        Action::Continue
    }
}

/// set_property from the root context has no stream to hold it.
pub fn set_property_status(name: &str) -> u32 {
    unsafe { proxy_set_property(name.as_ptr(), name.len(), b"v".as_ptr(), 1) }
}
