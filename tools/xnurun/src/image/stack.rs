//! The initial stack of a static image, laid out as XNU's exec path does.
//!
//! bsd/kern/kern_exec.c builds one string area: `exec_save_path` puts
//! `executable_path=PATH` first, `exec_extract_strings` appends the argv and
//! envp strings, `exec_add_apple_strings` the rest of the apple strings, each
//! group padded with NULs to a pointer. `exec_copyout_strings` copies that
//! area so that it ends at the stack top, puts the pointer arrays below it
//! (`argv[]`, NULL, `envp[]`, NULL, `apple[]`, NULL) and `argc` in a
//! pointer-sized slot below those: the stack pointer points at `argc`. A
//! static image gets no `mach_header` pointer (that is pushed only for
//! dyld), so the entry point sees exactly this.
//!
//! The only apple string xnurun supplies is `executable_path=`; XNU adds
//! more (`ptr_munge=`, `main_stack=`, ...) that a static image cannot rely
//! on.

/// `NCARGS` (bsd/sys/param.h): exec's limit on the argument area; past it
/// execve fails with `E2BIG`.
pub const NCARGS: usize = 1024 * 1024;

/// The stack contents, to be written at `sp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    pub sp: u64,
    pub bytes: Vec<u8>,
}

fn pad(area: &mut Vec<u8>, ptr: usize) {
    while !area.len().is_multiple_of(ptr) {
        area.push(0);
    }
}

/// Builds the stack that ends at `top` for a process with `ptr`-byte
/// pointers (8 or 4). Fails like execve with `E2BIG` when the strings do not
/// fit in `NCARGS`.
pub fn build(ptr: usize, top: u64, exec_path: &[u8], argv: &[&[u8]], envp: &[&[u8]]) -> Result<InitialStack, String> {
    let mut strings = Vec::new();
    let mut offsets_arg = Vec::new();
    let mut offsets_env = Vec::new();

    let exec_off = strings.len();
    strings.extend_from_slice(b"executable_path=");
    strings.extend_from_slice(exec_path);
    strings.push(0);
    pad(&mut strings, ptr);
    for a in argv {
        offsets_arg.push(strings.len());
        strings.extend_from_slice(a);
        strings.push(0);
    }
    for e in envp {
        offsets_env.push(strings.len());
        strings.extend_from_slice(e);
        strings.push(0);
    }
    pad(&mut strings, ptr);
    if strings.len() > NCARGS {
        return Err(format!("argument list too long: {} bytes of strings, exec allows {NCARGS} (E2BIG)", strings.len()));
    }

    let nptrs = argv.len() + envp.len() + 1 + 3;
    let ptr_area_size = nptrs * ptr;
    // A custom stack pointer can sit anywhere, low ones included: what
    // does not fit below it is what exec_copyout_strings fails on.
    let (string_area, sp) = top
        .checked_sub(strings.len() as u64)
        .and_then(|a| Some((a, a.checked_sub((ptr_area_size + ptr) as u64)?)))
        .ok_or_else(|| format!("the initial stack ({} bytes) does not fit below the stack pointer 0x{top:x}", strings.len() + ptr_area_size + ptr))?;

    let mut bytes = Vec::with_capacity(ptr + ptr_area_size + strings.len());
    let put = |b: &mut Vec<u8>, v: u64| {
        if ptr == 8 {
            b.extend_from_slice(&v.to_le_bytes());
        } else {
            b.extend_from_slice(&(v as u32).to_le_bytes());
        }
    };
    // argc is an int stored in a pointer-sized slot (copyoutptr).
    put(&mut bytes, argv.len() as u64);
    for &o in &offsets_arg {
        put(&mut bytes, string_area + o as u64);
    }
    put(&mut bytes, 0);
    for &o in &offsets_env {
        put(&mut bytes, string_area + o as u64);
    }
    put(&mut bytes, 0);
    put(&mut bytes, string_area + exec_off as u64);
    put(&mut bytes, 0);
    bytes.extend_from_slice(&strings);
    debug_assert_eq!(sp + bytes.len() as u64, top);
    Ok(InitialStack { sp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], i: usize, ptr: usize) -> u64 {
        let s = &b[i * ptr..i * ptr + ptr];
        if ptr == 8 {
            u64::from_le_bytes(s.try_into().unwrap())
        } else {
            u64::from(u32::from_le_bytes(s.try_into().unwrap()))
        }
    }

    fn cstr(st: &InitialStack, addr: u64) -> String {
        let off = (addr - st.sp) as usize;
        let end = st.bytes[off..].iter().position(|&c| c == 0).unwrap();
        String::from_utf8(st.bytes[off..off + end].to_vec()).unwrap()
    }

    #[test]
    fn layout_matches_exec_copyout_strings() {
        for ptr in [8usize, 4] {
            let top = if ptr == 8 { 0x7ff7_bff0_0000 } else { 0xc000_0000 };
            let st = build(ptr, top, b"./hello", &[b"./hello", b"-x"], &[b"A=1"]).unwrap();
            assert_eq!(st.sp + st.bytes.len() as u64, top);
            assert_eq!(st.sp % ptr as u64, 0);
            let w = |i| word(&st.bytes, i, ptr);
            assert_eq!(w(0), 2, "argc");
            assert_eq!(cstr(&st, w(1)), "./hello");
            assert_eq!(cstr(&st, w(2)), "-x");
            assert_eq!(w(3), 0);
            assert_eq!(cstr(&st, w(4)), "A=1");
            assert_eq!(w(5), 0);
            assert_eq!(cstr(&st, w(6)), "executable_path=./hello");
            assert_eq!(w(7), 0);
            // The string area starts with the executable path.
            assert_eq!(w(6), st.sp + 8 * ptr as u64);
        }
    }

    #[test]
    fn too_many_strings_is_e2big() {
        let big = vec![b'a'; NCARGS];
        assert!(build(8, 0x7ff7_bff0_0000, b"x", &[&big], &[]).is_err());
    }
}
