//! The guest's memory as the kernel's `copyin` and `copyout` see it: page
//! protections honoured. Every CPU backend provides it; every call that
//! touches guest memory goes through it.

pub trait Memory {
    /// Copies from `addr` into `buf`; returns how many bytes, from the
    /// start, were readable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> usize;
    /// Copies `data` to `addr`; returns how many bytes, from the start,
    /// were writable and written.
    fn write(&mut self, addr: u64, data: &[u8]) -> usize;
    /// How many bytes from `addr` on, up to `len`, are writable.
    fn writable(&self, addr: u64, len: u64) -> u64;
}

/// Reads a little-endian 32-bit word, or `None` where it is not readable.
pub fn read_u32(mem: &dyn Memory, addr: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    (mem.read(addr, &mut b) == 4).then(|| u32::from_le_bytes(b))
}

/// Reads a little-endian 64-bit word, or `None` where it is not readable.
pub fn read_u64(mem: &dyn Memory, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (mem.read(addr, &mut b) == 8).then(|| u64::from_le_bytes(b))
}
