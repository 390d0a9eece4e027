//! The emulated-CPU backend for arm64 images: unicorn (QEMU's CPU core as a
//! library) runs the guest and stops at each `svc` and exception; XNU's
//! answer comes from [`kernel`], the twin of the x86 one, with the same
//! BSD calls every backend uses.
//!
//! It sets up what dyld would have by the time it calls `main`: the image
//! mapped at a nonzero slide by the one address-space plan, with dyld's
//! rebases applied (it is position-independent, so nothing in it may
//! depend on where it lies), the kernel's stack strings, `x0`-`x3` =
//! argc, argv, envp, apple, a 16-byte-aligned `sp`, and `lr` pointing at
//! dyld's return path, which calls `exit(main's result)`. The guest's
//! memory is unicorn's, not any host process's: a guest can reach no host
//! system call at all.

use super::{debug, enter_kernel, finish, new_cpu, stop, uc_err, Guest, HostMemory};
use crate::cpu::debug::Registers;
use crate::image::address_space::{self, Layout};
use crate::image::stack::InitialStack;
use crate::image::file::ImageFile;
use crate::image::Image;
use crate::xnu::arm64::convention::Regs;
use crate::xnu::arm64::kernel;
use crate::xnu::bsd::calls::Calls;
use crate::xnu::end::{Death, End, Next};
use unicorn_engine::unicorn_const::{uc_error, Arch as UcArch, Mode};
use unicorn_engine::{RegisterARM64, RegisterARM64CP, Unicorn};

/// Where the image is mapped relative to its vmaddrs.
pub const SLIDE: u64 = 0x1000_0000;
/// `lr` at `main`: stands for dyld's return path (`exit(main(...))`). An
/// address no image can map: past the end of an arm64 user map.
pub const DYLD_RETURN: u64 = 0x0000_7fff_ffff_c000;

/// Linux-independent numbers for unicorn's exception classes
/// (qemu/target/arm/cpu.h).
const EXCP_UDEF: u32 = 1;
const EXCP_SWI: u32 = 2;
const EXCP_BKPT: u32 = 7;

fn xreg(n: usize) -> i32 {
    match n {
        29 => RegisterARM64::X29 as i32,
        30 => RegisterARM64::X30 as i32,
        _ => RegisterARM64::X0 as i32 + n as i32,
    }
}

fn read_regs(uc: &Unicorn<Guest>) -> Regs {
    let mut r = Regs::default();
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = uc.reg_read(xreg(i)).unwrap_or(0);
    }
    r.sp = uc.reg_read(RegisterARM64::SP).unwrap_or(0);
    r.pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
    r.cpsr = uc.reg_read(RegisterARM64::NZCV).unwrap_or(0);
    r
}

fn write_result(uc: &mut Unicorn<Guest>, r: &Regs) {
    let _ = uc.reg_write(xreg(0), r.x[0]);
    let _ = uc.reg_write(xreg(1), r.x[1]);
    let _ = uc.reg_write(RegisterARM64::NZCV, r.cpsr);
    let _ = uc.reg_write(RegisterARM64::PC, r.pc);
}

/// The guest dies of `death` at `pc`.
fn kill(uc: &mut Unicorn<Guest>, death: Death, pc: u64) {
    stop(uc, End::Killed { death, pc: ("pc", pc), detail: None, code: Vec::new() });
}

/// `svc`: the call is answered in the hook, before the next instruction.
fn on_svc(uc: &mut Unicorn<Guest>) {
    let regs = read_regs(uc);
    let Some(next) = enter_kernel(uc, |calls, mem| kernel::answer(&regs, calls, mem)) else { return };
    match next {
        Next::Resume(r) => write_result(uc, &r),
        Next::Die(resume, death) => {
            if let Some(r) = resume {
                write_result(uc, &r);
            }
            kill(uc, death, regs.pc - 4);
        }
        Next::End(end) => stop(uc, end),
    }
}

fn setup(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls) -> Result<(Unicorn<'static, Guest>, Layout, HostMemory), String> {
    let read_at = |off: u64, buf: &mut [u8]| file.read_at(off, buf);
    let layout = address_space::plan(image, &read_at, stack, SLIDE)?;
    let (mut uc, host) = new_cpu(UcArch::ARM64, Mode::ARM, image.arch, calls, &layout, file)?;

    // XNU runs user threads at EL0; unicorn's CPU starts at EL1, where
    // `mrs CurrentEL`, `msr daifset` or `eret` would run instead of being
    // undefined. EL0t, before the stack pointer (SP_EL0) is set. Writing a
    // system register (TPIDR_EL0, 0 as for a new thread) makes unicorn
    // rebuild the state its translations are keyed by, which a PSTATE
    // write alone does not.
    uc.reg_write(RegisterARM64::PSTATE, 0).map_err(|e| uc_err("registers", e))?;
    let tpidr_el0 = RegisterARM64CP { op0: 3, op1: 3, crn: 13, crm: 0, op2: 2, val: 0 };
    uc.reg_write_arm64_coproc(&tpidr_el0).map_err(|e| uc_err("registers", e))?;
    // What dyld hands `main`: the kernel's argc, argv, envp and apple
    // arrays, which sit one above the other from the stack pointer.
    let word = |i: u64| stack.sp + 8 * i;
    let argc = u64::from_le_bytes(stack.bytes[..8].try_into().expect("argc"));
    let envp = word(argc + 2);
    let mut apple = envp;
    while stack.bytes.get((apple - stack.sp) as usize..(apple - stack.sp) as usize + 8).is_some_and(|w| w != [0; 8]) {
        apple += 8;
    }
    apple += 8;
    for (i, v) in [argc, word(1), envp, apple].into_iter().enumerate() {
        uc.reg_write(xreg(i), v).map_err(|e| uc_err("registers", e))?;
    }
    uc.reg_write(RegisterARM64::SP, (stack.sp - 64) & !15).map_err(|e| uc_err("registers", e))?;
    uc.reg_write(RegisterARM64::X30, DYLD_RETURN).map_err(|e| uc_err("registers", e))?;
    uc.add_intr_hook(|uc, intno| {
        let pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
        match intno {
            EXCP_SWI => on_svc(uc),
            EXCP_BKPT => kill(uc, kernel::breakpoint(), pc),
            EXCP_UDEF => kill(uc, kernel::undefined(), pc),
            n => kill(uc, Death::new(kernel::undefined().sig, format!("CPU exception {n}")), pc),
        }
    })
    .map_err(|e| uc_err("hook", e))?;
    Ok((uc, layout, host))
}

/// Runs an arm64 image to its end.
pub fn run(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls, max_steps: Option<u64>) -> End {
    if let Some(work) = &image.dyld_work {
        return End::Unimplemented(format!("the image needs {work} before main, which xnurun does not apply"));
    }
    let tracing = calls.trace;
    let (mut uc, layout, _host) = match setup(image, file, stack, calls) {
        Ok(u) => u,
        Err(e) => return End::Runner(e),
    };
    // unicorn's count 0 means no limit; `--max-steps 0` means none run.
    if max_steps == Some(0) {
        return End::StepLimit { steps: 0, pc: (image.arch.pc_name(), image.entry + SLIDE) };
    }
    let count = max_steps.unwrap_or(0);
    let result = uc.emu_start(image.entry + SLIDE, DYLD_RETURN, 0, count as usize);
    let end = end_of(&mut uc, result, count, &layout, tracing);
    // The CPU goes before the host memory behind it.
    drop(uc);
    end
}

/// How the run ended once `emu_start` returned `result` after a `count`
/// (0: none) of instructions.
fn end_of(uc: &mut Unicorn<'static, Guest>, result: Result<(), uc_error>, count: u64, layout: &Layout, tracing: bool) -> End {
    let (pc, halted) = stopped_at(uc, result, count);
    let x0 = uc.reg_read(xreg(0)).unwrap_or(0);
    let special = || match result {
        Ok(()) if pc == DYLD_RETURN => Some(kernel::main_returned(x0, tracing)),
        Ok(()) if halted => Some(End::Killed { death: kernel::undefined(), pc: ("pc", pc - 4), detail: None, code: Vec::new() }),
        Err(uc_error::EXCEPTION) => Some(End::Killed { death: Death::new(kernel::undefined().sig, "undefined instruction"), pc: ("pc", pc), detail: None, code: Vec::new() }),
        _ => None,
    };
    finish(uc, result, pc, count, Vec::new(), layout, special)
}

/// The pc unicorn returned at, and whether it returned because the guest
/// halted. With no count, unicorn returns by itself after `wfi`/`wfe`,
/// which it runs as a halt; at EL0 XNU traps them (SCTLR_EL1.nTWI/nTWE
/// clear) as an undefined instruction: SIGILL on the instruction.
fn stopped_at(uc: &Unicorn<Guest>, result: Result<(), uc_error>, count: u64) -> (u64, bool) {
    let pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
    let word = uc.mem_read_as_vec(pc.wrapping_sub(4), 4).ok().and_then(|w| w.try_into().ok()).map(u32::from_le_bytes);
    (pc, count == 0 && result.is_ok() && matches!(word, Some(kernel::WFI | kernel::WFE)))
}

fn registers(uc: &Unicorn<Guest>) -> Registers {
    Registers::Arm64(read_regs(uc))
}

fn set_registers(uc: &mut Unicorn<'static, Guest>, r: &Registers) {
    if let Registers::Arm64(r) = r {
        for (i, x) in r.x.iter().enumerate() {
            let _ = uc.reg_write(xreg(i), *x);
        }
        let _ = uc.reg_write(RegisterARM64::SP, r.sp);
        let _ = uc.reg_write(RegisterARM64::PC, r.pc);
        let _ = uc.reg_write(RegisterARM64::NZCV, r.cpsr);
    }
}

/// An arm64 image on the emulated CPU, stopped at `main` as dyld calls it,
/// for a debugger.
pub fn debug_session(image: &Image, file: &ImageFile, stack: &InitialStack, calls: Calls) -> Result<debug::Session, End> {
    if let Some(work) = &image.dyld_work {
        return Err(End::Unimplemented(format!("the image needs {work} before main, which xnurun does not apply")));
    }
    let (mut uc, layout, host) = setup(image, file, stack, calls).map_err(End::Runner)?;
    uc.reg_write(RegisterARM64::PC, image.entry + SLIDE).map_err(|e| End::Runner(uc_err("registers", e)))?;
    let arch = debug::Arch {
        pc: |uc| uc.reg_read(RegisterARM64::PC).unwrap_or(0),
        until: DYLD_RETURN,
        registers,
        set_registers,
        // Alive while no hook ended the run, unicorn met no error, and
        // the guest neither returned into dyld nor halted: a step's count,
        // a breakpoint's stop and a slice's timeout all return Ok.
        ended: |uc, result, layout| {
            let (pc, halted) = stopped_at(uc, result, 0);
            if uc.get_data().end.is_none() && result.is_ok() && pc != DYLD_RETURN && !halted {
                return None;
            }
            let tracing = uc.get_data().calls.as_ref().is_some_and(|c| c.trace);
            Some(end_of(uc, result, 0, layout, tracing))
        },
    };
    Ok(debug::Session::new(uc, layout, host, arch))
}
