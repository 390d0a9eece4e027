//! Hostile guests: each tries to make a real Linux system call by a way
//! that single-stepping cannot see, or to read what XNU would not map. The
//! Linux call each one tries is `creat(PATH)`, so success would leave a
//! file behind: the tests look for that file themselves instead of trusting
//! xnurun's report. Every guest runs twice on the real CPU, natively and
//! single-stepped (`--max-steps`); containment by seccomp is that
//! backend's. The guests that do nothing hostile also run on the emulated
//! CPU, which must agree.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const X64_CODE: u64 = BASE64 + CODE_OFF;
const I386_CODE: u64 = BASE32 + CODE_OFF;
/// Where the text goes in the 64-bit images that switch to 32-bit code:
/// below 4 GiB, so 32-bit code can run there.
const LOW64: u64 = 0x10000;

fn marker(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("xnurun-contain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn path_bytes(p: &std::path::Path) -> Vec<u8> {
    let mut b = p.to_str().unwrap().as_bytes().to_vec();
    b.push(0);
    b
}

/// x86_64: Linux `creat(path, 0644)`: rax 85, rdi, rsi.
fn creat64(a: &mut Asm) {
    a.raw(&[0xb8, 85, 0, 0, 0]).rel(&[0x48, 0x8d, 0x3d], "path").raw(&[0xbe, 0xa4, 0x01, 0, 0]);
}

/// i386: Linux `creat(path, 0644)` through int 0x80: eax 8, ebx, ecx.
fn creat32(a: &mut Asm) {
    a.raw(&[0xb8, 8, 0, 0, 0]).abs(&[0xbb], "path").raw(&[0xb9, 0xa4, 0x01, 0, 0]);
}

/// XNU exit(7), 64-bit convention.
fn exit7_64(a: &mut Asm) {
    a.raw(&[0xbf, 7, 0, 0, 0, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]);
}

/// XNU exit(7) through int 0x80.
fn exit7_32(a: &mut Asm) {
    a.raw(&[0x6a, 7, 0x50, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]);
}

/// A low 64-bit image: one-page page zero, __TEXT at LOW64.
fn low64(code: Vec<u8>) -> Image {
    let mut img = Image::new64(code);
    img.segs[0].vmsize = 0x1000;
    img.segs[1].vmaddr = LOW64;
    img.entry = LOW64 + CODE_OFF;
    img
}

/// Runs the image natively and single-stepped; checks the marker file
/// never appears and returns both exit statuses.
fn contained(name: &str, img: &Image, marker: &std::path::Path) -> [Option<i32>; 2] {
    let bytes = img.bytes();
    let mut out = [None, None];
    for (i, opts) in [&[][..], &["--max-steps", "1000000"][..]].iter().enumerate() {
        let o = run_on("real", name, &bytes, opts);
        assert!(!marker.exists(), "{name} {opts:?}: the guest made a real Linux call (it created {}); stderr: {}", marker.display(), stderr(&o));
        out[i] = o.status.code();
    }
    out
}

#[test]
fn mov_ss_before_syscall_and_int80_is_still_stopped() {
    let m = marker("movss64");
    let mut a = Asm::new(X64_CODE);
    creat64(&mut a);
    a.raw(&[0x8c, 0xd1, 0x8e, 0xd1, 0x0f, 0x05]); // mov ecx, ss; mov ss, ecx; syscall
    exit7_64(&mut a);
    a.label("path").raw(&path_bytes(&m));
    // rax 85 has class 0: EXC_SYSCALL, SIGSYS, as XNU would answer.
    assert_eq!(contained("movss64", &Image::new64(a.finish()), &m), [Some(140); 2]);

    let m = marker("popss32");
    let mut a = Asm::new(I386_CODE);
    creat32(&mut a);
    a.raw(&[0x16, 0x17, 0xcd, 0x80]); // push ss; pop ss; int 0x80
    exit7_32(&mut a);
    a.label("path").raw(&path_bytes(&m));
    // XNU's i386 call 8 is the old creat slot, enosys: ENOSYS, no signal.
    assert_eq!(contained("popss32", &Image::new32(a.finish()), &m), [Some(7); 2]);
}

#[test]
fn umip_emulated_instructions_before_a_call_are_still_stopped() {
    for (i, insn) in [&[0x0f, 0x01, 0x44, 0x24, 0xf0][..], &[0x0f, 0x01, 0x4c, 0x24, 0xf0], &[0x0f, 0x01, 0xe2], &[0x0f, 0x00, 0xc2], &[0x0f, 0x00, 0xca]]
        .iter()
        .enumerate()
    {
        let m = marker(&format!("umip64-{i}"));
        let mut a = Asm::new(X64_CODE);
        creat64(&mut a);
        a.raw(insn).raw(&[0x0f, 0x05]);
        exit7_64(&mut a);
        a.label("path").raw(&path_bytes(&m));
        // XNU never sets CR4.UMIP: the instruction runs, then the call
        // with Linux's number is class 0, EXC_SYSCALL: SIGSYS.
        let img = Image::new64(a.finish());
        assert_eq!(contained(&format!("umip64-{i}"), &img, &m), [Some(140); 2], "umip64-{i}");
        assert_eq!(run_on("emulated", &format!("umip64-{i}"), &img.bytes(), &[]).status.code(), Some(140), "umip64-{i}");
        let m = marker(&format!("umip32-{i}"));
        let mut a = Asm::new(I386_CODE);
        creat32(&mut a);
        a.raw(insn).raw(&[0xcd, 0x80]);
        exit7_32(&mut a);
        a.label("path").raw(&path_bytes(&m));
        // i386: Linux's creat number is XNU's old creat, enosys: the
        // guest goes on to exit(7).
        let img = Image::new32(a.finish());
        assert_eq!(contained(&format!("umip32-{i}"), &img, &m), [Some(7); 2], "umip32-{i}");
        assert_eq!(run_on("emulated", &format!("umip32-{i}"), &img.bytes(), &[]).status.code(), Some(7), "umip32-{i}");
    }
}

#[test]
fn the_vsyscall_page_is_sigsegv_and_never_a_way_out() {
    for (i, off) in [0u8, 0x04, 0x08].iter().enumerate() {
        let m = marker(&format!("vsys-{i}"));
        let mut a = Asm::new(X64_CODE);
        creat64(&mut a);
        a.raw(&[0x49, 0xc7, 0xc3, 0x00, *off, 0x60, 0xff]); // mov r11, 0xffffffffff60XX00
        a.raw(&[0x41, 0xff, 0xd3]); // call r11
        a.raw(&[0x0f, 0x05]);
        exit7_64(&mut a);
        a.label("path").raw(&path_bytes(&m));
        assert_eq!(contained(&format!("vsys-{i}"), &Image::new64(a.finish()), &m), [Some(139); 2]);
    }
    // Reading it: XNU has nothing there either. (Real CPU only: unicorn
    // reports the fault address of a kernel-half access cut to 48 bits.)
    let o = run_on("real", "vsysread", &Image::new64(vec![0x48, 0x8b, 0x04, 0x25, 0, 0, 0x60, 0xff]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(139), "{}", stderr(&o));
}

#[test]
fn a_restart_value_in_the_thread_state_restarts_nothing() {
    for rax in [-513i64, -516, -512, -514] {
        // The two bytes before the entry are a syscall: a Linux restart
        // would land on it.
        let mut code = vec![0x0f, 0x05];
        let mut a = Asm::new(X64_CODE + 2);
        exit7_64(&mut a);
        code.extend(a.finish());
        let mut img = Image::new64(code);
        img.entry = X64_CODE + 2;
        img.rax = rax as u64;
        let o = run("restart64", &img.bytes(), &[]);
        assert_eq!(o.status.code(), Some(7), "rax {rax}: {}", stderr(&o));

        let mut code = vec![0xcd, 0x80];
        let mut a = Asm::new(I386_CODE + 2);
        exit7_32(&mut a);
        code.extend(a.finish());
        let mut img = Image::new32(code);
        img.entry = I386_CODE + 2;
        img.rax = rax as u64;
        let o = run("restart32", &img.bytes(), &[]);
        assert_eq!(o.status.code(), Some(7), "rax {rax}: {}", stderr(&o));
    }
}

#[test]
fn an_i386_image_in_64_bit_mode_gets_xnus_64_bit_answers() {
    // ljmp 0x33:target, then `48 0f 05`, which 32-bit mode would read as
    // dec eax; syscall.
    let m = marker("to64");
    let mut a = Asm::new(I386_CODE);
    a.abs(&[0xea], "target").raw(&[0x33, 0x00]);
    a.label("target");
    creat64(&mut a);
    a.raw(&[0x48, 0x0f, 0x05]);
    exit7_64(&mut a);
    a.label("path").raw(&path_bytes(&m));
    let img = Image::new32(a.finish());
    assert_eq!(contained("to64", &img, &m), [Some(140); 2]);
    // The emulated CPU has the same user segments as the real one: the far
    // jump switches modes there too, and the call is answered the same.
    let o = run_on("emulated", "to64", &img.bytes(), &[]);
    assert_eq!(o.status.code(), Some(140), "{}", stderr(&o));
    assert!(!m.exists());

    // int 0x80 from 64-bit code in an i386 task: still XNU's i386 gate.
    let m = marker("to64int80");
    let mut a = Asm::new(I386_CODE);
    a.abs(&[0xea], "target").raw(&[0x33, 0x00]);
    a.label("target");
    creat32(&mut a);
    a.raw(&[0xcd, 0x80]);
    exit7_64(&mut a);
    a.label("path").raw(&path_bytes(&m));
    assert_eq!(contained("to64int80", &Image::new32(a.finish()), &m), [Some(7); 2]);
}

#[test]
fn a_64_bit_image_in_32_bit_mode_gets_sigill_for_every_32_bit_gate() {
    for (name, gate) in [("int80", &[0xcd, 0x80][..]), ("sysenter", &[0x0f, 0x34]), ("syscall32", &[0x0f, 0x05])] {
        let m = marker(&format!("to32-{name}"));
        let mut a = Asm::new(LOW64 + CODE_OFF);
        a.raw(&[0x6a, 0x23]).abs(&[0x68], "target").raw(&[0x48, 0xcb]); // push 0x23; push target; retfq
        a.label("target");
        creat32(&mut a);
        a.raw(gate);
        exit7_32(&mut a);
        a.label("path").raw(&path_bytes(&m));
        assert_eq!(contained(&format!("to32-{name}"), &low64(a.finish()), &m), [Some(132); 2], "{name}");
    }
    // And back to 64-bit mode: the CPU's mode decides, so `syscall` there is
    // a 64-bit call again.
    let m = marker("to32-back");
    let mut a = Asm::new(LOW64 + CODE_OFF);
    a.raw(&[0x6a, 0x23]).abs(&[0x68], "t32").raw(&[0x48, 0xcb]);
    a.label("t32").abs(&[0xea], "t64").raw(&[0x33, 0x00]);
    a.label("t64");
    creat64(&mut a);
    a.raw(&[0x0f, 0x05]);
    exit7_64(&mut a);
    a.label("path").raw(&path_bytes(&m));
    assert_eq!(contained("to32-back", &low64(a.finish()), &m), [Some(140); 2]);
}

#[test]
fn prefixed_syscalls_are_what_the_cpu_makes_of_them() {
    // lock syscall: #UD, SIGILL. A segment override: an ordinary syscall,
    // SIGSYS for class 0. 14 prefixes make 16 bytes: #GP, SIGSEGV.
    let mut long = vec![0x2e; 14];
    long.extend_from_slice(&[0x0f, 0x05]);
    for (i, (insn, want)) in [(vec![0xf0, 0x0f, 0x05], 132), (vec![0x2e, 0x0f, 0x05], 140), (vec![0x48, 0x0f, 0x05], 140), (long, 139)].into_iter().enumerate() {
        let m = marker(&format!("prefix-{i}"));
        let mut a = Asm::new(X64_CODE);
        creat64(&mut a);
        a.raw(&insn);
        exit7_64(&mut a);
        a.label("path").raw(&path_bytes(&m));
        assert_eq!(contained(&format!("prefix-{i}"), &Image::new64(a.finish()), &m), [Some(want); 2], "{insn:02x?}");
    }
}

#[test]
fn trap_bytes_on_a_non_executable_page_fault_and_are_never_answered() {
    // __DATA rw- holds `syscall`; the guest jumps there with exit(7) ready.
    let mut img = Image::new64(vec![0xbf, 7, 0, 0, 0, 0xb8, 1, 0, 0, 2, 0x49, 0xbb]);
    let data = BASE64 + 0x1000;
    img.code.extend_from_slice(&data.to_le_bytes()); // movabs r11, data
    img.code.extend_from_slice(&[0x41, 0xff, 0xe3]); // jmp r11
    img.segs.push(Seg { name: "__DATA", vmaddr: data, vmsize: 0x1000, fileoff: 0x1000, filesize: 0x1000, maxprot: 3, initprot: 3 });
    img.size = 0x2000;
    let mut bytes = img.bytes();
    bytes[0x1000..0x1002].copy_from_slice(&[0x0f, 0x05]);
    for opts in [&[][..], &["--max-steps", "1000"]] {
        let o = run("nx", &bytes, opts);
        // A protection failure on mapped memory: SIGBUS, not exit(7).
        assert_eq!(o.status.code(), Some(138), "{opts:?}: {}", stderr(&o));
    }
}

/// The child xnurun runs the guest in, once it is mapped.
fn guest_of(xnurun_pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kids = std::fs::read_to_string(format!("/proc/{xnurun_pid}/task/{xnurun_pid}/children")).unwrap_or_default();
        if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()) {
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            if maps.contains("100000000-100001000") {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no guest process appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// xnurun's first child, as soon as it exists.
fn first_child(xnurun_pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kids = std::fs::read_to_string(format!("/proc/{xnurun_pid}/task/{xnurun_pid}/children")).unwrap_or_default();
        if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no guest process appeared");
    }
}

#[test]
fn the_guest_address_space_holds_only_what_xnu_maps_and_no_descriptor() {
    let path = write_image("maps", &Image::new64(vec![0xeb, 0xfe]).bytes());
    let mut child = xnurun().arg(&path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let guest = guest_of(child.id());
    // Set-up ends by unmapping its own page: wait until it is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let maps = loop {
        let m = std::fs::read_to_string(format!("/proc/{guest}/maps")).unwrap();
        if !m.contains("7fffffe00000") || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{guest}/fd")).unwrap().collect();
    child.kill().unwrap();
    child.wait().unwrap();
    // What the guest can see is addresses and protections: Linux keeps the
    // stack as two areas (its top page maps the initial stack's bytes from
    // xnurun's file), which count as one range here.
    let mut ranges: Vec<(String, &str)> = Vec::new();
    for l in maps.lines() {
        let mut f = l.split_whitespace();
        let (range, perms) = (f.next().unwrap(), f.next().unwrap());
        let (start, end) = range.split_once('-').unwrap();
        match ranges.last_mut() {
            Some((prev, p)) if *p == perms && prev.ends_with(&format!("-{start}")) => {
                *prev = format!("{}-{end}", prev.split_once('-').unwrap().0);
            }
            _ => ranges.push((range.to_string(), perms)),
        }
    }
    // __TEXT; the stack reservation below USRSTACK64 (0x7ff7bff00000):
    // 56 MiB without access, 8 MiB read-write; vsyscall, which Linux never
    // lets a process unmap, where this kernel has one (vsyscall=none and
    // CONFIG_LEGACY_VSYSCALL_NONE, as Debian's kernels, have none): as in
    // this test's own address space.
    let mut want = vec![
        ("100000000-100001000", "r-xp"),
        ("7ff7bbf00000-7ff7bf700000", "---p"),
        ("7ff7bf700000-7ff7bff00000", "rw-p"),
    ];
    let own = std::fs::read_to_string("/proc/self/maps").unwrap();
    let vsyscall = own.lines().find_map(|l| l.strip_prefix("ffffffffff600000-ffffffffff601000 ")).map(|rest| rest[..4].to_string());
    if let Some(perms) = &vsyscall {
        want.push(("ffffffffff600000-ffffffffff601000", perms));
    }
    assert_eq!(ranges.iter().map(|(r, p)| (r.as_str(), *p)).collect::<Vec<_>>(), want, "{maps}");
    assert!(fds.is_empty(), "the guest holds descriptors: {fds:?}");
}

/// xnurun and its guest share the one CPU xnurun started on
/// (`share_one_cpu`, cpu/real/guest.rs: each stop is then a local context
/// switch, bench/results.md), out of the set this test runs in.
#[test]
fn the_guest_runs_on_the_one_cpu_xnurun_runs_on() {
    let allowed = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string()
    };
    let path = write_image("one-cpu", &Image::new64(vec![0xeb, 0xfe]).bytes());
    let mut child = xnurun().args(["--cpu", "real"]).arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let guest = guest_of(child.id());
    let (theirs, its, ours) = (allowed(child.id()), allowed(guest), allowed(std::process::id()));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(theirs.parse::<u32>().is_ok(), "xnurun may run on {theirs}, out of {ours}");
    assert_eq!(its, theirs, "the guest may run on {its}, xnurun on {theirs}");
}

#[test]
fn the_guest_dies_with_xnurun_and_a_sigkill_from_outside_is_137() {
    let path = write_image("kill", &Image::new64(vec![0xeb, 0xfe]).bytes());
    let child = xnurun().arg(&path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let guest = guest_of(child.id());
    assert_eq!(unsafe { nix::libc::kill(guest as i32, nix::libc::SIGKILL) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert!(stderr(&o).contains("SIGKILL"), "{}", stderr(&o));

    let mut child = xnurun().arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let guest = guest_of(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(&format!("/proc/{guest}/maps")).exists()
        && std::fs::read_to_string(format!("/proc/{guest}/stat")).map(|s| !s.contains(") Z")).unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "the guest outlived xnurun");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A SIGKILL from outside ends the guest even while xnurun is answering
/// one of its calls, and xnurun's next ptrace request then fails (ESRCH):
/// the run still ends as the guest did, 137, never as a runner failure.
/// The guest makes nothing but calls, so most kills land inside a stop;
/// half of them are sent during the guest's set-up.
#[test]
fn a_sigkill_while_a_call_is_answered_is_137() {
    // write(1, 0, 0), again and again: mov edi, 1; xor esi, esi;
    // xor edx, edx; mov eax, 0x2000004; syscall; jmp to the start
    let code = vec![0xbf, 1, 0, 0, 0, 0x31, 0xf6, 0x31, 0xd2, 0xb8, 4, 0, 0, 2, 0x0f, 0x05, 0xeb, 0xee];
    let path = write_image("kill-calls", &Image::new64(code).bytes());
    for i in 0..60u64 {
        let child = xnurun().arg(&path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        // Every other run is killed as soon as the guest's process exists,
        // in its set-up; the rest while it runs.
        let guest = if i % 2 == 0 {
            first_child(child.id())
        } else {
            let guest = guest_of(child.id());
            std::thread::sleep(Duration::from_micros(i * 37 % 1000));
            guest
        };
        assert_eq!(unsafe { nix::libc::kill(guest as i32, nix::libc::SIGKILL) }, 0);
        let o = child.wait_with_output().unwrap();
        assert_eq!((o.status.code(), stderr(&o).contains("SIGKILL")), (Some(137), true), "run {i}: {}", stderr(&o));
    }
}

#[test]
fn a_write_from_memory_xnu_never_mapped_is_efault() {
    // Where xnurun's own code sat in the guest before (its no-ASLR base),
    // and where Linux put the vDSO: write(1, addr, 4), exit(rax).
    for addr in [0x5555_5555_4000u64, 0x7fff_f7fc_1000] {
        let mut code = vec![0xbf, 1, 0, 0, 0, 0x48, 0xbe];
        code.extend_from_slice(&addr.to_le_bytes());
        code.extend_from_slice(&[0xba, 4, 0, 0, 0, 0xb8, 4, 0, 0, 2, 0x0f, 0x05]);
        code.extend_from_slice(&[0x89, 0xc7, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]); // mov edi, eax; exit
        let o = run("runneraddr", &Image::new64(code).bytes(), &[]);
        assert_eq!(o.status.code(), Some(14), "0x{addr:x}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "0x{addr:x}: {:?}", o.stdout);
    }
}

#[test]
fn a_buffer_that_ends_part_way_is_efault_after_the_bytes_before() {
    // write(1, last 3 bytes of __TEXT, 10): "xyz" goes out, then EFAULT.
    let mut code = vec![0xbf, 1, 0, 0, 0, 0x48, 0xbe];
    code.extend_from_slice(&(BASE64 + 0x1000 - 3).to_le_bytes());
    code.extend_from_slice(&[0xba, 10, 0, 0, 0, 0xb8, 4, 0, 0, 2, 0x0f, 0x05]);
    code.extend_from_slice(&[0x89, 0xc7, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]);
    let mut bytes = Image::new64(code).bytes();
    bytes[0x1000 - 3..].copy_from_slice(b"xyz");
    let o = run("partial", &bytes, &[]);
    assert_eq!(o.status.code(), Some(14), "{}", stderr(&o));
    assert_eq!(o.stdout, b"xyz");
}

#[test]
fn a_stack_overflow_is_sigsegv_quickly() {
    // call self, forever: 8 MiB of return addresses, then the guard.
    let o = run("overflow", &Image::new64(vec![0xe8, 0xfb, 0xff, 0xff, 0xff]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(139), "{}", stderr(&o));
    assert!(stderr(&o).contains("stack overflow"), "{}", stderr(&o));
}

#[test]
fn into_is_sigfpe_bound_is_sigtrap_and_syscall_in_32_bit_mode_is_sigill() {
    // mov al, 127; add al, 1 (OF); into
    let o = run("into", &Image::new32(vec![0xb0, 0x7f, 0x04, 0x01, 0xce]).bytes(), &[]);
    assert_eq!(o.status.code(), Some(136), "{}", stderr(&o));
    // mov eax, 5; bound eax, [bounds] with bounds 0..0
    let mut a = Asm::new(I386_CODE);
    a.raw(&[0xb8, 5, 0, 0, 0]).abs(&[0x62, 0x05], "b").label("b").raw(&[0; 8]);
    let o = run("bound", &Image::new32(a.finish()).bytes(), &[]);
    assert_eq!(o.status.code(), Some(133), "{}", stderr(&o));
    // `syscall` in 32-bit mode: SIGILL on both CPUs, as on Intel; where
    // Linux on AMD let it run, the real CPU cannot name its address, so the
    // two reports differ and only the status is compared.
    for cpu in ["real", "emulated"] {
        let o = run_on(cpu, "sc32", &Image::new32(vec![0x0f, 0x05]).bytes(), &[]);
        assert_eq!(o.status.code(), Some(132), "{cpu}: {}", stderr(&o));
    }
}

#[test]
fn only_regular_files_are_run_and_only_what_loading_needs_is_read() {
    for dev in ["/dev/zero", "/dev/null", "/tmp"] {
        let o = xnurun().arg(dev).output().unwrap();
        assert_eq!(o.status.code(), Some(126), "{dev}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{dev}: {}", stderr(&o));
    }
    let fifo = std::env::temp_dir().join(format!("xnurun-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = xnurun().arg(&fifo).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("xnurun blocked on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(126));
    let _ = std::fs::remove_file(&fifo);

    // A valid image padded to a sparse 6 GB file runs with 512 MiB of
    // address space: xnurun reads its header and segments, nothing more.
    let mut a = Asm::new(X64_CODE);
    a.raw(&[0xbf, 1, 0, 0, 0]).rel(&[0x48, 0x8d, 0x35], "msg").raw(&[0xba, 3, 0, 0, 0, 0xb8, 4, 0, 0, 2, 0x0f, 0x05]);
    a.raw(&[0x31, 0xff, 0xb8, 1, 0, 0, 2, 0x0f, 0x05]).label("msg").raw(b"big");
    let path = write_image("sparse", &Image::new64(a.finish()).bytes());
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(6_000_000_000).unwrap();
    let mut cmd = xnurun();
    cmd.arg(&path);
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = nix::libc::rlimit { rlim_cur: 512 << 20, rlim_max: 512 << 20 };
            nix::libc::setrlimit(nix::libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"big");
}
