//! Copies stdin to stdout with `read` and `write`: a read interrupted by a
//! signal (EINTR) is made again, a short write finished, and any other
//! error ends the program with status 1.
//!
//! ```text
//! echo hi | cargo run --release --example cat --target i686-apple-darwin
//! ```
#![no_std]
#![no_main]

mod sys;

pub fn main(_: &sys::Start) -> i32 {
    let mut buf = [0u8; 4096];
    loop {
        match sys::read(0, &mut buf) {
            Ok(0) => return 0,
            Ok(n) => {
                if sys::write_all(1, &buf[..n]).is_err() {
                    return 1;
                }
            }
            Err(sys::EINTR) => {}
            Err(_) => return 1,
        }
    }
}
