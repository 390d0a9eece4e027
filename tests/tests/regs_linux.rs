//! examples/regs on the Linux conventions (examples/regs/ptrace.rs): a
//! child stops itself with kill(getpid(), SIGSTOP) under PTRACE_TRACEME
//! and its parent, the tracer, prints the registers ptrace gives it.
//!
//! x86_64 and i386 run natively (i386 through IA-32 emulation: without it
//! the i386 tests skip, saying so in one line). What is checked comes from
//! outside the program: the program counter against the binary (the trap
//! instruction of the child's kill, found by its symbol and llvm-objdump),
//! every value against strace's own decoding of the parent's ptrace call,
//! the stack pointer against where the kernel puts the stack, and the
//! child's end in the parent's system calls as strace shows them.
//!
//! aarch64 runs natively on an aarch64 host, with the same tests; anywhere
//! else it runs under qemu-user, which emulates no ptrace: there it must
//! say so in one line and exit 1.

use hello_tests::*;
use object::{Object, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One convention, as the tests know it: written here from the kernel's
/// headers, not taken from the example.
struct Conv {
    target: &'static str,
    /// The kernel's struct, in its order and names: `user_regs_struct`
    /// (arch/x86/include/asm/user_64.h; user_32.h as glibc's sys/user.h
    /// names it) or `user_pt_regs` (arch/arm64/include/uapi/asm/ptrace.h).
    names: &'static [&'static str],
    digits: usize,
    /// The system-call instruction's bytes.
    trap: &'static [u8],
    pc: &'static str,
    sp: &'static str,
    /// The register that still holds the call's number at the stop, and
    /// kill's number in this convention's table.
    nr: (&'static str, u64),
    /// The result register: kill's 0.
    ret: &'static str,
    /// kill's first argument (the child's own pid), where it survives the
    /// call (aarch64 returns the result in x0, over it), and its second.
    pid: Option<&'static str>,
    sig: &'static str,
    /// Fields whose value the architecture fixes: (name, mask, value).
    fixed: &'static [(&'static str, u64, u64)],
    /// Registers the trap instruction itself sets from others (x86_64's
    /// `syscall`: rcx gets rip, r11 gets rflags).
    same: &'static [(&'static str, &'static str)],
    /// How strace shows the parent's fork, and its ptrace request.
    fork: &'static str,
    request: &'static str,
    from: &'static str,
}

const SIGSTOP: u64 = 19;

const X86_64: Conv = Conv {
    target: LINUX_X86_64,
    names: &[
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
        "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
    ],
    digits: 16,
    trap: &[0x0f, 0x05], // syscall
    pc: "rip",
    sp: "rsp",
    nr: ("orig_rax", 62),
    ret: "rax",
    pid: Some("rdi"),
    sig: "rsi",
    // __USER_CS and __USER_DS (arch/x86/include/asm/segment.h); eflags'
    // bit 1 is always set, and IF is set in user mode.
    fixed: &[("cs", u64::MAX, 0x33), ("ss", u64::MAX, 0x2b), ("eflags", 0x202, 0x202)],
    same: &[("rcx", "rip"), ("r11", "eflags")],
    fork: "fork()",
    request: "PTRACE_GETREGS",
    from: "from: ptrace(PTRACE_GETREGS) in the parent, the tracer, on a child stopped by its own kill(getpid(), SIGSTOP)",
};

const I386: Conv = Conv {
    target: LINUX_I386,
    names: &[
        "ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "xds", "xes", "xfs", "xgs", "orig_eax", "eip", "xcs", "eflags", "esp", "xss",
    ],
    digits: 8,
    trap: &[0xcd, 0x80], // int 0x80
    pc: "eip",
    sp: "esp",
    nr: ("orig_eax", 37),
    ret: "eax",
    pid: Some("ebx"),
    sig: "ecx",
    // __USER32_CS and __USER_DS for a 32-bit task on a 64-bit kernel.
    fixed: &[("xcs", u64::MAX, 0x23), ("xss", u64::MAX, 0x2b), ("eflags", 0x202, 0x202)],
    same: &[],
    fork: "fork()",
    request: "PTRACE_GETREGS",
    from: "from: ptrace(PTRACE_GETREGS) in the parent, the tracer, on a child stopped by its own kill(getpid(), SIGSTOP)",
};

const AARCH64: Conv = Conv {
    target: LINUX_AARCH64,
    names: &[
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18",
        "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30", "sp", "pc", "pstate",
    ],
    digits: 16,
    trap: &[0x01, 0x00, 0x00, 0xd4], // svc #0
    pc: "pc",
    sp: "sp",
    nr: ("x8", 129),
    ret: "x0",
    pid: None,
    sig: "x1",
    // M[4:0] = 0: AArch64, EL0 (EL0t).
    fixed: &[("pstate", 0x1f, 0)],
    same: &[],
    fork: "clone(",
    request: "PTRACE_GETREGSET",
    from: "from: ptrace(PTRACE_GETREGSET, NT_PRSTATUS) in the parent, the tracer, on a child stopped by its own kill(getpid(), SIGSTOP)",
};

/// Builds examples/regs for the convention with the user's command; its
/// path, or None when this host cannot run it (i386 without IA-32
/// emulation, which then says so).
fn regs(c: &Conv) -> Option<PathBuf> {
    let out = cargo(&target_dir(), &["build", "--release", "--example", "regs", "--target", c.target]);
    assert!(out.status.success(), "cargo build --example regs --target {}:\n{}", c.target, String::from_utf8_lossy(&out.stderr));
    let bin = target_dir().join(c.target).join("release/examples/regs");
    (c.target != LINUX_I386 || ia32_runs(&bin)).then_some(bin)
}

/// The address just past the trap instruction of the child's
/// kill(getpid(), SIGSTOP): the one trap in `regs_stop_self`, found by its
/// symbol in the ELF's symbol table and llvm-objdump's disassembly of it.
fn after_kill_trap(bin: &Path, trap: &[u8]) -> u64 {
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok("regs_stop_self"))
        .unwrap_or_else(|| panic!("{}: no symbol regs_stop_self", bin.display()));
    let (start, end) = (sym.address(), sym.address() + sym.size());
    assert!(end > start, "regs_stop_self has no size");
    let out = Command::new(llvm_objdump()).args(["-d", "--disassemble-symbols=regs_stop_self"]).arg(bin).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // `  201eaa: 0f 05          \tsyscall`: address, bytes, a tab, the text.
    let mut instructions = 0;
    let mut traps = Vec::new();
    for line in text.lines() {
        let Some((addr, rest)) = line.trim_start().split_once(':') else { continue };
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        let hex = rest.split('\t').next().unwrap_or("");
        // Bytes as they lie in memory (`0f 05`), or, from newer
        // llvm-objdumps on aarch64, a 32-bit little-endian word (`d4000001`).
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .flat_map(|w| match w.len() {
                8 => u32::from_str_radix(w, 16).unwrap().to_le_bytes().to_vec(),
                _ => vec![u8::from_str_radix(w, 16).unwrap()],
            })
            .collect();
        // objdump goes on into the padding after the symbol's size.
        if !(start..end).contains(&addr) {
            continue;
        }
        instructions += 1;
        if bytes == trap {
            traps.push(addr + bytes.len() as u64);
        }
    }
    assert!(instructions > 0, "llvm-objdump showed no regs_stop_self:\n{text}");
    assert_eq!(traps.len(), 1, "exactly one trap instruction {trap:02x?} in regs_stop_self:\n{text}");
    traps[0]
}

/// The printed lines: every name of the convention's struct in order, one
/// a line as `name 0x` and the full width of hex digits, then the line
/// saying where the values came from. The values by name.
fn printed(c: &Conv, stdout: &[u8]) -> HashMap<&'static str, u64> {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(text.ends_with('\n'), "{text}");
    assert_eq!(lines.len(), c.names.len() + 1, "{text}");
    assert_eq!(lines[c.names.len()], c.from, "the last line says where the values came from");
    let mut values = HashMap::new();
    for (line, name) in lines.iter().zip(c.names) {
        let value = line.strip_prefix(name).and_then(|l| l.strip_prefix(" 0x"));
        let value = value.unwrap_or_else(|| panic!("`{line}` is not `{name} 0x...`:\n{text}"));
        assert!(value.len() == c.digits && value.bytes().all(|b| b.is_ascii_hexdigit()), "{line}: {} hex digits", c.digits);
        values.insert(*name, u64::from_str_radix(value, 16).unwrap());
    }
    values
}

/// The user's command: `cargo run --release --example regs --target T`.
fn cargo_run(c: &Conv) -> Output {
    cargo(&target_dir(), &["run", "--quiet", "--release", "--example", "regs", "--target", c.target])
}

/// The registers at the child's stop: the program counter just past its
/// kill's trap, the call's number still there, kill's 0 as the result,
/// kill's arguments, and what the architecture fixes.
fn check_at_the_kill(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let out = cargo_run(c);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let r = printed(c, &out.stdout);
    let pc = after_kill_trap(&bin, c.trap);
    assert_eq!(r[c.pc], pc, "{} is the address just past the child's kill trap", c.pc);
    assert_eq!(r[c.nr.0], c.nr.1, "{} holds kill's number", c.nr.0);
    assert_eq!(r[c.ret], 0, "{} holds kill's result", c.ret);
    assert_eq!(r[c.sig], SIGSTOP, "{} holds kill's signal", c.sig);
    if let Some(pid) = c.pid {
        assert!(r[pid] > 1, "{pid} holds the child's pid");
    }
    for &(name, mask, value) in c.fixed {
        assert_eq!(r[name] & mask, value, "{name} = {:#x}", r[name]);
    }
    for &(a, b) in c.same {
        assert_eq!(r[a], r[b], "{a} = {b}");
    }
}

/// Where the stack ends when nothing is randomized (`setarch -R`, which
/// the example's run inherits): a 64-bit process's from the kernel, by
/// asking `cat` for its own maps; a 32-bit task on a 64-bit kernel has it
/// at IA32_PAGE_OFFSET, 0xffffe000 (arch/x86/include/asm/page_64_types.h,
/// STACK_TOP), and no 32-bit program here to ask.
fn stack_top(c: &Conv) -> u64 {
    if c.target == LINUX_I386 {
        return 0xffff_e000;
    }
    let out = Command::new(tool("setarch", "apt-get install util-linux")).args(["-R", "cat", "/proc/self/maps"]).output().unwrap();
    let maps = String::from_utf8_lossy(&out.stdout);
    let line = maps.lines().find(|l| l.ends_with("[stack]")).unwrap_or_else(|| panic!("no [stack] in\n{maps}"));
    let range = line.split_whitespace().next().unwrap();
    u64::from_str_radix(range.split_once('-').unwrap().1, 16).unwrap()
}

/// Run with the address space laid out without randomization, the
/// child's stack pointer lies in the top MiB below the stack's end: the
/// stack fork copied, not anywhere else.
fn check_stack_pointer(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let top = stack_top(c);
    let out = Command::new(tool("setarch", "apt-get install util-linux")).arg("-R").arg(&bin).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let sp = printed(c, &out.stdout)[c.sp];
    assert!(sp < top && sp >= top - (1 << 20), "{} = {sp:#x}: not in the MiB below the stack's end {top:#x}", c.sp);
    assert_eq!(sp % 4, 0, "{} = {sp:#x}", c.sp);
}

/// What strace saw of the example's run, its calls one per line with the
/// padding before ` = ` squeezed to one space.
struct Traced {
    out: Output,
    calls: Vec<String>,
}

/// Runs `bin` under strace, only the calls that start, stop, read and end
/// the child, no signals: the parent alone, or with `follow`, the child too
/// (`-f`: strace is then the child's tracer).
fn strace_regs(bin: &Path, follow: bool, extra: &[&str]) -> Traced {
    let log = tempfile("regs-strace");
    let mut cmd = Command::new(strace());
    cmd.arg("-o").arg(&log).args(["-v", "-e", "signal=none", "-e", "trace=?fork,clone,wait4,ptrace,getpid,kill,exit"]);
    if follow {
        cmd.arg("-f");
    }
    let out = cmd.args(extra).arg(bin).output().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let calls = text
        .lines()
        .filter(|l| !l.starts_with("+++") && !l.starts_with("[ "))
        .map(|l| match l.rsplit_once(" = ") {
            Some((call, result)) => format!("{} = {result}", call.trim_end()),
            None => l.to_string(),
        })
        .collect();
    Traced { out, calls }
}

/// The pid in `fork() = PID`.
fn forked(t: &Traced, c: &Conv) -> u64 {
    let first = t.calls.first().map(String::as_str).unwrap_or("");
    assert!(first.starts_with(c.fork), "{:?}", t.calls);
    first.rsplit_once(" = ").and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("no pid in {first}"))
}

fn stopped(p: u64) -> String {
    format!("wait4({p}, [{{WIFSTOPPED(s) && WSTOPSIG(s) == SIGSTOP}}], 0, NULL) = {p}")
}

fn killed(p: u64) -> [String; 2] {
    [format!("kill({p}, SIGKILL) = 0"), format!("wait4({p}, [{{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}}], 0, NULL) = {p}")]
}

/// strace's decoding of the struct ptrace wrote (`{r15=0, r14=0x1, ...}`),
/// as (name, value) in its order.
fn decoded(call: &str) -> Vec<(String, u64)> {
    let inner = call.split_once('{').and_then(|(_, r)| r.rsplit_once('}')).map(|(s, _)| s).unwrap_or_else(|| panic!("no struct in {call}"));
    inner
        .split(", ")
        .map(|f| {
            let (name, v) = f.split_once('=').unwrap_or_else(|| panic!("{f} in {call}"));
            let v = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            (name.to_string(), v.unwrap_or_else(|e| panic!("{f}: {e}")))
        })
        .collect()
}

/// The parent's calls, exactly: fork, the wait for the child's SIGSTOP,
/// the one ptrace read, kill(child, SIGKILL) and the wait4 that reaps the
/// killed child, then exit(0): no child is left behind. What it printed is
/// what strace decoded from the kernel's answer, field by field (x86; on
/// aarch64 strace's form of the iovec is not pinned here), and the child
/// stopped itself by its own pid, the one fork returned.
fn check_parent_calls(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let t = strace_regs(&bin, false, &[]);
    assert_eq!(t.out.status.code(), Some(0), "{}", String::from_utf8_lossy(&t.out.stderr));
    let p = forked(&t, c);
    assert_eq!(t.calls.len(), 6, "{:#?}", t.calls);
    assert_eq!(t.calls[1], stopped(p));
    let read = &t.calls[2];
    assert!(read.starts_with(&format!("ptrace({}, {p}, ", c.request)) && read.ends_with(") = 0"), "{read}");
    assert_eq!(t.calls[3..5], killed(p));
    assert_eq!(t.calls[5], "exit(0) = ?");
    let r = printed(c, &t.out.stdout);
    if let Some(pid) = c.pid {
        assert_eq!(r[pid], p, "{pid}: the child's kill named its own pid");
    }
    if c.target != LINUX_AARCH64 {
        let fields = decoded(read);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, c.names, "strace names the struct's fields so, in this order");
        for (name, value) in fields {
            assert_eq!(r[name.as_str()], value, "{name}: printed, and as strace decoded the kernel's answer");
        }
    }
}

/// ptrace's read fails (strace injects EIO into the parent's call): one
/// line naming the call and its errno, exit 1, and the stopped child is
/// still killed and reaped.
fn check_failed_read(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let t = strace_regs(&bin, false, &["-e", "inject=ptrace:error=EIO"]);
    assert_eq!(t.out.status.code(), Some(1));
    assert_eq!(t.out.stdout, b"");
    let call = if c.request == "PTRACE_GETREGS" { "ptrace(PTRACE_GETREGS)" } else { "ptrace(PTRACE_GETREGSET, NT_PRSTATUS)" };
    assert_eq!(String::from_utf8_lossy(&t.out.stderr), format!("regs: {call} failed: 5\n"));
    let p = forked(&t, c);
    assert_eq!(t.calls.len(), 6, "{:#?}", t.calls);
    assert_eq!(t.calls[1], stopped(p));
    let read = &t.calls[2];
    assert!(read.starts_with(&format!("ptrace({}, {p}, ", c.request)), "{read}");
    assert!(read.ends_with(" = -1 EIO (Input/output error) (INJECTED)"), "{read}");
    assert_eq!(t.calls[3..5], killed(p));
    assert_eq!(t.calls[5], "exit(1) = ?");
}

/// No child: fork fails, one line, exit 1, nothing else called.
fn check_failed_fork(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let name = if c.fork == "fork()" { "fork" } else { "clone" };
    let t = strace_regs(&bin, false, &["-e", &format!("inject={name}:error=EAGAIN")]);
    assert_eq!(t.out.status.code(), Some(1));
    assert_eq!(t.out.stdout, b"");
    let shown = if name == "fork" { "fork" } else { "clone(SIGCHLD)" };
    assert_eq!(String::from_utf8_lossy(&t.out.stderr), format!("regs: {shown} failed: 11\n"));
    assert_eq!(t.calls.len(), 2, "{:#?}", t.calls);
    assert!(t.calls[0].ends_with(" = -1 EAGAIN (Resource temporarily unavailable) (INJECTED)"), "{:?}", t.calls);
    assert_eq!(t.calls[1], "exit(1) = ?");
}

/// A wait4 interrupted before the child's stop is asked again.
fn check_wait4_eintr(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let t = strace_regs(&bin, false, &["-e", "inject=wait4:error=EINTR:when=1"]);
    assert_eq!(t.out.status.code(), Some(0), "{}", String::from_utf8_lossy(&t.out.stderr));
    printed(c, &t.out.stdout);
    let p = forked(&t, c);
    assert!(t.calls[1].starts_with(&format!("wait4({p}, ")), "{:?}", t.calls);
    assert!(t.calls[1].ends_with(" = -1 EINTR (Interrupted system call) (INJECTED)"), "{:?}", t.calls);
    assert_eq!(t.calls[2], stopped(p));
}

/// Under a tracer that follows forks (`strace -f`) the child is traced
/// already, and its PTRACE_TRACEME fails with EPERM: the parent learns it
/// from the child's exit status, says so in one line and exits 1, having
/// reaped the child that exited.
fn check_traced_already(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let t = strace_regs(&bin, true, &[]);
    assert_eq!(t.out.status.code(), Some(1));
    assert_eq!(t.out.stdout, b"");
    assert_eq!(
        String::from_utf8_lossy(&t.out.stderr),
        "regs: ptrace(PTRACE_TRACEME) in the child failed: 1 (EPERM: not allowed here, or the child is traced already)\n"
    );
    // With -f each line starts with its process's pid.
    let all = t.calls.join("\n");
    let child = all.lines().find(|l| l.contains("ptrace(PTRACE_TRACEME")).and_then(|l| l.split_whitespace().next());
    let child = child.unwrap_or_else(|| panic!("no PTRACE_TRACEME in\n{all}"));
    assert!(all.contains(&format!("WIFEXITED(s) && WEXITSTATUS(s) == 1}}], 0, NULL) = {child}")), "the parent reaps the child:\n{all}");
}

/// The child's own kill failing (strace -f lets its PTRACE_TRACEME
/// "succeed" untraced and fails its kill with ESRCH): the child's exit
/// status carries the errno and which call, and the parent reports it.
fn check_childs_kill_fails(c: &Conv) {
    let Some(bin) = regs(c) else { return };
    let t = strace_regs(&bin, true, &["-e", "inject=ptrace:retval=0", "-e", "inject=kill:error=ESRCH"]);
    assert_eq!(t.out.status.code(), Some(1));
    assert_eq!(t.out.stdout, b"");
    assert_eq!(String::from_utf8_lossy(&t.out.stderr), "regs: kill(getpid(), SIGSTOP) in the child failed: 3\n");
    let all = t.calls.join("\n");
    assert!(all.contains("WIFEXITED(s) && WEXITSTATUS(s) == 131}], 0, NULL) = "), "{all}");
}

/// The tests of a convention this host runs: x86_64 and i386 here, and
/// aarch64 on an aarch64 host.
macro_rules! native {
    ($name:ident, $conv:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn registers_are_the_childs_at_its_kill() {
                check_at_the_kill(&$conv);
            }

            #[test]
            fn stack_pointer_is_in_the_stack() {
                check_stack_pointer(&$conv);
            }

            #[test]
            fn parent_reads_kills_and_reaps_its_child() {
                check_parent_calls(&$conv);
            }

            #[test]
            fn failed_read_still_kills_and_reaps_the_child() {
                check_failed_read(&$conv);
            }

            #[test]
            fn failed_fork_is_one_line_and_exit_1() {
                check_failed_fork(&$conv);
            }

            #[test]
            fn interrupted_wait4_is_asked_again() {
                check_wait4_eintr(&$conv);
            }

            #[test]
            fn child_traced_already_is_eperm_in_one_line() {
                check_traced_already(&$conv);
            }

            #[test]
            fn childs_failed_kill_is_reported() {
                check_childs_kill_fails(&$conv);
            }
        }
    };
}

native!(linux_x86_64, X86_64);
native!(linux_i386, I386);
// On an aarch64 host the aarch64 example runs natively: the same tests
// (not run on this project's x86_64 machines).
#[cfg(target_arch = "aarch64")]
native!(linux_aarch64, AARCH64);

/// On any other host the aarch64 example runs under qemu-user, which
/// emulates no ptrace.
#[cfg(not(target_arch = "aarch64"))]
mod linux_aarch64 {
    use super::*;

    const ENOSYS_LINE: &str = "regs: ptrace(PTRACE_TRACEME) in the child failed: 38 (ENOSYS: no ptrace here; qemu-user does not emulate it)\n";

    /// The user's command, through the cargo runner (qemu-aarch64): exit
    /// 1, nothing on stdout, one line on stderr naming ptrace and ENOSYS.
    #[test]
    fn under_qemu_user_ptrace_is_enosys_in_one_line() {
        qemu_aarch64();
        regs(&AARCH64);
        let out = cargo_run(&AARCH64);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(out.stdout, b"");
        assert_eq!(String::from_utf8_lossy(&out.stderr), ENOSYS_LINE);
    }

    /// What qemu did with the guest's calls (`-strace`): the clone is a
    /// real fork, the child's ptrace (the only one: the parent never gets
    /// to its own) is ENOSYS and it exits with that errno, and the parent
    /// exits 1 after it. The two processes' pieces of trace interleave as
    /// they run, even inside a line, so only whole pieces are looked for.
    #[test]
    fn qemu_forks_and_the_childs_ptrace_is_enosys() {
        let bin = regs(&AARCH64).unwrap();
        let out = Command::new(qemu_aarch64()).arg("-strace").arg(&bin).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let trace = String::from_utf8_lossy(&out.stderr);
        assert!(trace.contains("clone(0x11,"), "clone(SIGCHLD):\n{trace}");
        // The guest's own calls show their numbers (its message names
        // ptrace too).
        let calls = trace.match_indices("ptrace(").filter(|(i, _)| trace[i + 7..].starts_with(|c: char| c.is_ascii_digit()));
        assert_eq!(calls.count(), 1, "{trace}");
        assert!(trace.contains("ptrace(0,0,0,0,0,0)"), "PTRACE_TRACEME:\n{trace}");
        assert!(trace.contains(" = -1 errno=38 (Function not implemented)"), "{trace}");
        let (child, parent) = (trace.find("exit(38)"), trace.rfind("exit(1)\n"));
        assert!(child.is_some() && child < parent, "the child exits 38, then the parent 1:\n{trace}");
        assert!(trace.ends_with("exit(1)\n"), "{trace}");
    }

    /// The program counter the tests would check on an aarch64 host can be
    /// found here too: one `svc #0` in regs_stop_self.
    #[test]
    fn kill_trap_is_found_in_the_binary() {
        let bin = regs(&AARCH64).unwrap();
        let pc = after_kill_trap(&bin, AARCH64.trap);
        assert_eq!(pc % 4, 0);
    }
}
