//! The emulated-CPU backend for arm64 images: unicorn (QEMU's CPU core as a
//! library) runs the guest; XNU's side is the same [`calls`] the real-CPU
//! backend uses, with the arm64 convention of [`xnu_arm64`].
//!
//! It sets up what dyld would have by the time it calls `main`: the image
//! mapped at a nonzero slide (it is position-independent, so nothing in it
//! may depend on where it lies), the kernel's stack strings, `x0`-`x3` =
//! argc, argv, envp, apple, a 16-byte-aligned `sp`, and `lr` pointing at
//! dyld's return path, which calls `exit(main's result)`. The guest's
//! memory is unicorn's, not any host process's: a guest can reach no host
//! system call at all.

use crate::calls::{Calls, Next, EXIT_UNIMPLEMENTED};
use crate::emulated::{memory_signal, End, UcMem, EXIT_RUNNER, EXIT_STEP_LIMIT};
use crate::loader::{Image, MAXSSIZ};
use crate::stack::InitialStack;
use crate::trace;
use crate::xnu;
use crate::xnu_arm64::{self, Regs};
use std::rc::Rc;
use unicorn_engine::unicorn_const::{uc_error, Arch as UcArch, HookType, Mode, Prot};
use unicorn_engine::{RegisterARM64, Unicorn};

/// Where the image is mapped relative to its vmaddrs.
pub const SLIDE: u64 = 0x1000_0000;
/// `lr` at `main`: stands for dyld's return path (`exit(main(...))`). An
/// address no image can map: past the end of an arm64 user map.
pub const DYLD_RETURN: u64 = 0x0000_7fff_ffff_c000;
/// The main thread's stack: DFLSSIZ (8 MiB) below USRSTACK64.
const STACK_SIZE: u64 = 8 << 20;

/// Linux-independent numbers for unicorn's exception classes
/// (qemu/target/arm/cpu.h).
const EXCP_UDEF: u32 = 1;
const EXCP_SWI: u32 = 2;
const EXCP_BKPT: u32 = 7;

struct State {
    calls: Option<Calls>,
    readable: Rc<Vec<(u64, u64)>>,
    writable: Rc<Vec<(u64, u64)>>,
    trace: bool,
    end: Option<End>,
    /// The address of the last invalid access.
    fault: Option<u64>,
}

fn xreg(n: usize) -> i32 {
    match n {
        29 => RegisterARM64::X29 as i32,
        30 => RegisterARM64::X30 as i32,
        _ => RegisterARM64::X0 as i32 + n as i32,
    }
}

fn read_regs(uc: &Unicorn<State>) -> Regs {
    let mut r = Regs::default();
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = uc.reg_read(xreg(i)).unwrap_or(0);
    }
    r.sp = uc.reg_read(RegisterARM64::SP).unwrap_or(0);
    r.pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
    r.cpsr = uc.reg_read(RegisterARM64::NZCV).unwrap_or(0);
    r
}

fn write_result(uc: &mut Unicorn<State>, r: &Regs) {
    let _ = uc.reg_write(xreg(0), r.x[0]);
    let _ = uc.reg_write(xreg(1), r.x[1]);
    let _ = uc.reg_write(RegisterARM64::NZCV, r.cpsr);
    let _ = uc.reg_write(RegisterARM64::PC, r.pc);
}

fn stop(uc: &mut Unicorn<State>, end: End) {
    uc.get_data_mut().end = Some(end);
    let _ = uc.emu_stop();
}

/// `svc`: the call is answered in the hook, before the next instruction.
fn on_svc(uc: &mut Unicorn<State>) {
    let regs = read_regs(uc);
    if uc.get_data().trace {
        trace::line(&xnu_arm64::regs_line(&regs));
    }
    let next = match xnu_arm64::decode(&regs) {
        xnu_arm64::Entry::Bsd { code, args } => {
            let (Some(mut calls), readable, writable) = (uc.get_data_mut().calls.take(), uc.get_data().readable.clone(), uc.get_data().writable.clone()) else { return };
            let next = calls.bsd_call(&mut UcMem { uc, readable: &readable, writable: &writable }, code, &args);
            uc.get_data_mut().calls = Some(calls);
            next
        }
        xnu_arm64::Entry::MachTrap { number } => Next::Stop(
            format!("the guest made Mach trap {number} (x16 = -{number}): a real XNU call that xnurun does not implement"),
            EXIT_UNIMPLEMENTED,
        ),
        xnu_arm64::Entry::Platform => Next::Stop("the guest made a platform call (x16 = 0x80000000): a real XNU call that xnurun does not implement".into(), EXIT_UNIMPLEMENTED),
    };
    match next {
        Next::Resume(o) => write_result(uc, &xnu_arm64::finish(&regs, &o)),
        Next::ResumeThenKill(o, sig) => {
            write_result(uc, &xnu_arm64::finish(&regs, &o));
            stop(uc, End::Killed { sig, pc: regs.pc - 4, why: "signal posted by the system call".into(), detail: None, code: Vec::new() });
        }
        Next::Exit(status) => stop(uc, End::Exit(status)),
        Next::Stop(msg, status) => stop(uc, End::Stop(msg, status)),
    }
}

fn setup(image: &Image, read_at: crate::ReadAt, stack: &InitialStack, state: State) -> Result<Unicorn<'static, State>, String> {
    let uc_err = |what: &str, e: uc_error| format!("unicorn: {what}: {e:?}");
    let mut uc = Unicorn::new_with_data(UcArch::ARM64, Mode::ARM, state).map_err(|e| uc_err("creating the CPU", e))?;
    let (mut readable, mut writable) = (Vec::new(), Vec::new());
    for seg in &image.segments {
        let start = seg.vmaddr + SLIDE;
        let len = seg.vmsize.next_multiple_of(crate::loader_arm64::PAGE16K);
        let mut prot = Prot::NONE;
        if seg.initprot & 1 != 0 {
            prot |= Prot::READ;
        }
        if seg.initprot & 2 != 0 {
            prot |= Prot::WRITE;
        }
        if seg.initprot & 4 != 0 {
            prot |= Prot::EXEC;
        }
        uc.mem_map(start, len, Prot::ALL).map_err(|e| uc_err(&format!("mapping {}", seg.name), e))?;
        let mut data = vec![0u8; seg.filesize.min(len) as usize];
        read_at(seg.fileoff, &mut data)?;
        uc.mem_write(start, &data).map_err(|e| uc_err("writing the image", e))?;
        uc.mem_protect(start, len, prot).map_err(|e| uc_err("protecting the image", e))?;
        if seg.initprot & 1 != 0 {
            readable.push((start, start + len));
        }
        if seg.initprot & 2 != 0 {
            writable.push((start, start + len));
        }
    }
    // dyld's rebasing: each pointer moves by the slide.
    for &at in &image.rebases {
        let mut w = [0u8; 8];
        uc.mem_read(at + SLIDE, &mut w).map_err(|e| uc_err("rebasing", e))?;
        let v = u64::from_le_bytes(w).wrapping_add(SLIDE);
        uc.mem_write(at + SLIDE, &v.to_le_bytes()).map_err(|e| uc_err("rebasing", e))?;
    }
    let top = image.user_stack;
    uc.mem_map(top - STACK_SIZE, STACK_SIZE, Prot::READ | Prot::WRITE).map_err(|e| uc_err("mapping the stack", e))?;
    uc.mem_write(stack.sp, &stack.bytes).map_err(|e| uc_err("writing the stack", e))?;
    readable.push((top - STACK_SIZE, top));
    writable.push((top - STACK_SIZE, top));
    uc.get_data_mut().readable = Rc::new(readable);
    uc.get_data_mut().writable = Rc::new(writable);

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
    uc.add_intr_hook(|uc, intno| match intno {
        EXCP_SWI => on_svc(uc),
        EXCP_BKPT => {
            let pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
            stop(uc, End::Killed { sig: xnu::SIGTRAP, pc, why: "brk: EXC_BREAKPOINT".into(), detail: None, code: Vec::new() })
        }
        n => {
            let pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
            let why = if n == EXCP_UDEF { "undefined instruction: EXC_BAD_INSTRUCTION".to_string() } else { format!("CPU exception {n}") };
            stop(uc, End::Killed { sig: xnu::SIGILL, pc, why, detail: None, code: Vec::new() })
        }
    })
    .map_err(|e| uc_err("hook", e))?;
    uc.add_mem_hook(HookType::MEM_INVALID, 1, 0, |uc, _ty, addr, _size, _value| {
        uc.get_data_mut().fault = Some(addr);
        false
    })
    .map_err(|e| uc_err("hook", e))?;
    Ok(uc)
}

/// Runs an arm64 image to its end and returns xnurun's exit status.
pub fn run(image: &Image, read_at: crate::ReadAt, stack: &InitialStack, calls: Calls, max_steps: Option<u64>) -> i32 {
    if let Some(work) = &image.dyld_work {
        trace::line(&format!("xnurun: the image needs {work} before main, which xnurun does not apply"));
        return EXIT_UNIMPLEMENTED;
    }
    let trace_on = calls.trace;
    let state = State { calls: Some(calls), readable: Rc::new(Vec::new()), writable: Rc::new(Vec::new()), trace: trace_on, end: None, fault: None };
    let mut uc = match setup(image, read_at, stack, state) {
        Ok(u) => u,
        Err(e) => {
            trace::line(&format!("xnurun: {e}"));
            return EXIT_RUNNER;
        }
    };
    let count = max_steps.unwrap_or(0) as usize;
    let result = uc.emu_start(image.entry + SLIDE, DYLD_RETURN, 0, count);
    let pc = uc.reg_read(RegisterARM64::PC).unwrap_or(0);
    let state = uc.get_data_mut();
    let killed = |sig: i32, pc: u64, why: &str| trace::death(trace_on, sig, ("pc", pc), None, why, &[]);
    match (state.end.take(), result) {
        (Some(End::Exit(s)), _) => s,
        (Some(End::Stop(msg, s)), _) => {
            trace::line(&format!("xnurun: {msg}"));
            s
        }
        (Some(End::Killed { sig, pc, why, detail, code }), _) => trace::death(trace_on, sig, ("pc", pc), detail.as_deref(), &why, &code),
        (None, Ok(())) if pc == DYLD_RETURN => {
            // main returned: dyld's `start` passes its result to exit().
            let status = (uc.reg_read(xreg(0)).unwrap_or(0) as i32) & 0xff;
            if trace_on {
                trace::line(&format!("exit({status}) (main returned; dyld calls exit)"));
            }
            status
        }
        (None, Ok(())) => {
            trace::line(&format!("xnurun: step limit reached: the guest ran {count} instructions without exiting (at pc 0x{pc:x}; raise it with --max-steps)"));
            EXIT_STEP_LIMIT
        }
        (None, Err(e)) => {
            let addr = state.fault.unwrap_or(pc);
            let mapped = image.segments.iter().any(|sg| addr >= sg.vmaddr + SLIDE && addr < sg.vmaddr + SLIDE + sg.vmsize);
            let zone = addr < image.user_stack && addr >= image.user_stack.saturating_sub(MAXSSIZ);
            match memory_signal(e, mapped, zone) {
                Some((sig, why)) => trace::death(trace_on, sig, ("pc", pc), Some(&format!("fault address 0x{addr:x}")), why, &[]),
                None if e == uc_error::EXCEPTION => killed(xnu::SIGILL, pc, "undefined instruction"),
                None => {
                    trace::line(&format!("xnurun: the emulated CPU stopped: {e:?} at pc 0x{pc:x}"));
                    EXIT_RUNNER
                }
            }
        }
    }
}
