//! xnurun's entry point. `#![no_main]`: std's runtime start-up would set
//! SIGPIPE to ignored before `main`, and xnurun must see the disposition it
//! inherited, which decides whether a guest's broken pipe is EPIPE or death
//! by SIGPIPE, as on XNU.
#![no_main]

use std::ffi::{c_char, c_int};

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    let ignored = xnurun::sigpipe_ignored();
    let status = xnurun::main_with(std::env::args_os().collect(), ignored);
    std::process::exit(status)
}
