//! The emulated-CPU backend for x86 images: unicorn runs the guest in
//! 64-bit mode (x86_64 images) or 32-bit protected mode (i386 images), with
//! the same address space ([`address_space`]) and the same XNU answers
//! ([`kernel`]) as the real CPU. Only how the CPU reaches the kernel
//! differs: unicorn reports `syscall` and `sysenter` to hooks, and `int n`
//! and CPU exceptions as interrupt numbers.
//!
//! Where unicorn is not the real CPU, XNU's rules are applied by hand:
//! `syscall` outside 64-bit mode is Intel's #UD (SIGILL), and `int n` is
//! allowed only for XNU's user gates ([`exception::software_int`]); any
//! other is #GP (SIGSEGV). Unicorn has no GDT here, so a far jump to
//! another code selector faults instead of switching modes.

use super::{code_at, enter_kernel, finish, new_cpu, stop, uc_err, Guest, HostMemory};
use crate::image::address_space::{self, Layout};
use crate::image::stack::InitialStack;
use crate::image::file::ImageFile;
use crate::image::{Image, Start};
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::x86::exception::{self, SoftwareInt};
use crate::xnu::x86::gate::{self, Gate, Insn, Mode as CpuMode};
use crate::xnu::x86::kernel;
use crate::xnu::x86::state::{user_eflags, X86State};
use crate::xnu::{signal, Arch};
use unicorn_engine::unicorn_const::{Arch as UcArch, Mode};
use unicorn_engine::{RegisterX86, Unicorn, X86Insn};

const REGS64: [RegisterX86; 18] = [
    RegisterX86::RAX,
    RegisterX86::RBX,
    RegisterX86::RCX,
    RegisterX86::RDX,
    RegisterX86::RSI,
    RegisterX86::RDI,
    RegisterX86::RBP,
    RegisterX86::RSP,
    RegisterX86::R8,
    RegisterX86::R9,
    RegisterX86::R10,
    RegisterX86::R11,
    RegisterX86::R12,
    RegisterX86::R13,
    RegisterX86::R14,
    RegisterX86::R15,
    RegisterX86::RIP,
    RegisterX86::EFLAGS,
];
const REGS32: [RegisterX86; 10] = [
    RegisterX86::EAX,
    RegisterX86::EBX,
    RegisterX86::ECX,
    RegisterX86::EDX,
    RegisterX86::ESI,
    RegisterX86::EDI,
    RegisterX86::EBP,
    RegisterX86::ESP,
    RegisterX86::EIP,
    RegisterX86::EFLAGS,
];

fn is64(uc: &Unicorn<Guest>) -> bool {
    uc.get_data().task == Arch::X86_64
}

fn read_state(uc: &Unicorn<Guest>) -> X86State {
    let r = |reg: RegisterX86| uc.reg_read(reg).unwrap_or(0);
    if is64(uc) {
        let v: Vec<u64> = REGS64.iter().map(|&g| r(g)).collect();
        X86State {
            rax: v[0], rbx: v[1], rcx: v[2], rdx: v[3], rsi: v[4], rdi: v[5], rbp: v[6], rsp: v[7],
            r8: v[8], r9: v[9], r10: v[10], r11: v[11], r12: v[12], r13: v[13], r14: v[14], r15: v[15],
            rip: v[16], eflags: v[17],
        }
    } else {
        let v: Vec<u64> = REGS32.iter().map(|&g| r(g)).collect();
        X86State { rax: v[0], rbx: v[1], rcx: v[2], rdx: v[3], rsi: v[4], rdi: v[5], rbp: v[6], rsp: v[7], rip: v[8], eflags: v[9], ..X86State::default() }
    }
}

fn write_state(uc: &mut Unicorn<Guest>, s: &X86State) {
    let wide = uc.get_data().task == Arch::X86_64;
    let mut w = |reg: RegisterX86, v: u64| {
        let _ = uc.reg_write(reg, v);
    };
    if wide {
        let v = [s.rax, s.rbx, s.rcx, s.rdx, s.rsi, s.rdi, s.rbp, s.rsp, s.r8, s.r9, s.r10, s.r11, s.r12, s.r13, s.r14, s.r15, s.rip, s.eflags];
        for (g, x) in REGS64.iter().zip(v) {
            w(*g, x);
        }
    } else {
        let v = [s.rax, s.rbx, s.rcx, s.rdx, s.rsi, s.rdi, s.rbp, s.rsp, s.rip, s.eflags];
        for (g, x) in REGS32.iter().zip(v) {
            w(*g, x & 0xffff_ffff);
        }
    }
}

/// The guest dies of `death` at `pc`, reported with the bytes there, as
/// the real-CPU backend reports a fault.
fn kill(uc: &mut Unicorn<Guest>, death: Death, pc: u64) {
    let code = code_at(uc, pc, 15);
    let name = uc.get_data().task.pc_name();
    stop(uc, End::Killed { death, pc: (name, pc), detail: None, code });
}

/// A kernel entry: answered as on the real CPU; `entry` are the registers
/// as the trap instruction saw them. Returns the registers to resume with.
fn on_gate(uc: &mut Unicorn<Guest>, gate: Gate, entry: X86State, next: u64) -> Option<X86State> {
    let task = uc.get_data().task;
    match enter_kernel(uc, |calls, mem| kernel::answer(task, gate, &entry, next, calls, mem))? {
        Next::Resume(s) => Some(s),
        Next::Die(resume, death) => {
            if let Some(s) = resume {
                write_state(uc, &s);
            }
            let code = if death.sig == signal::SIGILL { code_at(uc, entry.rip, 15) } else { Vec::new() };
            stop(uc, End::Killed { death, pc: (task.pc_name(), entry.rip), detail: None, code });
            None
        }
        Next::End(end) => {
            stop(uc, end);
            None
        }
    }
}

/// `syscall` and `sysenter`: unicorn calls the hook and adds the
/// instruction's length to `rip` after it returns, so the resume address is
/// written that much short. For `syscall`, `rip` is on the instruction.
/// For `sysenter` it is only where unicorn last wrote it back, which may
/// be several chained blocks earlier (QEMU's `sysenter` does not write it).
/// `sysenter` ends its translated block, so it is found by decoding from
/// the block's start, which a block hook records for i386 tasks (a code
/// hook would keep `rip` exact, at a call for every instruction: 50 M
/// instructions/s against 120 M at the worst with the block hook, two
/// instructions a block; bench/results.md). A 64-bit task's `sysenter` is
/// always SIGILL, and only its report needs the address: decoded from
/// `rip`, which it is where the block started there.
fn on_sys(uc: &mut Unicorn<Guest>, sysenter: bool) {
    let mut entry = read_state(uc);
    let mode = if is64(uc) { CpuMode::Long } else { CpuMode::Compat };
    let (at, len) = if sysenter {
        let start = if is64(uc) { entry.rip } else { uc.get_data().block };
        // QEMU's largest block: 512 instructions of at most 15 bytes.
        match gate::find_sysenter(mode, start, &code_at(uc, start, 512 * 15)) {
            Some(found) => found,
            None if is64(uc) => (entry.rip, 2),
            None => {
                let why = format!("unicorn reported a sysenter that no decoding from the block at 0x{start:x} reaches");
                stop(uc, End::Runner(why));
                return;
            }
        }
    } else {
        match gate::decode(mode, &code_at(uc, entry.rip, 16)) {
            Insn::Syscall(l) => (entry.rip, l),
            _ => (entry.rip, 2),
        }
    };
    entry.rip = at;
    let gate = match (sysenter, mode) {
        (true, _) => Gate::Sysenter,
        (false, CpuMode::Long) => {
            // What the `syscall` instruction itself does before any kernel
            // sees it: the return address in rcx, the flags in r11.
            entry.rcx = at + len;
            entry.r11 = entry.eflags;
            Gate::Syscall64
        }
        (false, CpuMode::Compat) => Gate::SyscallCompat,
    };
    if let Some(s) = on_gate(uc, gate, entry, at + len) {
        write_state(uc, &X86State { rip: s.rip.wrapping_sub(len), ..s });
    } else {
        // Stopped: leave rip on the instruction for the report.
        let _ = uc.reg_write(if is64(uc) { RegisterX86::RIP } else { RegisterX86::EIP }, at.wrapping_sub(len));
    }
}

/// `int n` and CPU exceptions, numbered by vector. A trap (`int n`,
/// `int3`, `into`) reports `rip` after the instruction, a fault on it.
fn on_interrupt(uc: &mut Unicorn<Guest>, vector: u32) {
    let entry = read_state(uc);
    let rip = entry.rip;
    let before = |n: u64| uc.mem_read_as_vec(rip.wrapping_sub(n), n as usize).unwrap_or_default();
    // `cd n` just before rip: the guest's own `int n`.
    if vector <= 0xff && before(2) == [0xcd, vector as u8] {
        return match exception::software_int(vector as u8) {
            SoftwareInt::Gate(n) => {
                let mut e = entry;
                e.rip = rip - 2;
                if let Some(s) = on_gate(uc, Gate::Int(n), e, rip) {
                    write_state(uc, &s);
                }
            }
            SoftwareInt::Trap(v) => kill(uc, exception::death(v), rip),
            SoftwareInt::GeneralProtection => kill(uc, exception::death(exception::GENERAL_PROTECTION), rip - 2),
        };
    }
    let v = u8::try_from(vector).unwrap_or(u8::MAX);
    kill(uc, exception::death(v), rip);
}

fn setup(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls) -> Result<(Unicorn<'static, Guest>, Layout, HostMemory), String> {
    let Start::UnixThread(t) = &image.start else { return Err("an x86 image starts from LC_UNIXTHREAD".into()) };
    let read_at = |off: u64, buf: &mut [u8]| file.read_at(off, buf);
    let layout = address_space::plan(image, &read_at, stack, 0)?;
    let mode = if image.arch == Arch::X86_64 { Mode::MODE_64 } else { Mode::MODE_32 };
    let (mut uc, host) = new_cpu(UcArch::X86, mode, image.arch, calls, &layout, file)?;
    let s = X86State { rsp: stack.sp, rip: image.entry, eflags: user_eflags(t.eflags), ..*t };
    write_state(&mut uc, &s);
    uc.add_insn_sys_hook(X86Insn::SYSCALL, 1, 0, |uc| on_sys(uc, false)).map_err(|e| uc_err("hook", e))?;
    uc.add_insn_sys_hook(X86Insn::SYSENTER, 1, 0, |uc| on_sys(uc, true)).map_err(|e| uc_err("hook", e))?;
    if image.arch == Arch::I386 {
        // Where each translated block starts, for `sysenter` (on_sys).
        uc.add_block_hook(1, 0, |uc, addr, _size| uc.get_data_mut().block = addr).map_err(|e| uc_err("hook", e))?;
    }
    uc.add_intr_hook(on_interrupt).map_err(|e| uc_err("hook", e))?;
    Ok((uc, layout, host))
}

/// Runs an x86 image on the emulated CPU to its end.
pub fn run(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls, max_steps: Option<u64>) -> End {
    let (mut uc, layout, _host) = match setup(image, file, stack, calls) {
        Ok(u) => u,
        Err(e) => return End::Runner(e),
    };
    let count = max_steps.unwrap_or(0);
    // No address ends the run by itself: only exit, a death or the count.
    let result = uc.emu_start(image.entry, u64::MAX, 0, count as usize);
    let pc = read_state(&uc).rip;
    let code = code_at(&uc, pc, 15);
    // With no count, unicorn returns by itself only after `hlt`, which it
    // runs as a halt; at CPL 3 it is #GP (SIGSEGV) on the instruction.
    let halted = count == 0 && result.is_ok() && code_at(&uc, pc.wrapping_sub(1), 1) == [0xf4];
    let at = pc.wrapping_sub(1);
    let hlt_code = code_at(&uc, at, 15);
    let halt = || halted.then(|| End::Killed { death: exception::death(exception::GENERAL_PROTECTION), pc: (image.arch.pc_name(), at), detail: None, code: hlt_code });
    let end = finish(&mut uc, result, pc, count, code, &layout, halt);
    // The CPU goes before the host memory behind it.
    drop(uc);
    end
}
