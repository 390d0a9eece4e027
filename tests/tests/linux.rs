//! The two Linux flavors, run for real: what they write, how they exit, which
//! system calls they make (strace), what their memory looks like while they
//! run, and what their ELF headers say.

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

macro_rules! flavor {
    ($name:ident, $target:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn writes_hello_and_exits_0() {
                let out = Command::new(hello($target)).output().unwrap();
                assert_eq!(out.stdout, MESSAGE);
                assert_eq!(out.status.code(), Some(0));
            }

            #[test]
            fn makes_exactly_one_write_and_one_exit() {
                let t = strace_run(&hello($target), &[]);
                assert_eq!(t.output.stdout, MESSAGE);
                assert_eq!(t.calls, [WRITE_OK, "exit(0) = ?"]);
            }

            #[test]
            fn dev_full_exits_1_after_one_write() {
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
                check_broken_pipe(&hello($target));
            }

            #[test]
            fn eintr_is_retried() {
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

            #[test]
            fn no_mapping_is_writable_and_executable() {
                check_maps_while_running(&hello($target));
            }

            #[test]
            fn elf_headers() {
                check_elf(&hello($target));
            }

            #[test]
            fn objdump_names_start_at_the_entry_point() {
                check_objdump(&hello($target));
            }
        }
    };
}

flavor!(linux_x86_64, LINUX_X86_64);
flavor!(linux_i386, LINUX_I386);

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

fn check_elf(bin: &Path) {
    let data = std::fs::read(bin).unwrap();
    match data.get(EI_CLASS) {
        Some(&elf::ELFCLASS64) => check_elf_as::<elf::FileHeader64<object::Endianness>>(&data),
        Some(&elf::ELFCLASS32) => check_elf_as::<elf::FileHeader32<object::Endianness>>(&data),
        other => panic!("not an ELF class: {other:?}"),
    }
}

fn check_elf_as<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) {
    let header = H::parse(data).unwrap();
    let e = header.endian().unwrap();
    assert_eq!(header.e_type(e), elf::ET_EXEC, "a fixed-address executable, not PIE");
    let phdrs = header.program_headers(e, data).unwrap();
    let types: Vec<u32> = phdrs.iter().map(|p| p.p_type(e)).collect();
    assert_eq!(types, [elf::PT_LOAD, elf::PT_GNU_STACK], "one LOAD, then GNU_STACK only");
    let load = &phdrs[0];
    assert_eq!(load.p_flags(e), elf::PF_R | elf::PF_X);
    assert_eq!(load.p_offset(e).into(), 0, "the LOAD maps the headers too");
    let stack = &phdrs[1];
    assert_eq!(stack.p_flags(e), elf::PF_R | elf::PF_W, "the stack is not executable");
    for p in phdrs {
        let f = p.p_flags(e);
        assert!(!(f & elf::PF_W != 0 && f & elf::PF_X != 0), "W+X segment");
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
    let entry = match data[EI_CLASS] {
        elf::ELFCLASS64 => u64::from_le_bytes(data[24..32].try_into().unwrap()),
        _ => u32::from_le_bytes(data[24..28].try_into().unwrap()).into(),
    };
    assert_eq!(addr, entry, "objdump's <_start> is the entry point");
}
