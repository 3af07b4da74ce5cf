;; A proxy-wasm module whose _initialize traps, as a filter that panics at load would.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0))
  (func (export "_initialize") unreachable))
