#![allow(dead_code, unused_imports)]
//! The calls the examples make, `read`, `write` and `exit`, as plain
//! functions over one small file per convention (the same six conventions
//! as hello's `src/`), each with the same function set: `call3` for a call
//! that may write memory, `call3_readonly` for one that only reads it, and
//! `exit`, with the exact asm options each kernel allows (rustix's
//! `backend/linux_raw/arch/*.rs` is the model), plus the entry point each
//! convention needs. hello's own naked `_start` stays as it is; the
//! examples are ordinary Rust.

#[cfg_attr(all(target_os = "linux", target_arch = "x86_64"), path = "linux_x86_64.rs")]
#[cfg_attr(all(target_os = "linux", target_arch = "x86"), path = "linux_i386.rs")]
#[cfg_attr(all(target_os = "linux", target_arch = "aarch64"), path = "linux_aarch64.rs")]
#[cfg_attr(all(target_os = "macos", target_arch = "x86_64"), path = "xnu_x86_64.rs")]
#[cfg_attr(all(target_os = "macos", target_arch = "x86"), path = "xnu_i386.rs")]
#[cfg_attr(all(target_os = "macos", target_arch = "aarch64"), path = "xnu_arm64.rs")]
mod conv;

pub use conv::CONVENTION;
#[cfg(target_os = "macos")]
pub use conv::{mach_trap, mach_trap0};
#[cfg(target_os = "linux")]
pub use conv::{GETPID, KILL, PTRACE, WAIT4, call2_inline, call3_readonly, call4, fork};

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, i32> {
    conv::call3(conv::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len())
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize, i32> {
    conv::call3_readonly(conv::WRITE, fd as usize, buf.as_ptr() as usize, buf.len())
}

pub fn exit(status: i32) -> ! {
    conv::exit(status as usize)
}

/// EINTR is 4 on both kernels.
pub const EINTR: i32 = 4;

/// What the kernel left for the program. `apple` is XNU's fourth array
/// (`executable_path=...` first); Linux has none.
pub struct Start {
    pub argc: usize,
    pub argv: *const *const u8,
    pub envp: *const *const u8,
    pub apple: *const *const u8,
}

/// The strings of a NULL-terminated array.
pub fn strings(mut p: *const *const u8) -> impl Iterator<Item = &'static [u8]> {
    core::iter::from_fn(move || {
        // SAFETY: the kernel built the array and its strings; it ends with
        // a NULL pointer, and each string with a NUL byte.
        unsafe {
            if p.is_null() || (*p).is_null() {
                return None;
            }
            let s = *p;
            p = p.add(1);
            let mut n = 0;
            while *s.add(n) != 0 {
                n += 1;
            }
            Some(core::slice::from_raw_parts(s, n))
        }
    })
}

/// Writes all of `buf`: again after EINTR, the rest after a short write.
pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(0),
            Ok(n) => buf = &buf[n..],
            Err(EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The stack the kernel built for a static program (Linux; XNU without
/// dyld): `sp` points at argc, then argv[], NULL, envp[], NULL, and on XNU
/// apple[], NULL (`exec_copyout_strings`, bsd/kern/kern_exec.c).
#[allow(dead_code)]
pub extern "C" fn start_from_stack(sp: *const usize) -> ! {
    // SAFETY: the layout above, as the kernel wrote it.
    let start = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        let mut end = envp;
        while !(*end).is_null() {
            end = end.add(1);
        }
        let apple = if cfg!(target_os = "macos") { end.add(1) } else { core::ptr::null() };
        Start { argc, argv, envp, apple }
    };
    exit(crate::main(&start))
}

/// dyld's call of an arm64 `main(argc, argv, envp, apple)`.
#[allow(dead_code)]
pub extern "C" fn start_from_dyld(argc: usize, argv: *const *const u8, envp: *const *const u8, apple: *const *const u8) -> ! {
    exit(crate::main(&Start { argc, argv, envp, apple }))
}

// The memory functions compiled code calls (core::fmt copies with memcpy,
// a string walk becomes strlen): with no libc they must come from here.
// Volatile accesses keep LLVM from turning each loop back into a call to
// the function itself.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract: n bytes at each, not overlapping.
    unsafe {
        for i in 0..n {
            d.add(i).write_volatile(s.add(i).read_volatile());
        }
    }
    d
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract: n bytes at each; copied in the order
    // that survives overlap.
    unsafe {
        if (d as usize) < (s as usize) {
            for i in 0..n {
                d.add(i).write_volatile(s.add(i).read_volatile());
            }
        } else {
            for i in (0..n).rev() {
                d.add(i).write_volatile(s.add(i).read_volatile());
            }
        }
    }
    d
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract: n writable bytes.
    unsafe {
        for i in 0..n {
            d.add(i).write_volatile(c as u8);
        }
    }
    d
}

/// Darwin's zeroing call, which LLVM emits for memset(p, 0, n) there (so
/// it must not call memset, which LLVM would turn back into bzero).
#[cfg(target_os = "macos")]
#[unsafe(no_mangle)]
unsafe extern "C" fn bzero(d: *mut u8, n: usize) {
    // SAFETY: the caller's contract: n writable bytes.
    unsafe {
        for i in 0..n {
            d.add(i).write_volatile(0);
        }
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract: n readable bytes at each.
    unsafe {
        for i in 0..n {
            let (x, y) = (a.add(i).read_volatile(), b.add(i).read_volatile());
            if x != y {
                return i32::from(x) - i32::from(y);
            }
        }
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: as memcmp.
    unsafe { memcmp(a, b, n) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller's contract: a NUL-terminated string.
    unsafe {
        while s.add(n).read_volatile() != 0 {
            n += 1;
        }
    }
    n
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = write_all(2, b"panic\n");
    exit(101)
}
