//! XNU on arm64: the `svc #0x80` convention ([`convention`]) and the one
//! function that answers a kernel entry or exception ([`kernel`]), the
//! twin of [`super::x86::kernel`].

pub mod convention;
pub mod kernel;
