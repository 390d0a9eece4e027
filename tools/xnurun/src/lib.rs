//! xnurun: runs XNU (macOS) executables on Linux, answering their system
//! calls exactly as XNU does; none of them ever reaches Linux. Static x86
//! images (x86_64, and i386 as macOS 10.14 ran them) run on the real CPU
//! at native speed under ptrace and seccomp, on a Linux x86_64 host; arm64
//! images, and x86 images on any other host, run on an emulated CPU
//! (unicorn). It is the `runner` for the project's three darwin targets.
//!
//! The modules are layers, and imports run one way only, down this list:
//!
//! - [`app`]: the command line, and the choice of CPU for an image.
//! - [`cpu`]: the CPUs that run a guest ([`cpu::real`], [`cpu::emulated`]):
//!   they stop at traps and faults and move registers, nothing more.
//! - [`image`]: reading and judging a file as XNU's exec path, AMFI and
//!   dyld would, and the plan of what to map.
//! - [`xnu`]: what XNU is: its numbers, its calls, each architecture's way
//!   into the kernel and the answer to it, the trace, how a run ends.

pub mod app;
pub mod cpu;
pub mod image;
pub mod xnu;
