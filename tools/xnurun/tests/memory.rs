//! The guest's memory costs what it touches, as on XNU, which maps file
//! bytes lazily and zero-fill on first write: many segments over the same
//! file bytes, and a stack pointer far into a huge zero-fill segment, each
//! run in well under 100 MB on both CPUs. The peak is read from outside,
//! with wait4's rusage of xnurun (which includes the guest it reaped).

mod common;
use common::*;
use std::os::unix::fs::FileExt;

const LIMIT_KB: i64 = 100 * 1024;

/// Runs the image on `cpu`; returns its status and the peak resident
/// set, in KiB, of xnurun and the guest it waited for. (Waited for with
/// wait4, for its rusage: clippy cannot see that.)
#[allow(clippy::zombie_processes)]
fn peak(cpu: &str, path: &std::path::Path) -> (Option<i32>, i64, String) {
    let child = xnurun().args(["--cpu", cpu]).arg(path).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: wait4 fills a local status word and rusage.
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { nix::libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    let mut err = String::new();
    if let Some(mut e) = child.stderr {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let code = nix::libc::WIFEXITED(status).then(|| nix::libc::WEXITSTATUS(status));
    (code, ru.ru_maxrss, err)
}

/// exit(1) as the audit's guest did.
fn exit1() -> Vec<u8> {
    vec![0xbf, 1, 0, 0, 0, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]
}

#[test]
fn two_hundred_segments_over_the_same_32_mib_cost_what_is_touched() {
    const MIB32: u64 = 32 << 20;
    // 202 segment commands need four pages of __TEXT before the code.
    const HEAD: u64 = 0x5000;
    let mut img = Image::new64(exit1()).code_at(HEAD - 0x1000, HEAD, HEAD as usize);
    for i in 0..200 {
        img.segs.push(Seg { name: "__SAME", vmaddr: 0x2_0000_0000 + i * MIB32, vmsize: MIB32, fileoff: HEAD, filesize: MIB32, maxprot: 1, initprot: 1 });
    }
    let path = write_image("same-32mib", &img.bytes());
    // Real bytes at the far end, the rest a hole: 32 MiB of file.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(b"x", HEAD + MIB32 - 1).unwrap();
    for cpu in ["real", "emulated"] {
        let (status, kb, err) = peak(cpu, &path);
        assert_eq!(status, Some(1), "{cpu}: {err}");
        assert!(kb < LIMIT_KB, "{cpu}: {kb} KiB resident");
    }
}

#[test]
fn a_stack_64_gib_into_zero_fill_costs_what_is_touched() {
    const GIB64: u64 = 64 << 30;
    let mut img = Image::new64(exit1());
    img.segs.push(Seg { name: "__ZERO", vmaddr: 0x10_0000_0000, vmsize: GIB64 + 0x10000, fileoff: 0, filesize: 0, maxprot: 3, initprot: 3 });
    img.sp = 0x10_0000_0000 + GIB64;
    let path = write_image("stack-64gib", &img.bytes());
    for cpu in ["real", "emulated"] {
        let (status, kb, err) = peak(cpu, &path);
        assert_eq!(status, Some(1), "{cpu}: {err}");
        assert!(kb < LIMIT_KB, "{cpu}: {kb} KiB resident");
    }
}
