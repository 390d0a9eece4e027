//! Reading and judging a file as XNU's exec path, AMFI and dyld would, and
//! describing what to map and where the thread starts.
//!
//! - [`file`] opens only regular files and reads only what loading needs;
//!   of a universal file, the slice [`fat`] picks.
//! - [`x86`] accepts only what XNU runs as a static x86 image; [`arm64`]
//!   only what XNU, AMFI ([`codesign`]) and dyld run as an arm64 image;
//!   both judge their segments by the one set of rules in [`segments`].
//! - [`rebase`] lists the pointers dyld slides; [`stack`] builds the
//!   initial stack as `exec_copyout_strings` does; [`address_space`] is the
//!   one plan of what to map, for every architecture and page size.
//!
//! Each refusal is a [`Refusal`] naming the rule and the XNU function that
//! enforces it. The loaders read every field themselves, with checked
//! arithmetic, because the input is arbitrary bytes: they must never panic
//! and never accept what XNU refuses.

pub mod address_space;
pub mod arm64;
pub mod codesign;
pub mod fat;
pub mod file;
pub mod rebase;
pub mod segments;
pub mod stack;
pub mod symbols;
pub mod x86;

use crate::xnu::x86::state::X86State;
use crate::xnu::{vm, Arch};
use std::fmt;

/// Reads file bytes at an offset: how the loaders and the address-space
/// plan get bytes past the load commands.
pub type ReadAt<'a> = &'a dyn Fn(u64, &mut [u8]) -> Result<(), String>;

/// One segment to map, already checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub initprot: u32,
    pub maxprot: u32,
}

impl Segment {
    /// Range `[start, end)` as `load_segment` maps it, in pages of `page`
    /// bytes.
    pub fn vm_range(&self, page: u64) -> (u64, u64) {
        // Cannot overflow: checked in `segments::place`.
        (vm::trunc(self.vmaddr, page), vm::round(self.vmaddr + self.vmsize, page))
    }
}

/// How the first thread starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// `LC_UNIXTHREAD` (static x86 images): the kernel sets these general
    /// registers, widened to 64 bits, and starts at the entry.
    UnixThread(X86State),
    /// `LC_MAIN` (arm64 images): dyld calls `main(argc, argv, envp, apple)`
    /// at the entry.
    DyldMain,
}

/// What `load_machfile` (and, for arm64, dyld) hands to the exec path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub arch: Arch,
    /// Segments with `vmsize > 0`, page zero excluded.
    pub segments: Vec<Segment>,
    /// Page zero: `[0, end)`, never accessible.
    pub pagezero_end: u64,
    pub entry: u64,
    pub start: Start,
    /// Top of the stack: `USRSTACK*` or, for a custom stack (non-zero stack
    /// pointer in the thread state), that pointer truncated to a page.
    pub user_stack: u64,
    /// True when the thread state named the stack (`thread_userstack`):
    /// then XNU allocates none and the strings go below that pointer.
    pub custom_stack: bool,
    /// The file's size: segments map bytes from inside it.
    pub file_len: u64,
    /// Work dyld would do before `main` that xnurun does not (binding):
    /// what it is. Always `None` for static images.
    pub dyld_work: Option<String>,
    /// Link-time addresses of the pointers dyld would slide before `main`.
    pub rebases: Vec<u64>,
    /// `MH_ALLOW_STACK_EXECUTION`: `load_machfile` turns NX off for the
    /// whole map (`vm_map_disable_NX`) where code signing is not enforced
    /// globally (x86 Macs).
    pub nx_off: bool,
}

impl Image {
    /// The page size of the task's map.
    pub fn page(&self) -> u64 {
        vm::page(self.arch)
    }

    /// The protection the CPU enforces for memory mapped with `prot`
    /// (VM_PROT bits): readable memory is executable too where `override_nx`
    /// (osfmk/vm/vm_map.c) says so: everywhere with NX off, and outside
    /// the stack for an ABI whose data may run ([`vm::data_exec`]).
    pub fn effective_prot(&self, prot: u32, stack: bool) -> u32 {
        let exec_readable = self.nx_off || (!stack && vm::data_exec(self.arch));
        if exec_readable && prot & 1 != 0 { prot | 4 } else { prot }
    }
}

/// A reason XNU would not run the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Short name of the rule, stable for tests.
    pub rule: &'static str,
    /// What in this file broke it.
    pub detail: String,
    /// Where XNU enforces it.
    pub xnu: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (XNU: {})", self.rule, self.detail, self.xnu)
    }
}

pub(crate) fn refuse<T>(rule: &'static str, xnu: &'static str, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { rule, detail: detail.into(), xnu })
}

pub(crate) const EXEC_MACH: &str = "exec_mach_imgact, bsd/kern/kern_exec.c";
pub(crate) const PARSE: &str = "parse_machfile, bsd/kern/mach_loader.c";
pub(crate) const LOAD_SEGMENT: &str = "load_segment, bsd/kern/mach_loader.c";
pub(crate) const LOAD_MACHFILE: &str = "load_machfile, bsd/kern/mach_loader.c";

pub const RULE_DYLD: &str = "needs dyld: not a static executable";

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Loads the image whose first bytes are `head` (at least the header and
/// the load commands; see [`x86::head_len`]), reading the rest through
/// `read_at`: the arm64 loader for arm64 headers, the static x86 one for
/// the rest.
pub fn load(head: &[u8], file_len: u64, read_at: ReadAt) -> Result<Image, Refusal> {
    if arm64::is_arm64(head) { arm64::load(head, file_len, read_at) } else { x86::load_from(head, file_len) }
}
