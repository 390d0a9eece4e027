//! The `regs` example on the three XNU targets, under xnurun: the state
//! `thread_get_state` returns is the thread's own at its `mach_msg` trap,
//! exactly as `xnurun --trace` shows that trap, with the program counter
//! where the disassembly says the kernel resumes; and each rule the
//! example can break on purpose gets XNU's answer (osfmk/ipc/mach_msg.c,
//! osfmk/ipc/ipc_policy.c, osfmk/i386/pcb.c, osfmk/kern/ipc_kobject.c).
//! The x86 images run on both CPUs, which must agree.

use hello_tests::{cargo, llvm_objdump, target_dir, xnurun_binary};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

fn built(target: &str) -> PathBuf {
    let out = cargo(&target_dir(), &["build", "--release", "--example", "regs", "--target", target]);
    assert!(out.status.success(), "cargo build --example regs --target {target}:\n{}", String::from_utf8_lossy(&out.stderr));
    target_dir().join(target).join("release/examples/regs")
}

fn cpus(target: &str) -> &'static [&'static str] {
    if target.starts_with("aarch64") { &["emulated"] } else { &["real", "emulated"] }
}

fn run(bin: &PathBuf, cpu: &str, opts: &[&str], args: &[&str]) -> Output {
    Command::new(xnurun_binary()).args(["--cpu", cpu]).args(opts).arg(bin).args(args).output().expect("xnurun")
}

/// The printed registers, by name, in order.
fn registers(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter(|l| !l.starts_with("from: "))
        .map(|l| {
            let (name, v) = l.split_once(' ').unwrap_or_else(|| panic!("not `name value`: {l:?}"));
            (name.to_string(), u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("{l:?}")))
        })
        .collect()
}

/// `NAME 0xVALUE` pairs of a trace register line.
fn trace_regs(line: &str) -> HashMap<String, u64> {
    let w: Vec<&str> = line.trim_start_matches("-> ").split_whitespace().collect();
    w.chunks(2).filter_map(|p| Some((p[0].to_lowercase(), u64::from_str_radix(p.get(1)?.trim_start_matches("0x"), 16).ok()?))).collect()
}

/// The register line the trace printed just before the `mach_msg` trap's
/// own line.
fn trap_regs(trace: &str) -> HashMap<String, u64> {
    let lines: Vec<&str> = trace.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("mach_msg")).unwrap_or_else(|| panic!("no mach_msg line:\n{trace}"));
    trace_regs(lines[at - 1])
}

/// The instruction at `addr` in the binary's disassembly (Intel syntax on
/// x86), and the one that ends there.
fn instructions_around(bin: &PathBuf, addr: u64) -> (String, String) {
    let out = Command::new(llvm_objdump()).args(["-d", "--no-show-raw-insn", "-M", "intel"]).arg(bin).output().expect("llvm-objdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let insns: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (a, rest) = l.trim().split_once(':')?;
            Some((u64::from_str_radix(a, 16).ok()?, rest.trim().to_string()))
        })
        .collect();
    let i = insns.iter().position(|(a, _)| *a == addr).unwrap_or_else(|| panic!("no instruction at 0x{addr:x}"));
    (insns[i].1.clone(), insns[i - 1].1.clone())
}

/// The addresses of the `svc #0x80` instructions in an arm64 binary.
fn svc_addresses(bin: &PathBuf) -> Vec<u64> {
    let out = Command::new(llvm_objdump()).args(["-d", "--no-show-raw-insn"]).arg(bin).output().expect("llvm-objdump");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("svc") && l.contains("#0x80"))
        .filter_map(|l| u64::from_str_radix(l.trim().split(':').next()?, 16).ok())
        .collect()
}

#[test]
fn regs_reads_its_own_state_through_a_mach_message() {
    for target in ["x86_64-apple-darwin", "i686-apple-darwin", "aarch64-apple-darwin"] {
        let bin = built(target);
        let mut seen = Vec::new();
        for cpu in cpus(target) {
            let o = run(&bin, cpu, &["--trace"], &[]);
            let (out, trace) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
            assert_eq!(o.status.code(), Some(0), "{target} {cpu}:\n{trace}");
            assert!(out.lines().last().unwrap_or("").starts_with("from: thread_get_state("), "{target}: {out}");
            let regs: HashMap<String, u64> = registers(&out).into_iter().collect();
            let at = trap_regs(&trace);
            match target {
                "x86_64-apple-darwin" => {
                    let names: Vec<String> = registers(&out).into_iter().map(|(n, _)| n).collect();
                    assert_eq!(names.join(" "), "rax rbx rcx rdx rdi rsi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags cs fs gs");
                    // hi64_syscall: rip after the syscall, rcx the user
                    // stack pointer, rax the call's code, cs SYSCALL_CS.
                    assert_eq!(regs["rip"], at["rip"] + 2, "{target} {cpu}");
                    assert_eq!((regs["rcx"], regs["rsp"]), (at["rsp"], at["rsp"]), "{target} {cpu}");
                    assert_eq!((regs["rax"], regs["cs"]), (0x100_002f, 7), "{target} {cpu}");
                    for r in ["rdi", "rsi", "rdx", "r8", "r9", "r10"] {
                        assert_eq!(regs[r], at[r], "{target} {cpu}: {r}");
                    }
                    let (at_pc, before) = instructions_around(&bin, regs["rip"]);
                    assert_eq!(before, "syscall", "{target}: the instruction before rip ({at_pc})");
                }
                "i686-apple-darwin" => {
                    // idt64_sysenter: eip is edx, esp is ecx, cs SYSENTER_CS.
                    assert_eq!((regs["eip"], regs["esp"], regs["cs"]), (at["edx"], at["ecx"], 0x0b), "{target} {cpu}");
                    assert_eq!((regs["eax"], regs["ss"]), ((-31i32) as u32 as u64, 0x23), "{target} {cpu}");
                    // edx is the return address of libsyscall's `call`.
                    let (_, before) = instructions_around(&bin, regs["eip"]);
                    assert!(before.starts_with("call"), "{target}: {before}");
                }
                _ => {
                    // The svc's saved pc is the next instruction; x16 the
                    // trap's number, -47.
                    assert_eq!(regs["pc"], at["pc"] + 4, "{target}");
                    assert_eq!(regs["x16"], (-47i64) as u64, "{target}");
                    for r in 0..8 {
                        assert_eq!(regs[&format!("x{r}")], at[&format!("x{r}")], "{target}: x{r}");
                    }
                    // dyld slid the image: the one slide (whole 16 KiB pages)
                    // that puts an `svc #0x80` of the file just before pc.
                    let svcs = svc_addresses(&bin);
                    let fits: Vec<u64> = svcs.iter().map(|s| regs["pc"].wrapping_sub(4).wrapping_sub(*s)).filter(|d| d % 0x4000 == 0 && *d < 1 << 40).collect();
                    assert_eq!(fits.len(), 1, "{target}: pc 0x{:x} after one svc of {svcs:x?}", regs["pc"]);
                }
            }
            seen.push(out);
        }
        seen.dedup();
        assert_eq!(seen.len(), 1, "{target}: the two CPUs differ");
    }
}

#[test]
fn mach_errors_are_xnus() {
    // (arguments, the failure line's code, or the death's status).
    let cases: [(&str, &str, &str); 6] = [
        // machine_thread_get_state: no such flavor; fewer words than it has.
        ("flavor=999", "thread_get_state failed: 0x00000004", "x"),
        ("count=12", "thread_get_state failed: 0x00000004", "x"),
        // ipc_kobject_server: no routine has this id: MIG_BAD_ID (-303).
        ("id=7", "thread_get_state failed: 0xfffffed1", "x"),
        // ipc_kmsg_copyin_header: no such name.
        ("dest=0x9903", "mach_msg(thread_get_state) failed: 0x10000003", "x"),
        // An empty port with a zero timeout.
        ("receive-only", "mach_msg(thread_get_state) failed: 0x10004003", "x"),
        // ipc_policy_allow_legacy_send_trap: a fatal guard exception for a
        // 64-bit task; xnu-4903 has only this trap.
        ("legacy", "", "legacy"),
    ];
    for target in ["x86_64-apple-darwin", "i686-apple-darwin", "aarch64-apple-darwin"] {
        let bin = built(target);
        for (arg, line, kind) in cases {
            let mut seen = Vec::new();
            for cpu in cpus(target) {
                let o = run(&bin, cpu, &[], &[arg]);
                let err = String::from_utf8_lossy(&o.stderr).into_owned();
                if kind == "legacy" {
                    if target.starts_with("i686") {
                        assert_eq!(o.status.code(), Some(0), "{target} {cpu} {arg}: {err}");
                    } else {
                        assert_eq!(o.status.code(), Some(137), "{target} {cpu} {arg}: {err}");
                        assert!(err.contains("SIGKILL") && err.contains("ipc_policy_allow_legacy_send_trap"), "{err}");
                    }
                } else {
                    assert_eq!(o.status.code(), Some(1), "{target} {cpu} {arg}: {err}");
                    assert_eq!(err.lines().count(), 1, "{target} {arg}: {err}");
                    assert!(err.starts_with(&format!("regs: {line}")), "{target} {cpu} {arg}: {err}");
                    assert!(o.stdout.is_empty(), "{target} {arg}");
                }
                seen.push((o.status.code(), err));
            }
            seen.dedup();
            assert_eq!(seen.len(), 1, "{target} {arg}: the two CPUs differ: {seen:?}");
        }
    }
}

/// The trace names each Mach trap and decodes the message.
#[test]
fn the_trace_decodes_mach_msg() {
    let bin = built("x86_64-apple-darwin");
    let o = run(&bin, "real", &["--trace"], &[]);
    let trace = String::from_utf8_lossy(&o.stderr);
    assert!(trace.contains("thread_self_trap() = 0x103 (thread port)"), "{trace}");
    assert!(trace.contains("mach_reply_port() = 0x203"), "{trace}");
    let msg = trace.lines().find(|l| l.starts_with("mach_msg2_trap(")).unwrap_or_else(|| panic!("{trace}"));
    assert!(msg.contains("SEND|RCV|KOBJECT_CALL"), "{msg}");
    assert!(msg.contains("thread_get_state(x86_THREAD_STATE64, 42) = KERN_SUCCESS"), "{msg}");
    assert!(msg.ends_with("= 0x0 MACH_MSG_SUCCESS"), "{msg}");
}

/// `--fault port-died`: the reply port dies before the receive, as when
/// another thread destroys it while this one waits: MACH_RCV_PORT_DIED
/// (`ipc_mqueue_receive`).
#[test]
fn a_dead_reply_port_is_mach_rcv_port_died() {
    for target in ["x86_64-apple-darwin", "i686-apple-darwin", "aarch64-apple-darwin"] {
        let bin = built(target);
        for cpu in cpus(target) {
            let o = run(&bin, cpu, &["--fault", "port-died"], &[]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{target} {cpu}: {err}");
            assert_eq!(err.trim_end(), "regs: mach_msg(thread_get_state) failed: 0x10004009", "{target} {cpu}");
        }
    }
}
