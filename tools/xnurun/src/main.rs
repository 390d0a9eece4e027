//! xnurun's entry point. `#![no_main]`: std's runtime start-up would set
//! SIGPIPE to ignored before `main`, and xnurun must see the disposition it
//! inherited, which decides whether a guest's broken pipe is EPIPE or death
//! by SIGPIPE, as on XNU. The arguments come from `main`'s own argv: not
//! every C library hands them to std without its runtime start-up (musl
//! does not).
#![no_main]

use std::ffi::{c_char, c_int, CStr, OsString};
use std::os::unix::ffi::OsStringExt;

// Most of a short run's allocations fit in a static arena (see arena.rs).
#[global_allocator]
static ALLOC: xnurun::app::arena::Arena = xnurun::app::arena::Arena::new();

#[unsafe(no_mangle)]
/// # Safety
/// Called by the C runtime with its argc, argv and environment.
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let ignored = xnurun::app::sigpipe_ignored();
    let args: Vec<OsString> = (0..argc.max(0) as usize)
        // SAFETY: the C runtime passes argc valid NUL-terminated strings.
        .map(|i| OsString::from_vec(unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes().to_vec()))
        .collect();
    // SAFETY: the C runtime's envp is NULL-terminated, its strings
    // NUL-terminated, all alive for the whole run.
    let env: Vec<&[u8]> = (0..).map(|i| unsafe { *envp.add(i) }).take_while(|p| !p.is_null()).map(|p| unsafe { CStr::from_ptr(p) }.to_bytes()).collect();
    let status = xnurun::app::main_with(args, &env, ignored);
    std::process::exit(status)
}
