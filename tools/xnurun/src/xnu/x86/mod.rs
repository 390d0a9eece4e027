//! XNU on x86: the ways into the kernel and what the task's bitness allows
//! ([`gate`]), the two conventions that read a call ([`x86_64`]: `syscall`
//! with class bits; [`i386`]: `sysenter` and `int 0x80` with stack
//! arguments), the registers they read and write ([`state`]), the state a
//! Mach trap's `thread_get_state` sees ([`thread_state`]), the signal
//! each CPU exception becomes ([`exception`]), and the one function that
//! answers an entry ([`kernel`]).

pub mod exception;
pub mod gate;
pub mod i386;
pub mod kernel;
pub mod state;
pub mod thread_state;
pub mod x86_64;
