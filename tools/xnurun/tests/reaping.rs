//! xnurun leaves no process behind: the guest it killed is reaped before
//! xnurun exits, so no zombie is handed to whoever adopts orphans. This
//! test process makes itself that adopter (a child subreaper) and looks
//! for any child but the xnurun it started. One test in its own binary:
//! the subreaper setting covers the whole process.

mod common;
use common::*;

#[test]
fn no_guest_is_left_behind_after_any_end() {
    // SAFETY: prctl with plain integer arguments.
    assert_eq!(unsafe { nix::libc::prctl(nix::libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    // exit(0), an endless loop stopped by --max-steps, and a fault.
    let exit0 = Image::new64(vec![0x31, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x02, 0x0f, 0x05]);
    let spin = Image::new64(vec![0xeb, 0xfe]);
    let fault = Image::new64(vec![0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]);
    for (name, img, opts, status) in [("exit0", &exit0, &[][..], 0), ("spin", &spin, &["--max-steps", "100"][..], 124), ("fault", &fault, &[][..], 139)] {
        let path = write_image(&format!("reap-{name}"), &img.bytes());
        let o = xnurun().args(["--cpu", "real"]).args(opts).arg(&path).output().unwrap();
        assert_eq!(o.status.code(), Some(status), "{name}: {}", stderr(&o));
        // xnurun has been waited for; an orphaned guest would now be this
        // process's child, a zombie once it has died. Give a guest that
        // was still dying when xnurun exited the time to finish.
        for _ in 0..50 {
            let mut st = 0;
            // SAFETY: waitpid with a local status word.
            let pid = unsafe { nix::libc::waitpid(-1, &mut st, nix::libc::WNOHANG | nix::libc::__WALL) };
            assert!(pid <= 0, "{name}: xnurun left process {pid} behind");
            std::thread::sleep(std::time::Duration::from_millis(4));
        }
    }
}
