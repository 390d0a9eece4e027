//! XNU's errno values (bsd/sys/errno.h), their names for the trace, and
//! how a host (Linux) errno maps onto them.

pub const EPERM: i32 = 1;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const EBADF: i32 = 9;
pub const EFAULT: i32 = 14;
pub const EINVAL: i32 = 22;
pub const ENOSPC: i32 = 28;
pub const EPIPE: i32 = 32;
pub const EAGAIN: i32 = 35;
pub const ENOSYS: i32 = 78;

/// Name and strerror text of an XNU errno, for the trace.
pub fn name(e: i32) -> (&'static str, &'static str) {
    match e {
        1 => ("EPERM", "Operation not permitted"),
        4 => ("EINTR", "Interrupted system call"),
        5 => ("EIO", "Input/output error"),
        6 => ("ENXIO", "Device not configured"),
        9 => ("EBADF", "Bad file descriptor"),
        13 => ("EACCES", "Permission denied"),
        14 => ("EFAULT", "Bad address"),
        22 => ("EINVAL", "Invalid argument"),
        27 => ("EFBIG", "File too large"),
        28 => ("ENOSPC", "No space left on device"),
        32 => ("EPIPE", "Broken pipe"),
        35 => ("EAGAIN", "Resource temporarily unavailable"),
        39 => ("EDESTADDRREQ", "Destination address required"),
        54 => ("ECONNRESET", "Connection reset by peer"),
        55 => ("ENOBUFS", "No buffer space available"),
        57 => ("ENOTCONN", "Socket is not connected"),
        69 => ("EDQUOT", "Disc quota exceeded"),
        78 => ("ENOSYS", "Function not implemented"),
        _ => ("E?", "Unknown error"),
    }
}

/// Maps an errno from a host (Linux) `write` to XNU's numbering. The two
/// agree below 35; above they diverge (Linux EAGAIN 11 is XNU 35).
pub fn from_linux(e: i32) -> i32 {
    match e {
        1..=10 | 12..=34 => e,
        11 => EAGAIN,
        89 => 39,   // EDESTADDRREQ
        104 => 54,  // ECONNRESET
        105 => 55,  // ENOBUFS
        107 => 57,  // ENOTCONN
        122 => 69,  // EDQUOT
        _ => EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    /// An error from a host `read` or `write` comes back to the guest under
    /// XNU's number for the same error: the name this table gives the XNU
    /// number is the one Linux's own headers (through nix) give the Linux
    /// number, for every error the table names. Below 35 the numbers
    /// agree; from EAGAIN on they differ.
    #[test]
    fn a_linux_error_keeps_its_name_under_xnus_number() {
        for e in [
            Errno::EPERM, Errno::EINTR, Errno::EIO, Errno::ENXIO, Errno::EBADF, Errno::EACCES, Errno::EAGAIN, Errno::EFAULT, Errno::EINVAL,
            Errno::EFBIG, Errno::ENOSPC, Errno::EPIPE, Errno::EDESTADDRREQ, Errno::ECONNRESET, Errno::ENOBUFS, Errno::ENOTCONN,
            Errno::EDQUOT,
        ] {
            assert_eq!(name(from_linux(e as i32)).0, format!("{e:?}"), "Linux {e:?} ({})", e as i32);
        }
    }

    /// The numbers xnurun answers with itself are named as errno.h names
    /// them, not "E?".
    #[test]
    fn xnurun_s_own_answers_are_named() {
        for (e, n) in [
            (EPERM, "EPERM"), (EINTR, "EINTR"), (EIO, "EIO"), (EBADF, "EBADF"), (EFAULT, "EFAULT"), (EINVAL, "EINVAL"),
            (ENOSPC, "ENOSPC"), (EPIPE, "EPIPE"), (EAGAIN, "EAGAIN"), (ENOSYS, "ENOSYS"),
        ] {
            assert_eq!(name(e).0, n);
        }
    }
}
