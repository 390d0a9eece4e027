//! A thread's saved user state as `thread_get_state`/`thread_set_state`
//! see it: the registers the trap saved on entry, in the words of a
//! flavor. Each architecture's kernel implements this over its own
//! registers (`machine_thread_get_state`, osfmk/i386/pcb.c and
//! osfmk/arm64/status.c); the Mach layer only moves the words.

/// Why a flavor's words could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// XNU's answer: a kern_return_t.
    Kern(u32),
    /// A flavor XNU serves and xnurun does not: its name.
    Unimplemented(&'static str),
}

pub trait ThreadState {
    /// The state of `flavor`, given room for `count` words.
    fn get(&self, flavor: u32, count: u32) -> Result<Vec<u32>, StateError>;
    /// Sets the state of `flavor` from `words`.
    fn set(&mut self, flavor: u32, words: &[u32]) -> Result<(), StateError>;
    /// The flavor's name, for the trace.
    fn flavor_name(&self, flavor: u32) -> String;
}
