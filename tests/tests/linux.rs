//! The three Linux flavors, run for real: what they write, how they exit,
//! which system calls they make (strace), what their memory looks like while
//! they run, and what their ELF headers say.
//!
//! x86_64 and i386 run natively (i386 through IA-32 emulation: without it
//! their run tests skip, saying so in one line). aarch64 runs natively on an
//! aarch64 host, with the same tests; on any other host under qemu-user,
//! whose `-strace` shows the guest's own system calls (see the
//! `linux_aarch64` module below).

use hello_tests::*;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

/// e_ident[EI_CLASS]: 1 for ELF32, 2 for ELF64.
const EI_CLASS: usize = 4;

const WRITE_OK: &str = r#"write(1, "Hello, world!\n", 14) = 14"#;

/// The flavor tests. `$runs` says whether this host can run the binary
/// (always, except i386 without IA-32 emulation); a test that must run it
/// returns early when it cannot, after `$runs` has said why.
macro_rules! flavor {
    ($name:ident, $target:expr, $machine:expr, $runs:expr) => {
        mod $name {
            use super::*;

            fn runs() -> bool {
                $runs(&hello($target))
            }

            #[test]
            fn writes_hello_and_exits_0() {
                if !runs() {
                    return;
                }
                let out = Command::new(hello($target)).output().unwrap();
                assert_eq!(out.stdout, MESSAGE);
                assert_eq!(out.status.code(), Some(0));
            }

            #[test]
            fn makes_exactly_one_write_and_one_exit() {
                if !runs() {
                    return;
                }
                let t = strace_run(&hello($target), &[]);
                assert_eq!(t.output.stdout, MESSAGE);
                assert_eq!(t.calls, [WRITE_OK, "exit(0) = ?"]);
            }

            #[test]
            fn dev_full_exits_1_after_one_write() {
                if !runs() {
                    return;
                }
                let t = strace_run_shell(&hello($target), &[], ">/dev/full");
                assert_eq!(t.output.status.code(), Some(1), "{t:?}");
                assert_eq!(
                    t.calls,
                    [
                        r#"write(1, "Hello, world!\n", 14) = -1 ENOSPC (No space left on device)"#,
                        "exit(1) = ?"
                    ]
                );
            }

            #[test]
            fn closed_stdout_exits_1() {
                if !runs() {
                    return;
                }
                let t = strace_run_shell(&hello($target), &[], ">&-");
                assert_eq!(t.output.status.code(), Some(1), "{t:?}");
                assert_eq!(
                    t.calls,
                    [
                        r#"write(1, "Hello, world!\n", 14) = -1 EBADF (Bad file descriptor)"#,
                        "exit(1) = ?"
                    ]
                );
            }

            #[test]
            fn broken_pipe_with_sigpipe_ignored_exits_1() {
                if !runs() {
                    return;
                }
                check_broken_pipe(&hello($target));
            }

            #[test]
            fn eintr_is_retried() {
                if !runs() {
                    return;
                }
                let t = strace_run(&hello($target), &["--inject=write:error=EINTR:when=1"]);
                assert_eq!(t.output.stdout, MESSAGE);
                assert_eq!(t.output.status.code(), Some(0));
                assert_eq!(
                    t.calls,
                    [
                        r#"write(1, "Hello, world!\n", 14) = -1 EINTR (Interrupted system call) (INJECTED)"#,
                        WRITE_OK,
                        "exit(0) = ?"
                    ]
                );
            }

            #[test]
            fn short_write_is_finished_from_where_it_stopped() {
                if !runs() {
                    return;
                }
                // The injected write is not performed: only the rest appears.
                let t = strace_run(&hello($target), &["--inject=write:retval=5:when=1"]);
                assert_eq!(t.output.stdout, b", world!\n");
                assert_eq!(t.output.status.code(), Some(0));
                assert_eq!(
                    t.calls,
                    [
                        r#"write(1, "Hello, world!\n", 14) = 5 (INJECTED)"#,
                        r#"write(1, ", world!\n", 9) = 9"#,
                        "exit(0) = ?"
                    ]
                );
            }

            /// A write that takes nothing would loop for ever: hello
            /// treats it as a failure and exits 1 after that one write.
            #[test]
            fn zero_byte_write_exits_1() {
                if !runs() {
                    return;
                }
                let t = strace_run(&hello($target), &["--inject=write:retval=0:when=1"]);
                assert_eq!(t.output.stdout, b"");
                assert_eq!(t.output.status.code(), Some(1));
                assert_eq!(t.calls, [r#"write(1, "Hello, world!\n", 14) = 0 (INJECTED)"#, "exit(1) = ?"]);
            }

            #[test]
            fn no_mapping_is_writable_and_executable() {
                if !runs() {
                    return;
                }
                check_maps_while_running(&hello($target));
            }

            #[test]
            fn elf_headers() {
                check_elf(&hello($target), $machine);
            }

            #[test]
            fn objdump_names_start_at_the_entry_point() {
                check_objdump(&hello($target));
            }
        }
    };
}

flavor!(linux_x86_64, LINUX_X86_64, elf::EM_X86_64, |_: &Path| true);
flavor!(linux_i386, LINUX_I386, elf::EM_386, hello_tests::ia32_runs);
// On an aarch64 host the aarch64 flavor is the native one: the same tests.
#[cfg(target_arch = "aarch64")]
flavor!(linux_aarch64, LINUX_AARCH64, elf::EM_AARCH64, |_: &Path| true);

/// The skip's detection, on a file every kernel refuses as the kernel
/// without IA-32 emulation refuses i386: the i386 hello with `e_machine`
/// set to a machine no Linux runs.
#[test]
fn ia32_check_reports_enoexec_as_a_skip() {
    let mut data = std::fs::read(hello(LINUX_I386)).unwrap();
    data[18..20].copy_from_slice(&0xfeedu16.to_le_bytes()); // e_machine
    let copy = tempfile("no-such-machine");
    std::fs::write(&copy, &data).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let got = hello_tests::ia32_check(&copy);
    let _ = std::fs::remove_file(&copy);
    let why = got.expect_err("a file the kernel refuses must be reported, not run");
    assert!(why.contains("ENOEXEC") && why.contains("IA-32 emulation"), "{why}");
}

/// The user's command, through the cargo runner: natively on an aarch64
/// host, under qemu-aarch64 (.cargo/linux-aarch64-run) elsewhere.
#[test]
fn cargo_run_aarch64_prints_hello() {
    if !cfg!(target_arch = "aarch64") {
        qemu_aarch64();
    }
    hello(LINUX_AARCH64);
    let out = cargo(&target_dir(), &["run", "--quiet", "--release", "--target", LINUX_AARCH64]);
    assert_eq!(out.stdout, MESSAGE, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

/// The aarch64 ELF is at most 512 bytes (the issue's promise), one r-x
/// PT_LOAD and a PT_GNU_STACK like the others (checked on every host).
#[test]
fn aarch64_elf_is_small_and_static() {
    let bin = hello(LINUX_AARCH64);
    let len = std::fs::metadata(&bin).unwrap().len();
    assert!(len <= 512, "{len} bytes");
    check_elf(&bin, elf::EM_AARCH64);
    check_objdump(&bin);
}

/// Off aarch64 the linker script stands in for an aarch64 `cc` it does not
/// have: an option it cannot hand to rust-lld is an error naming it, never
/// silently dropped.
#[cfg(not(target_arch = "aarch64"))]
#[test]
fn aarch64_linker_script_names_an_option_it_cannot_pass() {
    let out = Command::new(root().join(".cargo/linux-aarch64-linker"))
        .args(["-Wl,--gc-sections", "-fsanitize=address", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-fsanitize=address is not a linker option rust-lld can take"), "{err}");
}

/// Off aarch64 the runner script needs qemu-aarch64, and says how to get it.
#[cfg(not(target_arch = "aarch64"))]
#[test]
fn aarch64_runner_script_says_how_to_get_qemu() {
    let out = Command::new("/bin/sh")
        .arg(root().join(".cargo/linux-aarch64-run"))
        .arg(hello(LINUX_AARCH64))
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("qemu-aarch64 is needed") && err.contains("apt-get install qemu-user"), "{err}");
}

/// On any host but aarch64: qemu-user runs the guest, translating its code
/// and making each of its system calls on the host. `qemu-aarch64 -strace`
/// prints the guest's own calls, as the guest sees them
/// (`write(1,0x4000f4,14) = 14`, `exit(0)`), on stderr. The faults are
/// injected by strace into the host `write` that qemu makes for the guest;
/// qemu hands the host's result back as the guest's (`-EINTR` as -4, 5
/// bytes as 5), which the guest-side trace shows.
#[cfg(not(target_arch = "aarch64"))]
mod linux_aarch64 {
    use super::*;

    /// The message's address in the guest: the file's LOAD maps offset 0
    /// at p_vaddr, and the message sits in the file once.
    fn message_address(bin: &Path) -> u64 {
        let data = std::fs::read(bin).unwrap();
        let header = elf::FileHeader64::<object::Endianness>::parse(&*data).unwrap();
        let e = header.endian().unwrap();
        let load = &header.program_headers(e, &*data).unwrap()[0];
        let at = data.windows(MESSAGE.len()).position(|w| w == MESSAGE).expect("the message is in the file");
        load.p_vaddr(e) + at as u64
    }

    struct Run {
        stdout: Vec<u8>,
        code: Option<i32>,
        /// The guest's calls from `qemu-aarch64 -strace`, PIDs removed.
        guest: Vec<String>,
        /// With a fault injected: the host calls strace saw on stdout's file.
        host: Vec<String>,
    }

    /// `qemu-aarch64 -strace hello REDIRECT` through `sh`. With `inject`,
    /// stdout is a file and the whole runs under
    /// `strace -P FILE -e inject=write:INJECT`: `-P` limits the tracing, and
    /// so the injection, to calls on that file, so qemu's own writes
    /// (its -strace lines among them) are neither counted nor touched.
    fn run(redirect: &str, inject: Option<&str>) -> Run {
        let bin = hello(LINUX_AARCH64);
        let qemu = qemu_aarch64();
        let out_file = tempfile("aarch64-out");
        let log = tempfile("aarch64-strace");
        let mut cmd = Command::new("sh");
        match inject {
            None => {
                cmd.arg("-c").arg(format!("exec \"$0\" -strace \"$1\" {redirect}")).arg(&qemu).arg(&bin);
            }
            Some(spec) => {
                cmd.arg("-c")
                    .arg(format!(
                        "exec \"$0\" -f -o \"$1\" -P \"$2\" -e inject=write:{spec} \"$3\" -strace \"$4\" >\"$2\""
                    ))
                    .arg(strace())
                    .arg(&log)
                    .arg(&out_file)
                    .arg(&qemu)
                    .arg(&bin);
            }
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let guest = stderr
            .lines()
            .map(|l| l.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let (stdout, host) = match inject {
            None => (output.stdout.clone(), Vec::new()),
            Some(_) => {
                let host = std::fs::read_to_string(&log)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.contains("+++"))
                    .map(|l| squeeze(l.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start()))
                    .collect();
                (std::fs::read(&out_file).unwrap(), host)
            }
        };
        let _ = std::fs::remove_file(&out_file);
        let _ = std::fs::remove_file(&log);
        Run { stdout, code: output.status.code(), guest, host }
    }

    /// strace pads a call out to a column before ` = `: one space.
    fn squeeze(line: &str) -> String {
        match line.split_once(") ") {
            Some((call, rest)) => format!("{call}) {}", rest.trim_start()),
            None => line.to_string(),
        }
    }

    fn write(addr: u64, len: usize, result: &str) -> String {
        format!("write(1,{addr:#x},{len}) = {result}")
    }

    #[test]
    fn writes_hello_and_exits_0() {
        let out = Command::new(qemu_aarch64()).arg(hello(LINUX_AARCH64)).output().unwrap();
        assert_eq!(out.stdout, MESSAGE);
        assert_eq!(out.status.code(), Some(0));
    }

    #[test]
    fn makes_exactly_one_write_and_one_exit() {
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run("", None);
        assert_eq!(r.stdout, MESSAGE);
        assert_eq!(r.code, Some(0));
        assert_eq!(r.guest, [write(a, 14, "14"), "exit(0)".into()]);
    }

    #[test]
    fn dev_full_exits_1_after_one_write() {
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run(">/dev/full", None);
        assert_eq!(r.code, Some(1));
        assert_eq!(r.guest, [write(a, 14, "-1 errno=28 (No space left on device)"), "exit(1)".into()]);
    }

    /// Without `-D`: qemu's log file would be the lowest free descriptor,
    /// 1, and the guest's write would land in it (docs/limits.md).
    #[test]
    fn closed_stdout_exits_1() {
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run(">&-", None);
        assert_eq!(r.code, Some(1));
        assert_eq!(r.guest, [write(a, 14, "-1 errno=9 (Bad file descriptor)"), "exit(1)".into()]);
    }

    /// SIGPIPE ignored before exec stays ignored for the guest: qemu keeps
    /// the dispositions it inherits, so the write fails with EPIPE.
    #[test]
    fn broken_pipe_with_sigpipe_ignored_exits_1() {
        let (reader, writer) = pipe();
        drop(reader);
        let out = Command::new("sh")
            .arg("-c")
            .arg("trap '' PIPE; exec \"$0\" -strace \"$1\"")
            .arg(qemu_aarch64())
            .arg(hello(LINUX_AARCH64))
            .stdout(Stdio::from(writer))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let trace = String::from_utf8_lossy(&out.stderr);
        assert!(trace.contains("errno=32 (Broken pipe)"), "{trace}");
    }

    #[test]
    fn eintr_is_retried() {
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run("", Some("error=EINTR:when=1"));
        assert_eq!(
            r.host[0],
            r#"write(1, "Hello, world!\n", 14) = -1 EINTR (Interrupted system call) (INJECTED)"#,
            "the fault is injected into qemu's host write: {:?}",
            r.host
        );
        assert_eq!(r.stdout, MESSAGE);
        assert_eq!(r.code, Some(0));
        assert_eq!(
            r.guest,
            [write(a, 14, "-1 errno=4 (Interrupted system call)"), write(a, 14, "14"), "exit(0)".into()]
        );
    }

    #[test]
    fn short_write_is_finished_from_where_it_stopped() {
        // The injected write is not performed: only the rest appears.
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run("", Some("retval=5:when=1"));
        assert_eq!(r.host[0], r#"write(1, "Hello, world!\n", 14) = 5 (INJECTED)"#, "{:?}", r.host);
        assert_eq!(r.stdout, b", world!\n");
        assert_eq!(r.code, Some(0));
        assert_eq!(r.guest, [write(a, 14, "5"), write(a + 5, 9, "9"), "exit(0)".into()]);
    }

    /// A write that takes nothing would be asked again forever: exit 1.
    #[test]
    fn zero_byte_write_exits_1() {
        let a = message_address(&hello(LINUX_AARCH64));
        let r = run("", Some("retval=0:when=1"));
        assert_eq!(r.code, Some(1));
        assert_eq!(r.guest, [write(a, 14, "0"), "exit(1)".into()]);
    }
}

/// stdout is a pipe nobody can read any more, and SIGPIPE is ignored (as
/// `trap '' PIPE` leaves it through exec): the write fails with EPIPE.
fn check_broken_pipe(bin: &Path) {
    let (reader, writer) = pipe();
    drop(reader);
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' PIPE; exec \"$0\"")
        .arg(bin)
        .stdout(Stdio::from(writer))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Waits until `pid` sits inside a system call (the blocked write), as
/// /proc/PID/syscall tells; it says "running" until then.
fn wait_until_blocked(pid: u32) {
    for _ in 0..10_000 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if !s.is_empty() && !s.starts_with("running") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("hello never blocked in its write");
}

/// Runs hello with a full pipe as stdout, so it blocks inside its write
/// while /proc/PID/maps is read; then drains the pipe and lets it finish.
fn check_maps_while_running(bin: &Path) {
    let (reader, writer) = pipe();
    // Fill the pipe without blocking, then make it blocking again: the
    // flag belongs to the shared open file, and hello must block, not fail.
    let w = writer.as_raw_fd();
    unsafe {
        libc::fcntl(w, libc::F_SETFL, libc::O_NONBLOCK);
        let chunk = [b'.'; 4096];
        while libc::write(w, chunk.as_ptr().cast(), chunk.len()) > 0 {}
        libc::fcntl(w, libc::F_SETFL, 0);
    }
    let mut child = Command::new(bin).stdout(Stdio::from(writer)).spawn().unwrap();
    // spawn() may return before exec has mapped the image (vfork
    // semantics): wait for the write that cannot complete.
    wait_until_blocked(child.id());
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id())).unwrap();
    let mut drained = Vec::new();
    std::fs::File::from(reader).read_to_end(&mut drained).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(drained.ends_with(MESSAGE), "hello's bytes come after the filler");

    let mut saw_stack = false;
    let mut saw_image = false;
    for line in maps.lines() {
        let perms = line.split_whitespace().nth(1).unwrap();
        assert!(
            !(perms.contains('w') && perms.contains('x')),
            "writable and executable mapping: {line}\n{maps}"
        );
        if line.ends_with("[stack]") {
            saw_stack = true;
            assert!(!perms.contains('x'), "executable stack: {line}\n{maps}");
        }
        if line.contains(bin.to_str().unwrap()) {
            saw_image = true;
            assert_eq!(perms, "r-xp", "the image is one read+execute mapping: {maps}");
        }
    }
    assert!(saw_stack && saw_image, "maps of the running hello:\n{maps}");
}

fn check_elf(bin: &Path, machine: elf::Machine) {
    let data = std::fs::read(bin).unwrap();
    match data.get(EI_CLASS).copied().map(elf::FileClass) {
        Some(elf::ELFCLASS64) => check_elf_as::<elf::FileHeader64<object::Endianness>>(&data, machine),
        Some(elf::ELFCLASS32) => check_elf_as::<elf::FileHeader32<object::Endianness>>(&data, machine),
        other => panic!("not an ELF class: {other:?}"),
    }
}

fn check_elf_as<H: FileHeader<Endian = object::Endianness>>(data: &[u8], machine: elf::Machine) {
    let header = H::parse(data).unwrap();
    let e = header.endian().unwrap();
    assert_eq!(header.e_type(e), elf::ET_EXEC, "a fixed-address executable, not PIE");
    assert_eq!(header.e_machine(e), machine, "the flavor's machine");
    let phdrs = header.program_headers(e, data).unwrap();
    let types: Vec<elf::ProgramType> = phdrs.iter().map(|p| p.p_type(e)).collect();
    assert_eq!(types, [elf::PT_LOAD, elf::PT_GNU_STACK], "one LOAD, then GNU_STACK only");
    let load = &phdrs[0];
    assert_eq!(load.p_flags(e), elf::PF_R | elf::PF_X);
    assert_eq!(load.p_offset(e).into(), 0, "the LOAD maps the headers too");
    let stack = &phdrs[1];
    assert_eq!(stack.p_flags(e), elf::PF_R | elf::PF_W, "the stack is not executable");
    for p in phdrs {
        let f = p.p_flags(e);
        assert!(!(f.intersects(elf::PF_W) && f.intersects(elf::PF_X)), "W+X segment");
    }

    // The entry point is the start of the section named `_start` (the
    // binary has no symbol table; see link.ld), and the message sits inside
    // the same segment, so the code can reach it.
    let sections = header.sections(e, data).unwrap();
    let (_, text) = sections
        .iter()
        .enumerate()
        .find(|(_, s)| sections.section_name(e, s).ok() == Some(b"_start".as_slice()))
        .expect("a section named _start");
    let entry: u64 = header.e_entry(e).into();
    assert_eq!(entry, text.sh_addr(e).into());
    let body = text.data(e, data).unwrap();
    assert!(body.ends_with(MESSAGE), "the message follows the code in _start");
    let vaddr: u64 = load.p_vaddr(e).into();
    let filesz: u64 = load.p_filesz(e).into();
    let text_end = text.sh_addr(e).into() + text.sh_size(e).into();
    assert!(text_end <= vaddr + filesz, "code and message are inside the LOAD");
}

fn check_objdump(bin: &Path) {
    let out = Command::new(llvm_objdump()).arg("-d").arg(bin).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let label = text.lines().find(|l| l.ends_with("<_start>:")).expect("a <_start>: label");
    let addr = u64::from_str_radix(label.split_whitespace().next().unwrap(), 16).unwrap();
    let data = std::fs::read(bin).unwrap();
    let entry = match elf::FileClass(data[EI_CLASS]) {
        elf::ELFCLASS64 => u64::from_le_bytes(data[24..32].try_into().unwrap()),
        _ => u32::from_le_bytes(data[24..28].try_into().unwrap()).into(),
    };
    assert_eq!(addr, entry, "objdump's <_start> is the entry point");
}
