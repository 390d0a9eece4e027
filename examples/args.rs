//! Prints what the kernel put on the initial stack: argc, every argv and
//! envp string, and on XNU the apple strings (`executable_path=` first).
//! The two layouts side by side: `sys::start_from_stack` reads the static
//! program's stack (Linux, and XNU without dyld); on arm64 macOS dyld
//! calls `main(argc, argv, envp, apple)` and the arrays arrive in x0-x3.
//!
//! ```text
//! cargo run --release --example args --target x86_64-apple-darwin -- one two
//! ```
#![no_std]
#![no_main]

mod sys;

/// Decimal digits of `n`, in a buffer the caller owns.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn line(parts: &[&[u8]]) -> Result<(), i32> {
    for p in parts {
        sys::write_all(1, p)?;
    }
    sys::write_all(1, b"\n")
}

fn list(name: &[u8], array: *const *const u8) -> Result<(), i32> {
    for (i, s) in sys::strings(array).enumerate() {
        line(&[name, b"[", decimal(i, &mut [0; 20]), b"] ", s])?;
    }
    Ok(())
}

fn print(start: &sys::Start) -> Result<(), i32> {
    line(&[b"argc ", decimal(start.argc, &mut [0; 20])])?;
    list(b"argv", start.argv)?;
    list(b"envp", start.envp)?;
    list(b"apple", start.apple)
}

pub fn main(start: &sys::Start) -> i32 {
    if print(start).is_ok() { 0 } else { 1 }
}
