//! The WASI (`wasi_snapshot_preview1`) functions a Rust `wasm32-wasip1` module imports, with
//! what Envoy gives them (proxy-wasm-cpp-host src/exports.cc): stdout and stderr go to the
//! log at info and error level, the environment is the VM's `environment_variables`, clocks
//! are the host clock, there are no files or arguments, and `proc_exit` ends the VM.

use crate::abi::LogLevel;
use crate::guest;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const EFAULT: i32 = 21;
const EIO: i32 = 29;

type Ret = Result<i32, wasmtime::Error>;
const M: &str = "wasi_snapshot_preview1";

/// The most `random_get` hands out per call in Envoy (include/proxy-wasm/limits.h).
const RANDOM_GET_MAX_BYTES: u32 = 64 * 1024;

fn seen(caller: &mut Caller<'_, HostState>, name: &'static str) {
    caller.data_mut().calls_seen.insert(name);
}

/// The environment as WASI lays it out: `KEY=VALUE\0` strings.
fn environ(state: &HostState) -> Vec<Vec<u8>> {
    state
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmtime::Error> {
    linker.func_wrap(
        M,
        "fd_write",
        |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> Ret {
            seen(&mut c, "fd_write");
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let mut text = Vec::new();
            for i in 0..iovs_len.max(0) {
                let Some(iov) = guest::read(&mut c, iovs + i * 8, 8) else {
                    return Ok(EFAULT);
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Some(bytes) = guest::read(&mut c, ptr, len) else {
                    return Ok(EFAULT);
                };
                text.extend_from_slice(&bytes);
            }
            let level = if fd == 1 {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            let message = String::from_utf8_lossy(&text)
                .trim_end_matches('\n')
                .to_string();
            c.data_mut().log(level, message);
            if !guest::write_u32(&mut c, nwritten, text.len() as u32) {
                return Ok(EFAULT);
            }
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "fd_read",
        |mut c: Caller<'_, HostState>, _fd: i32, _iovs: i32, _len: i32, _nread: i32| -> Ret {
            seen(&mut c, "fd_read");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        M,
        "fd_close",
        |mut c: Caller<'_, HostState>, _fd: i32| -> Ret {
            seen(&mut c, "fd_close");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        M,
        "fd_seek",
        |mut c: Caller<'_, HostState>, _fd: i32, _off: i64, _whence: i32, _ret: i32| -> Ret {
            seen(&mut c, "fd_seek");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        M,
        "fd_fdstat_get",
        |mut c: Caller<'_, HostState>, fd: i32, ptr: i32| -> Ret {
            seen(&mut c, "fd_fdstat_get");
            if !(0..=2).contains(&fd) {
                return Ok(EBADF);
            }
            // fdstat: filetype u8 (2 = character device), flags u16, two u64 rights sets.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            Ok(if guest::write(&mut c, ptr, &stat) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        M,
        "fd_prestat_get",
        |mut c: Caller<'_, HostState>, _fd: i32, _ptr: i32| -> Ret {
            seen(&mut c, "fd_prestat_get");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        M,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, HostState>, _fd: i32, _ptr: i32, _len: i32| -> Ret {
            seen(&mut c, "fd_prestat_dir_name");
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        M,
        "environ_sizes_get",
        |mut c: Caller<'_, HostState>, count_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "environ_sizes_get");
            let env = environ(c.data());
            let size: usize = env.iter().map(Vec::len).sum();
            let ok = guest::write_u32(&mut c, count_ptr, env.len() as u32)
                && guest::write_u32(&mut c, size_ptr, size as u32);
            Ok(if ok { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(
        M,
        "environ_get",
        |mut c: Caller<'_, HostState>, environ_ptr: i32, buf_ptr: i32| -> Ret {
            seen(&mut c, "environ_get");
            let env = environ(c.data());
            let mut at = buf_ptr;
            for (i, entry) in env.iter().enumerate() {
                if !guest::write_u32(&mut c, environ_ptr + 4 * i as i32, at as u32)
                    || !guest::write(&mut c, at, entry)
                {
                    return Ok(EFAULT);
                }
                at += entry.len() as i32;
            }
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "args_sizes_get",
        |mut c: Caller<'_, HostState>, count_ptr: i32, size_ptr: i32| -> Ret {
            seen(&mut c, "args_sizes_get");
            let ok =
                guest::write_u32(&mut c, count_ptr, 0) && guest::write_u32(&mut c, size_ptr, 0);
            Ok(if ok { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(
        M,
        "args_get",
        |mut c: Caller<'_, HostState>, _argv: i32, _buf: i32| -> Ret {
            seen(&mut c, "args_get");
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "clock_time_get",
        |mut c: Caller<'_, HostState>, id: i32, _precision: i64, ret: i32| -> Ret {
            seen(&mut c, "clock_time_get");
            let now = match id {
                0 => c.data().now_nanos,
                1 => c.data().monotonic_nanos,
                _ => return Ok(EINVAL),
            };
            Ok(if guest::write_u64(&mut c, ret, now) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        M,
        "clock_res_get",
        |mut c: Caller<'_, HostState>, _id: i32, ret: i32| -> Ret {
            seen(&mut c, "clock_res_get");
            Ok(if guest::write_u64(&mut c, ret, 1) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        M,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| -> Ret {
            seen(&mut c, "random_get");
            // Envoy refuses more than 64 KiB at once (proxy-wasm-cpp-host src/exports.cc,
            // wasi_unstable_random_get: PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES) and
            // answers zero bytes with success.
            if len as u32 > RANDOM_GET_MAX_BYTES {
                return Ok(EINVAL);
            }
            let mut bytes = Vec::with_capacity(len.max(0) as usize);
            if c.data().os_random {
                bytes.resize(len.max(0) as usize, 0);
                if getrandom::getrandom(&mut bytes).is_err() {
                    return Ok(EIO);
                }
            }
            while bytes.len() < len.max(0) as usize {
                bytes.extend_from_slice(&c.data_mut().next_random().to_le_bytes());
            }
            bytes.truncate(len.max(0) as usize);
            Ok(if guest::write(&mut c, buf, &bytes) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(M, "sched_yield", |mut c: Caller<'_, HostState>| -> Ret {
        seen(&mut c, "sched_yield");
        Ok(SUCCESS)
    })?;
    linker.func_wrap(
        M,
        "poll_oneoff",
        |mut c: Caller<'_, HostState>, _i: i32, _o: i32, _n: i32, _e: i32| -> Ret {
            seen(&mut c, "poll_oneoff");
            Ok(ENOSYS)
        },
    )?;
    linker.func_wrap(
        M,
        "proc_exit",
        |mut c: Caller<'_, HostState>, code: i32| -> Result<(), wasmtime::Error> {
            seen(&mut c, "proc_exit");
            Err(wasmtime::Error::msg(format!(
                "the module called proc_exit({code})"
            )))
        },
    )?;
    Ok(())
}
