//! Reading and writing the module's linear memory from inside a host import, and handing
//! bytes to the module through its own allocator (`proxy_on_memory_allocate`), as Envoy does.

use crate::abi::Status;
use crate::state::HostState;
use wasmtime::{Caller, Extern, Memory};

fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Copies `len` bytes at `ptr`; `None` when the range is outside memory.
pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let mem = memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(&caller)
        .get(start..start.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

/// Reads bytes as UTF-8 (lossy, as Envoy treats them as string views).
pub fn read_string(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes bytes at `ptr`; false when out of bounds.
pub fn write(caller: &mut Caller<'_, HostState>, ptr: i32, data: &[u8]) -> bool {
    let Some(mem) = memory(caller) else {
        return false;
    };
    let start = ptr as u32 as usize;
    match mem
        .data_mut(&mut *caller)
        .get_mut(start..start + data.len())
    {
        Some(slot) => {
            slot.copy_from_slice(data);
            true
        }
        None => false,
    }
}

pub fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

/// Allocates `data.len()` bytes inside the module, copies `data` there, and stores the pointer
/// and size at `ptr_ptr` and `size_ptr` (the proxy-wasm way of returning bytes). Empty data
/// allocates nothing and returns pointer 0 (cpp-host `WasmBase::copyToPointerSize`), which the
/// Rust SDK reads as `None`.
pub fn give(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<Status, wasmtime::Error> {
    if data.is_empty() {
        return Ok(
            if write_u32(caller, ptr_ptr, 0) && write_u32(caller, size_ptr, 0) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            },
        );
    }
    let alloc = caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))
        .and_then(Extern::into_func)
        .ok_or_else(|| {
            wasmtime::Error::msg("module exports neither proxy_on_memory_allocate nor malloc")
        })?;
    let alloc = alloc.typed::<i32, i32>(&caller)?;
    let ptr = alloc.call(&mut *caller, data.len() as i32)?;
    if ptr == 0 && !data.is_empty() {
        return Ok(Status::InvalidMemoryAccess);
    }
    if !write(caller, ptr, data)
        || !write_u32(caller, ptr_ptr, ptr as u32)
        || !write_u32(caller, size_ptr, data.len() as u32)
    {
        return Ok(Status::InvalidMemoryAccess);
    }
    Ok(Status::Ok)
}
