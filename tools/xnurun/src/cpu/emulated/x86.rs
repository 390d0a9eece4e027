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

use super::{code_at, debug, enter_kernel, finish, lock_int, new_cpu, stop, uc_err, Guest, HostMemory};
use crate::cpu::debug::Registers;
use crate::image::address_space::{self, Layout};
use crate::image::stack::InitialStack;
use crate::image::file::ImageFile;
use crate::image::{Image, Start};
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use crate::xnu::x86::exception::{self, SoftwareInt};
use crate::xnu::x86::gate::{self, Gate, Insn, Mode as CpuMode, Sysenter};
use crate::xnu::x86::kernel;
use crate::xnu::x86::state::{user_eflags, X86State};
use crate::xnu::{signal, Arch};
use unicorn_engine::unicorn_const::{uc_error, Arch as UcArch, Mode, Prot};
use iced_x86::Register;
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

/// Linux's user selectors, which the real CPU runs the guest with
/// (docs/limits.md): 32-bit code, data, 64-bit code.
const USER32_CS: u64 = 0x23;
const USER_DS: u64 = 0x2b;
const USER64_CS: u64 = 0x33;

/// The page that holds the descriptor table and the one instruction that
/// drops the CPU to user mode: where no XNU image can map anything (past
/// the end of a 64-bit user map; the loader refuses segments there) and
/// no 32-bit code can reach.
const KERNEL_PAGE: u64 = crate::xnu::vm::VM_MAX_PAGE_ADDRESS64;

/// The mode the guest runs in now, from its code selector: an i386 task
/// runs in compatibility mode, and a far jump may change the mode.
fn mode(uc: &Unicorn<Guest>) -> CpuMode {
    if uc.reg_read(RegisterX86::CS).unwrap_or(USER64_CS) == USER32_CS { CpuMode::Compat } else { CpuMode::Long }
}

fn is64(uc: &Unicorn<Guest>) -> bool {
    mode(uc) == CpuMode::Long
}

fn read_state(uc: &Unicorn<Guest>) -> X86State {
    let v: Vec<u64> = REGS64.iter().map(|&g| uc.reg_read(g).unwrap_or(0)).collect();
    X86State {
        rax: v[0], rbx: v[1], rcx: v[2], rdx: v[3], rsi: v[4], rdi: v[5], rbp: v[6], rsp: v[7],
        r8: v[8], r9: v[9], r10: v[10], r11: v[11], r12: v[12], r13: v[13], r14: v[14], r15: v[15],
        rip: v[16], eflags: v[17],
    }
}

fn write_state(uc: &mut Unicorn<Guest>, s: &X86State) {
    // In compatibility mode only the low halves exist for the guest.
    let mask = if is64(uc) { u64::MAX } else { 0xffff_ffff };
    let v = [s.rax, s.rbx, s.rcx, s.rdx, s.rsi, s.rdi, s.rbp, s.rsp, s.r8, s.r9, s.r10, s.r11, s.r12, s.r13, s.r14, s.r15, s.rip, s.eflags];
    for (g, x) in REGS64.iter().zip(v) {
        let _ = uc.reg_write(*g, x & mask);
    }
}

/// Drops the CPU to user mode, as XNU runs a user thread: unicorn starts
/// at privilege level 0, where `hlt`, `in`/`out`, `cli`, `rdmsr` and the
/// rest of the system instructions would run instead of faulting. A
/// descriptor table with Linux's user segments (DPL 3), and an `iretq` to
/// the entry with the guest's code and stack selectors, as the kernel
/// returns to a new thread; a far jump between 32- and 64-bit code then
/// works as on the real CPU. The guest's registers are set afterwards.
fn enter_user_mode(uc: &mut Unicorn<Guest>, cs: u64, entry: u64, sp: u64, eflags: u64) -> Result<(), String> {
    // Flat 4 GiB descriptors, accessed bit set (so the CPU never writes
    // the table): 0x20 32-bit code, 0x28 data, 0x30 64-bit code.
    let gdt: [u64; 7] = [0, 0, 0, 0, 0x00CF_FB00_0000_FFFF, 0x00CF_F300_0000_FFFF, 0x00AF_FB00_0000_FFFF];
    let code = KERNEL_PAGE + 0x100;
    let frame = KERNEL_PAGE + 0x800;
    uc.mem_map(KERNEL_PAGE, 0x1000, Prot::READ | Prot::WRITE | Prot::EXEC).map_err(|e| uc_err("mapping the descriptor table", e))?;
    let mut page = vec![0u8; 0x1000];
    for (i, d) in gdt.iter().enumerate() {
        page[i * 8..i * 8 + 8].copy_from_slice(&d.to_le_bytes());
    }
    page[0x100..0x102].copy_from_slice(&[0x48, 0xcf]); // iretq
    for (i, v) in [entry, cs, eflags, sp, USER_DS].iter().enumerate() {
        page[0x800 + i * 8..0x808 + i * 8].copy_from_slice(&v.to_le_bytes());
    }
    uc.mem_write(KERNEL_PAGE, &page).map_err(|e| uc_err("writing the descriptor table", e))?;
    // selector u16, base u64, limit u32, flags u32 (uc_x86_mmr).
    let mut gdtr = [0u8; 24];
    gdtr[8..16].copy_from_slice(&KERNEL_PAGE.to_le_bytes());
    gdtr[16..20].copy_from_slice(&(gdt.len() as u32 * 8 - 1).to_le_bytes());
    uc.reg_write_long(RegisterX86::GDTR, &gdtr).map_err(|e| uc_err("loading the descriptor table", e))?;
    // XNU never sets CR4.FSGSBASE: `rdfsbase` and its kin are #UD there.
    let cr4 = uc.reg_read(RegisterX86::CR4).map_err(|e| uc_err("registers", e))?;
    uc.reg_write(RegisterX86::CR4, cr4 & !(1 << 16)).map_err(|e| uc_err("registers", e))?;
    // XNU sets CR0.NE (`init_fpu`, osfmk/i386/fpu.c): an unmasked x87
    // exception is #MF at the next x87 instruction, T_FLOATING_POINT_ERROR.
    // Without it unicorn's QEMU raises nothing (`fpu_raise_exception`).
    let cr0 = uc.reg_read(RegisterX86::CR0).map_err(|e| uc_err("registers", e))?;
    uc.reg_write(RegisterX86::CR0, cr0 | 1 << 5).map_err(|e| uc_err("registers", e))?;
    uc.reg_write(RegisterX86::RSP, frame).map_err(|e| uc_err("registers", e))?;
    uc.emu_start(code, entry, 0, 0).map_err(|e| uc_err("entering user mode", e))?;
    // The guest may read the table (a far jump does), never change it or
    // run from it.
    uc.mem_protect(KERNEL_PAGE, 0x1000, Prot::READ).map_err(|e| uc_err("protecting the descriptor table", e))?;
    Ok(())
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
        let start = if uc.get_data().task == Arch::I386 { uc.get_data().block } else { entry.rip };
        // QEMU's largest block: 512 instructions of at most 15 bytes.
        match gate::find_sysenter(mode, start, &code_at(uc, start, 512 * 15)) {
            Sysenter::At(at, len) => (at, len),
            Sysenter::Refused(at, vector) => {
                kill(uc, exception::death(vector), at);
                return;
            }
            Sysenter::Missing if uc.get_data().task != Arch::I386 => (entry.rip, 2),
            Sysenter::Missing => {
                let why = format!("unicorn reported a sysenter that no decoding from the block at 0x{start:x} reaches");
                stop(uc, End::Runner(why));
                return;
            }
        }
    } else {
        match gate::decode(mode, &code_at(uc, entry.rip, 16)) {
            Insn::Syscall(l) => (entry.rip, l),
            _ => {
                // QEMU runs `syscall` under prefixes the CPU refuses
                // (LOCK): #UD, SIGILL, on the instruction.
                kill(uc, exception::death(exception::INVALID_OPCODE), entry.rip);
                return;
            }
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
        let _ = uc.reg_write(RegisterX86::RIP, at.wrapping_sub(len));
    }
}

/// `in`/`out`: #GP on the instruction. unicorn does not write `rip` back
/// before the hook: the instruction is found as `sysenter` is (on_sys).
fn port_io(uc: &mut Unicorn<Guest>) {
    let rip = read_state(uc).rip;
    let start = if uc.get_data().task == Arch::I386 { uc.get_data().block } else { rip };
    let at = gate::find_port_io(mode(uc), start, &code_at(uc, start, 512 * 15)).map_or(rip, |(at, _)| at);
    kill(uc, exception::death(exception::GENERAL_PROTECTION), at);
}

/// `int n` and CPU exceptions, numbered by vector. A trap (`int n`,
/// `int3`, `into`) reports `rip` after the instruction, a fault on it.
fn on_interrupt(uc: &mut Unicorn<Guest>, vector: u32) {
    let entry = read_state(uc);
    let rip = entry.rip;
    let before = |n: u64| uc.mem_read_as_vec(rip.wrapping_sub(n), n as usize).unwrap_or_default();
    // `cd n` just before rip: the guest's own `int n`.
    if vector <= 0xff && before(2) == [0xcd, vector as u8] {
        // Unless prefixes the CPU refuses stood before it, which only the
        // block's decoding can tell (a 64-bit task's code hooks caught
        // those before they ran: lock_int.rs).
        if uc.get_data().task == Arch::I386 && before(16).contains(&0xf0) {
            let start = uc.get_data().block;
            let code = code_at(uc, start, rip.saturating_sub(start) as usize);
            if let Some((at, v)) = gate::find_refused_gate(mode(uc), start, &code) {
                return kill(uc, exception::death(v), at);
            }
        }
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
    // 64-bit mode for both: an i386 task runs in compatibility mode, as
    // under a 64-bit kernel.
    let (mut uc, host) = new_cpu(UcArch::X86, Mode::MODE_64, image.arch, calls, &layout, file)?;
    let cs = if image.arch == Arch::X86_64 { USER64_CS } else { USER32_CS };
    let eflags = user_eflags(t.eflags);
    enter_user_mode(&mut uc, cs, image.entry, stack.sp, eflags)?;
    let s = X86State { rsp: stack.sp, rip: image.entry, eflags, ..*t };
    write_state(&mut uc, &s);
    uc.add_insn_sys_hook(X86Insn::SYSCALL, 1, 0, |uc| on_sys(uc, false)).map_err(|e| uc_err("hook", e))?;
    uc.add_insn_sys_hook(X86Insn::SYSENTER, 1, 0, |uc| on_sys(uc, true)).map_err(|e| uc_err("hook", e))?;
    if image.arch == Arch::I386 {
        // Where each translated block starts, for `sysenter` (on_sys) and
        // `lock int n` (on_interrupt).
        uc.add_block_hook(1, 0, |uc, addr, _size| uc.get_data_mut().block = addr).map_err(|e| uc_err("hook", e))?;
    } else {
        for (first, last) in lock_int::watched(&layout, file)? {
            uc.add_code_hook(first, last, |uc, addr, _size| {
                if let Some(vector) = gate::refused_gate(mode(uc), &code_at(uc, addr, 16)) {
                    kill(uc, exception::death(vector), addr);
                }
            })
            .map_err(|e| uc_err("hook", e))?;
        }
    }
    uc.add_intr_hook(on_interrupt).map_err(|e| uc_err("hook", e))?;
    // unicorn lets every port I/O instruction through (its gen_check_io
    // returns at once); at CPL 3 with IOPL 0 the CPU raises #GP, and XNU
    // grants no I/O bitmap.
    uc.add_insn_in_hook(|uc, _port, _size| {
        port_io(uc);
        0
    })
    .map_err(|e| uc_err("hook", e))?;
    uc.add_insn_out_hook(|uc, _port, _size, _value| port_io(uc)).map_err(|e| uc_err("hook", e))?;
    Ok((uc, layout, host))
}

/// Where unicorn's report of how a run stopped is not what the CPU does:
/// `icebp` (int1), reported as undefined, is the debug trap (T_DEBUG,
/// SIGTRAP, after the instruction); a non-canonical address, which
/// unicorn cuts to 48 bits and reports as unmapped, is #SS through the
/// stack (RSP, RBP: T_STACK_FAULT, SIGILL) and #GP through anything else
/// (SIGSEGV), neither with a fault address; `ins` and `outs`, which QEMU
/// lets touch memory before their port (a page fault on ES:EDI), are #GP
/// at CPL 3 before any access, as `in` and `out` are (`port_io`).
fn unicorn_quirk(uc: &Unicorn<Guest>, result: Result<(), uc_error>, pc: u64) -> Option<End> {
    let name = uc.get_data().task.pc_name();
    let killed = |death, at: u64| Some(End::Killed { death, pc: (name, at), detail: None, code: code_at(uc, at, 15) });
    let code = code_at(uc, pc, 15);
    match result {
        Err(uc_error::INSN_INVALID) if code.first() == Some(&0xf1) => killed(exception::death(exception::DEBUG), pc + 1),
        Err(_) if gate::find_port_io(mode(uc), pc, &code).is_some_and(|(at, _)| at == pc) => killed(exception::death(exception::GENERAL_PROTECTION), pc),
        Err(_) if mode(uc) == CpuMode::Long => {
            let regs = |r: Register| {
                let g = match r.full_register() {
                    Register::RAX => RegisterX86::RAX,
                    Register::RBX => RegisterX86::RBX,
                    Register::RCX => RegisterX86::RCX,
                    Register::RDX => RegisterX86::RDX,
                    Register::RSI => RegisterX86::RSI,
                    Register::RDI => RegisterX86::RDI,
                    Register::RBP => RegisterX86::RBP,
                    Register::RSP => RegisterX86::RSP,
                    Register::R8 => RegisterX86::R8,
                    Register::R9 => RegisterX86::R9,
                    Register::R10 => RegisterX86::R10,
                    Register::R11 => RegisterX86::R11,
                    Register::R12 => RegisterX86::R12,
                    Register::R13 => RegisterX86::R13,
                    Register::R14 => RegisterX86::R14,
                    Register::R15 => RegisterX86::R15,
                    Register::RIP => RegisterX86::RIP,
                    // Segment bases, which 64-bit mode ignores but for FS
                    // and GS.
                    Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
                    Register::FS => RegisterX86::FS_BASE,
                    Register::GS => RegisterX86::GS_BASE,
                    _ => return None,
                };
                uc.reg_read(g).ok()
            };
            let vector = gate::non_canonical(&code, pc, regs)?;
            killed(exception::death(vector), pc)
        }
        _ => None,
    }
}

/// Runs an x86 image on the emulated CPU to its end.
pub fn run(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls, max_steps: Option<u64>) -> End {
    let (mut uc, layout, _host) = match setup(image, file, stack, calls) {
        Ok(u) => u,
        Err(e) => return End::Runner(e),
    };
    // unicorn's count 0 means no limit; `--max-steps 0` means none run.
    if max_steps == Some(0) {
        return End::StepLimit { steps: 0, pc: (image.arch.pc_name(), image.entry) };
    }
    let count = max_steps.unwrap_or(0);
    // No address ends the run by itself: only exit, a death or the count.
    let result = uc.emu_start(image.entry, u64::MAX, 0, count as usize);
    let end = end_of(&mut uc, result, count, &layout);
    // The CPU goes before the host memory behind it.
    drop(uc);
    end
}

/// How the run ended once `emu_start` returned `result` after a `count`
/// (0: none) of instructions.
fn end_of(uc: &mut Unicorn<'static, Guest>, result: Result<(), uc_error>, count: u64, layout: &Layout) -> End {
    let pc = read_state(uc).rip;
    let code = code_at(uc, pc, 15);
    let quirk = unicorn_quirk(uc, result, pc);
    finish(uc, result, pc, count, code, layout, || quirk)
}

/// An x86 image on the emulated CPU, stopped before its first instruction,
/// for a debugger.
pub fn debug_session(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls) -> Result<debug::Session, End> {
    let (uc, layout, host) = setup(image, file, stack, calls).map_err(End::Runner)?;
    let arch = debug::Arch {
        pc: |uc| read_state(uc).rip,
        until: u64::MAX,
        registers: |uc| Registers::X86(read_state(uc)),
        set_registers: |uc, r| {
            if let Registers::X86(s) = r {
                write_state(uc, s);
            }
        },
        // Alive while no hook ended the run and unicorn met no error: a
        // step's count, a breakpoint's stop and a slice's timeout all
        // return Ok.
        ended: |uc, result, layout| (uc.get_data().end.is_some() || result.is_err()).then(|| end_of(uc, result, 0, layout)),
    };
    Ok(debug::Session::new(uc, layout, host, arch))
}
