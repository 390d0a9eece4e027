//! Hello, world! with no libc, no libSystem and no runtime: a naked `_start`
//! per system-call convention writes 14 bytes to fd 1 and exits. (On arm64
//! macOS dyld loads libSystem into every process, so that image names it
//! and never calls it: see `xnu_arm64.rs` and build.rs.)
//!
//! Each convention lives in a file of its own, chosen by target:
//!
//! | target                    | file               | instruction |
//! |---------------------------|--------------------|-------------|
//! | `x86_64-apple-darwin`     | `xnu_x86_64.rs`    | `syscall`   |
//! | `i686-apple-darwin`       | `xnu_i386.rs`      | `sysenter`  |
//! | `aarch64-apple-darwin`    | `xnu_arm64.rs`     | `svc #0x80` |
//! | `x86_64-unknown-linux-*`  | `linux_x86_64.rs`  | `syscall`   |
//! | `i686-unknown-linux-*`    | `linux_i386.rs`    | `int 0x80`  |
//! | `aarch64-unknown-linux-*` | `linux_aarch64.rs` | `svc #0`    |
//!
//! All six run the same algorithm, so a reader can compare them line by line:
//!
//! 1. `write(1, MESSAGE, 14)`.
//! 2. Interrupted (`EINTR`): issue the same write again.
//! 3. Short write of `n` bytes: write the rest, starting `n` bytes further on.
//! 4. Any other error, or a write of 0 bytes: stop writing, `exit(1)`.
//! 5. Everything written: `exit(0)`.
//!
//! On success that is exactly two system calls: one `write`, one `exit`.
#![no_std]
#![no_main]

#[cfg(all(target_os = "macos", target_arch = "x86_64"))]
mod xnu_x86_64;

#[cfg(all(target_os = "macos", target_arch = "x86"))]
mod xnu_i386;

#[cfg(all(target_os = "macos", target_arch = "aarch64"))]
mod xnu_arm64;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux_x86_64;

#[cfg(all(target_os = "linux", target_arch = "x86"))]
mod linux_i386;

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
mod linux_aarch64;

#[cfg(not(any(
    all(target_os = "macos", any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")),
    all(target_os = "linux", any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")),
)))]
compile_error!("hello speaks only XNU (x86_64, i386, arm64) and Linux (x86_64, i386, aarch64)");

/// The 14 bytes the program exists to write. An immutable `static` lands in
/// read-only memory (`__TEXT` on Mach-O, the single `r-x` segment on Linux),
/// so the program writes nothing but its own stack.
static MESSAGE: [u8; 14] = *b"Hello, world!\n";

/// Nothing in this program can panic (it has no Rust code, only `_start`),
/// but `no_std` demands a handler. `panic = "abort"` in every profile keeps
/// unwinding tables out of the binary.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
