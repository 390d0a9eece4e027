//! XNU on arm64: the `svc #0x80` convention ([`convention`]), the state a
//! Mach trap's `thread_get_state` sees ([`thread_state`]), and the one
//! function that answers a kernel entry or exception ([`kernel`]), the
//! twin of [`super::x86::kernel`].

pub mod convention;
pub mod kernel;
pub mod thread_state;
