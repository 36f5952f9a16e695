;; A stand-in for a wasm-bindgen module: linear memory with wasm-bindgen's terminated flag at the
;; address exported as `__instance_terminated`, a counter in a global (reset by
;; re-instantiation), a trap, an abort hook that asks for a reinit the way the workers-rs
;; `worker` crate does (through `__wbindgen_reinit`), the executor's `queueMicrotask` import
;; (called through `schedule`, as wasm-bindgen-futures does) and the externref table in which
;; Rust holds JS values.
(module
  (import "./index_bg.js" "__wbg___wbindgen_reinit_0000000000000000" (func $reinit))
  (import "./index_bg.js" "__wbg_queueMicrotask_0000000000000000" (func $queue (param externref)))
  (memory (export "memory") 1)
  (table (export "__wbindgen_externrefs") 64 externref)
  (global (export "__instance_terminated") i32 (i32.const 1024))
  (global $counter (mut i32) (i32.const 0))
  (func (export "__wbindgen_start"))
  (func (export "bump") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (global.get $counter))
  (func (export "trap") unreachable)
  (func (export "on_abort") (call $reinit))
  (func (export "request_reinit") (call $reinit))
  (func (export "schedule") (param externref) (call $queue (local.get 0))))
