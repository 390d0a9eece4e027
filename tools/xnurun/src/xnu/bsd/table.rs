//! The BSD system-call table as XNU x86_64 builds it from
//! bsd/kern/syscalls.master (xnu-11417.101.15, the macOS configuration:
//! every `#if` branch taken except `CONFIG_EMBEDDED` and `PGO`), and which
//! of its calls xnurun answers.
//!
//! Each slot is one of three kinds, as `unix_syscall`/`unix_syscall64`
//! (bsd/dev/i386/systemcalls.c) would dispatch it:
//! - `nosys` (bsd/kern/subr_xxx.c): returns ENOSYS **and** posts SIGSYS,
//!   whose default action kills the process. Numbers past the table are
//!   sent to `SYS_invalid` (63), which is `nosys` too.
//! - `enosys`: returns ENOSYS, no signal.
//! - a real call: xnurun implements `exit` (1), `read` (3) and `write` (4); any other is
//!   reported and the run stops, never answered with a fake result.

/// `nsysent`: numbers at or past it dispatch to `SYS_invalid`.
pub const NSYSENT: u32 = 558;

/// Slot names from syscalls.master (`sys_` prefixes dropped).
pub static NAMES: [&str; 558] = [
    "nosys", "exit", "fork", "read", "write", "open", "close", "wait4", "enosys", "link",
    "unlink", "enosys", "chdir", "fchdir", "mknod", "chmod", "chown", "enosys", "getfsstat",
    "enosys", "getpid", "enosys", "enosys", "setuid", "getuid", "geteuid", "ptrace", "recvmsg",
    "sendmsg", "recvfrom", "accept", "getpeername", "getsockname", "access", "chflags",
    "fchflags", "sync", "kill", "crossarch_trap", "getppid", "nosys", "dup", "pipe", "getegid",
    "nosys", "nosys", "sigaction", "getgid", "sigprocmask", "getlogin", "setlogin", "acct",
    "sigpending", "sigaltstack", "ioctl", "reboot", "revoke", "symlink", "readlink", "execve",
    "umask", "chroot", "nosys", "nosys", "nosys", "msync", "vfork", "oslog_coproc_reg",
    "oslog_coproc", "nosys", "nosys", "nosys", "nosys", "munmap", "mprotect", "madvise",
    "nosys", "nosys", "mincore", "getgroups", "setgroups", "getpgrp", "setpgid", "setitimer",
    "nosys", "swapon", "getitimer", "nosys", "nosys", "getdtablesize", "dup2", "nosys",
    "fcntl", "select", "nosys", "fsync", "setpriority", "socket", "connect", "nosys",
    "getpriority", "nosys", "nosys", "nosys", "bind", "setsockopt", "listen", "nosys", "nosys",
    "nosys", "nosys", "sigsuspend", "nosys", "nosys", "nosys", "nosys", "gettimeofday",
    "getrusage", "getsockopt", "nosys", "readv", "writev", "settimeofday", "fchown", "fchmod",
    "nosys", "setreuid", "setregid", "rename", "nosys", "nosys", "flock", "mkfifo", "sendto",
    "shutdown", "socketpair", "mkdir", "rmdir", "utimes", "futimes", "adjtime", "nosys",
    "gethostuuid", "nosys", "nosys", "nosys", "nosys", "setsid", "nosys", "nosys", "nosys",
    "getpgid", "setprivexec", "pread", "pwrite", "nfssvc", "nosys", "statfs", "fstatfs",
    "unmount", "nosys", "getfh", "nosys", "nosys", "nosys", "quotactl", "nosys", "mount",
    "nosys", "csops", "csops_audittoken", "nosys", "nosys", "waitid", "nosys", "nosys",
    "nosys", "kdebug_typefilter", "kdebug_trace_string", "kdebug_trace64", "kdebug_trace",
    "setgid", "setegid", "seteuid", "sigreturn", "panic_with_data", "thread_selfcounts",
    "fdatasync", "stat", "fstat", "lstat", "pathconf", "fpathconf", "nosys", "getrlimit",
    "setrlimit", "getdirentries", "mmap", "nosys", "lseek", "truncate", "ftruncate", "sysctl",
    "mlock", "munlock", "undelete", "nosys", "nosys", "nosys", "nosys", "nosys", "nosys",
    "nosys", "nosys", "nosys", "nosys", "open_dprotected_np", "fsgetpath_ext",
    "openat_dprotected_np", "nosys", "getattrlist", "setattrlist", "getdirentriesattr",
    "exchangedata", "nosys", "searchfs", "delete", "copyfile", "fgetattrlist", "fsetattrlist",
    "poll", "nosys", "nosys", "nosys", "getxattr", "fgetxattr", "setxattr", "fsetxattr",
    "removexattr", "fremovexattr", "listxattr", "flistxattr", "fsctl", "initgroups",
    "posix_spawn", "ffsctl", "nosys", "nosys", "fhopen", "nosys", "minherit", "semsys",
    "msgsys", "shmsys", "semctl", "semget", "semop", "nosys", "msgctl", "msgget", "msgsnd",
    "msgrcv", "shmat", "shmctl", "shmdt", "shmget", "shm_open", "shm_unlink", "sem_open",
    "sem_close", "sem_unlink", "sem_wait", "sem_trywait", "sem_post", "sysctlbyname", "enosys",
    "enosys", "open_extended", "umask_extended", "stat_extended", "lstat_extended",
    "fstat_extended", "chmod_extended", "fchmod_extended", "access_extended", "settid",
    "gettid", "setsgroups", "getsgroups", "setwgroups", "getwgroups", "mkfifo_extended",
    "mkdir_extended", "identitysvc", "shared_region_check_np", "nosys", "vm_pressure_monitor",
    "psynch_rw_longrdlock", "psynch_rw_yieldwrlock", "psynch_rw_downgrade",
    "psynch_rw_upgrade", "psynch_mutexwait", "psynch_mutexdrop", "psynch_cvbroad",
    "psynch_cvsignal", "psynch_cvwait", "psynch_rw_rdlock", "psynch_rw_wrlock",
    "psynch_rw_unlock", "psynch_rw_unlock2", "getsid", "settid_with_pid",
    "psynch_cvclrprepost", "aio_fsync", "aio_return", "aio_suspend", "aio_cancel", "aio_error",
    "aio_read", "aio_write", "lio_listio", "nosys", "iopolicysys", "process_policy",
    "mlockall", "munlockall", "nosys", "issetugid", "__pthread_kill", "__pthread_sigmask",
    "__sigwait", "__disable_threadsignal", "__pthread_markcancel", "__pthread_canceled",
    "__semwait_signal", "nosys", "proc_info", "sendfile", "stat64", "fstat64", "lstat64",
    "stat64_extended", "lstat64_extended", "fstat64_extended", "getdirentries64", "statfs64",
    "fstatfs64", "getfsstat64", "__pthread_chdir", "__pthread_fchdir", "audit", "auditon",
    "nosys", "getauid", "setauid", "nosys", "nosys", "getaudit_addr", "setaudit_addr",
    "auditctl", "bsdthread_create", "bsdthread_terminate", "kqueue", "kevent", "lchown",
    "nosys", "bsdthread_register", "workq_open", "workq_kernreturn", "kevent64", "nosys",
    "nosys", "thread_selfid", "ledger", "kevent_qos", "kevent_id", "nosys", "nosys", "nosys",
    "nosys", "__mac_execve", "__mac_syscall", "__mac_get_file", "__mac_set_file",
    "__mac_get_link", "__mac_set_link", "__mac_get_proc", "__mac_set_proc", "__mac_get_fd",
    "__mac_set_fd", "__mac_get_pid", "enosys", "enosys", "enosys", "pselect",
    "pselect_nocancel", "read_nocancel", "write_nocancel", "open_nocancel", "close_nocancel",
    "wait4_nocancel", "recvmsg_nocancel", "sendmsg_nocancel", "recvfrom_nocancel",
    "accept_nocancel", "msync_nocancel", "fcntl_nocancel", "select_nocancel", "fsync_nocancel",
    "connect_nocancel", "sigsuspend_nocancel", "readv_nocancel", "writev_nocancel",
    "sendto_nocancel", "pread_nocancel", "pwrite_nocancel", "waitid_nocancel", "poll_nocancel",
    "msgsnd_nocancel", "msgrcv_nocancel", "sem_wait_nocancel", "aio_suspend_nocancel",
    "__sigwait_nocancel", "__semwait_signal_nocancel", "__mac_mount", "__mac_get_mount",
    "__mac_getfsstat", "fsgetpath", "audit_session_self", "audit_session_join",
    "fileport_makeport", "fileport_makefd", "audit_session_port", "pid_suspend", "pid_resume",
    "nosys", "pid_shutdown_sockets", "nosys", "nosys", "kas_info", "memorystatus_control",
    "guarded_open_np", "guarded_close_np", "guarded_kqueue_np", "change_fdguard_np", "usrctl",
    "proc_rlimit_control", "connectx", "disconnectx", "peeloff", "socket_delegate",
    "telemetry", "proc_uuid_policy", "memorystatus_get_level", "system_override", "vfs_purge",
    "sfi_ctl", "sfi_pidctl", "coalition", "coalition_info", "necp_match_policy",
    "getattrlistbulk", "clonefileat", "openat", "openat_nocancel", "renameat", "faccessat",
    "fchmodat", "fchownat", "fstatat", "fstatat64", "linkat", "unlinkat", "readlinkat",
    "symlinkat", "mkdirat", "getattrlistat", "proc_trace_log", "bsdthread_ctl", "openbyid_np",
    "recvmsg_x", "sendmsg_x", "thread_selfusage", "csrctl", "guarded_open_dprotected_np",
    "guarded_write_np", "guarded_pwrite_np", "guarded_writev_np", "renameatx_np",
    "mremap_encrypted", "netagent_trigger", "stack_snapshot_with_config", "microstackshot",
    "enosys", "persona", "enosys", "mach_eventlink_signal", "mach_eventlink_wait_until",
    "mach_eventlink_signal_wait_until", "work_interval_ctl", "getentropy", "necp_open",
    "necp_client_action", "__nexus_open", "__nexus_register", "__nexus_deregister",
    "__nexus_create", "__nexus_destroy", "__nexus_get_opt", "__nexus_set_opt",
    "__channel_open", "__channel_get_info", "__channel_sync", "__channel_get_opt",
    "__channel_set_opt", "ulock_wait", "ulock_wake", "fclonefileat", "fs_snapshot", "enosys",
    "terminate_with_payload", "abort_with_payload", "necp_session_open", "necp_session_action",
    "setattrlistat", "net_qos_guideline", "fmount", "ntp_adjtime", "ntp_gettime",
    "os_fault_with_payload", "kqueue_workloop_ctl", "__mach_bridge_remote_time",
    "coalition_ledger", "log_data", "memorystatus_available_memory", "objc_bp_assist_cfg_np",
    "shared_region_map_and_slide_2_np", "pivot_root", "task_inspect_for_pid",
    "task_read_for_pid", "preadv", "pwritev", "preadv_nocancel", "pwritev_nocancel",
    "ulock_wait2", "proc_info_extended_id", "tracker_action", "debug_syscall_reject",
    "debug_syscall_reject_config", "graftdmg", "map_with_linking_np", "freadlink",
    "record_system_event", "mkfifoat", "mknodat", "ungraftdmg", "coalition_policy_set",
    "coalition_policy_get",
];

pub const SYS_EXIT: u32 = 1;
pub const SYS_WRITE: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `nosys`: ENOSYS + SIGSYS.
    Nosys,
    /// `enosys`: ENOSYS only.
    Enosys,
    Exit,
    Read,
    Write,
    /// A real XNU call that xnurun does not implement.
    Unimplemented(&'static str),
}

/// Classifies BSD call `code` (already masked and, for the indirect call 0,
/// already replaced by its first argument).
pub fn classify(code: u32) -> Kind {
    match NAMES.get(code as usize).copied() {
        None | Some("nosys") => Kind::Nosys,
        Some("enosys") => Kind::Enosys,
        Some("exit") => Kind::Exit,
        Some("write") => Kind::Write,
        Some("read") => Kind::Read,
        Some(name) => Kind::Unimplemented(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_syscalls_master() {
        assert_eq!(classify(0), Kind::Nosys, "indirect slot itself is nosys");
        assert_eq!(classify(1), Kind::Exit);
        assert_eq!(classify(3), Kind::Read);
        assert_eq!(classify(4), Kind::Write);
        assert_eq!(classify(6), Kind::Unimplemented("close"));
        assert_eq!(classify(8), Kind::Enosys, "old creat");
        assert_eq!(classify(27), Kind::Unimplemented("recvmsg"));
        assert_eq!(classify(40), Kind::Nosys, "old lstat");
        assert_eq!(classify(63), Kind::Nosys, "SYS_invalid");
        assert_eq!(classify(20), Kind::Unimplemented("getpid"));
        assert_eq!(classify(NSYSENT), Kind::Nosys);
        assert_eq!(classify(u32::MAX), Kind::Nosys);
    }
}
