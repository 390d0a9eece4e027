"""The native-speed check for xnurun: one loop of 3×10^8 iterations between
two system calls (write, then exit), as a static Linux ELF run directly and
as a static XNU x86_64 Mach-O run under xnurun. Both files are written here,
byte by byte, with the same instructions; only the call numbers differ.
Used by bench.py; prints nothing itself."""

import random
import statistics
import struct
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ITERATIONS = 300_000_000
RUNS = 5


def code(write_nr, exit_nr, base):
    """write(1, "loop\\n", 5); 3×10^8 × (dec ecx; jnz); exit(0). The message
    follows the code; `base` is the code's address."""
    c = bytearray()
    c += b"\xbf\x01\x00\x00\x00"                      # mov edi, 1
    lea_at = len(c)
    c += b"\x48\x8d\x35\x00\x00\x00\x00"              # lea rsi, [rip + msg]
    c += b"\xba\x05\x00\x00\x00"                      # mov edx, 5
    c += b"\xb8" + struct.pack("<I", write_nr)        # mov eax, write
    c += b"\x0f\x05"                                  # syscall
    c += b"\xb9" + struct.pack("<I", ITERATIONS)      # mov ecx, N
    c += b"\xff\xc9\x75\xfc"                          # 1: dec ecx; jnz 1b
    c += b"\x31\xff"                                  # xor edi, edi
    c += b"\xb8" + struct.pack("<I", exit_nr)         # mov eax, exit
    c += b"\x0f\x05"                                  # syscall
    msg = len(c)
    c[lea_at + 3:lea_at + 7] = struct.pack("<i", msg - (lea_at + 7))
    return bytes(c + b"loop\n")


def linux_elf():
    base = 0x400000
    # The code at the same offset within a 64-byte line as in the Mach-O
    # (0x400), so that the loop is fetched alike.
    off = 0x80
    body = code(1, 60, base + off)
    size = off + len(body)
    ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, base + off, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + bytes(off - 64 - 56) + body


def xnu_macho():
    text = 0x1_0000_0000
    code_off = 0x400
    body = code(0x2000004, 0x2000001, text + code_off)
    seg = lambda name, vmaddr, vmsize, fileoff, filesize, prot: struct.pack(
        "<II16sQQQQIIII", 0x19, 72, name, vmaddr, vmsize, fileoff, filesize, prot, prot, 0, 0)
    state = [0] * 21
    state[16] = text + code_off                       # rip (x86_thread_state64_t)
    thread = struct.pack("<IIII", 5, 184, 4, 42) + struct.pack("<21Q", *state)
    cmds = seg(b"__PAGEZERO", 0, text, 0, 0, 0) + seg(b"__TEXT", text, 0x1000, 0, 0x1000, 5) + thread
    header = struct.pack("<IIIIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 3, len(cmds), 1, 0)
    image = bytearray(header + cmds)
    image += bytes(code_off - len(image)) + body
    image += bytes(0x1000 - len(image))
    return bytes(image)


def xnu_i386_macho():
    """The same loop as an XNU i386 image: `int 0x80` with the arguments on
    the stack above a dummy word (write, then exit), `dec ecx; jnz`."""
    text, code_off = 0x1000, 0x400
    c = bytearray()
    c += b"\x6a\x05"                                  # push 5
    msg_at = len(c) + 1
    c += b"\x68\x00\x00\x00\x00"                      # push msg
    c += b"\x6a\x01\x50"                              # push 1; push eax (dummy)
    c += b"\xb8\x04\x00\x00\x00\xcd\x80"              # mov eax, 4; int 0x80
    c += b"\x83\xc4\x10"                              # add esp, 16
    c += b"\xb9" + struct.pack("<I", ITERATIONS)      # mov ecx, N
    c += b"\x49\x75\xfd"                              # 1: dec ecx; jnz 1b
    c += b"\x6a\x00\x50\xb8\x01\x00\x00\x00\xcd\x80"  # exit(0)
    c[msg_at:msg_at + 4] = struct.pack("<I", text + code_off + len(c))
    body = bytes(c + b"loop\n")
    seg = lambda name, vmaddr, vmsize, fileoff, filesize, prot: struct.pack(
        "<II16sIIIIIIII", 1, 56, name, vmaddr, vmsize, fileoff, filesize, prot, prot, 0, 0)
    state = [0] * 16
    state[10] = text + code_off                       # eip (x86_thread_state32_t)
    thread = struct.pack("<IIII", 5, 80, 1, 16) + struct.pack("<16I", *state)
    cmds = seg(b"__PAGEZERO", 0, text, 0, 0, 0) + seg(b"__TEXT", text, 0x1000, 0, 0x1000, 5) + thread
    header = struct.pack("<IIIIIII", 0xFEEDFACE, 7, 3, 2, 3, len(cmds), 1)
    image = bytearray(header + cmds)
    image += bytes(code_off - len(image)) + body
    image += bytes(0x1000 - len(image))
    return bytes(image)


def arm64_pair(out: Path):
    """The loop in arm64 (`subs w3, w3, #1; b.ne`), built by rustc from the
    same assembly twice: a static Linux aarch64 ELF (for qemu-aarch64) and an
    XNU arm64 image linked and signed by rust-lld as hello is (dyld-loaded,
    the only kind arm64 macOS runs). Only the call convention differs: x8
    and `svc #0` against x16 and `svc #0x80`. Returns (elf, macho, why)."""
    def build(name, target, start, call, write_nr, exit_nr, link):
        src = out / f"{name}.rs"
        asm = [f".globl {start}", f"{start}:",
               "mov x0, #1", "adr x1, 2f", "mov x2, #5", f"mov {call[0]}, #{write_nr}", call[1],
               f"movz w3, #{ITERATIONS & 0xffff:#x}", f"movk w3, #{ITERATIONS >> 16:#x}, lsl #16",
               "1:", "subs w3, w3, #1", "b.ne 1b",
               "mov x0, #0", f"mov {call[0]}, #{exit_nr}", call[1],
               "2:", '.ascii "loop\\n"']
        src.write_text("#![no_std]\n#![no_main]\ncore::arch::global_asm!(\n"
                       + "".join(f"    {json.dumps(line)},\n" for line in asm)
                       + ");\n#[panic_handler]\nfn p(_: &core::panic::PanicInfo) -> ! { loop {} }\n")
        binary = out / name
        argv = ["rustc", "--edition", "2024", "--target", target, "-C", "opt-level=z", "-C", "panic=abort",
                "-C", "linker=rust-lld", "-C", "link-arg=-e", "-C", f"link-arg={start}", *link, "-o", binary, src]
        p = subprocess.run(argv, capture_output=True, env={**os.environ, "SDKROOT": str(ROOT / ".cargo/MacOSX.sdk")})
        return binary if p.returncode == 0 else None, p.stderr.decode(errors="replace").strip()[:160]
    out.mkdir(parents=True, exist_ok=True)
    elf, why = build("loop-linux-aarch64", "aarch64-unknown-linux-gnu", "_start", ("x8", "svc #0"), 64, 93,
                     ["-C", "linker-flavor=ld.lld", "-C", "relocation-model=static", "-C", "link-arg=-static"])
    macho, why2 = build("loop-xnu-arm64", "aarch64-apple-darwin", "__start", ("x16", "svc #0x80"), 4, 1,
                        ["-C", "linker-flavor=ld64.lld", "-C", "link-arg=-lSystem"])
    return elf, macho, why or why2


def median_seconds(argv):
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            return None, f"`{' '.join(map(str, argv))}` exited {p.returncode}: {p.stderr.decode(errors='replace').strip()[:120]}"
    return statistics.median(times), ""


def measure(out: Path, xnurun):
    """Returns markdown lines: the two timings and their ratio."""
    out.mkdir(parents=True, exist_ok=True)
    elf, macho = out / "loop-linux", out / "loop-xnu"
    elf.write_bytes(linux_elf())
    macho.write_bytes(xnu_macho())
    elf.chmod(0o755)
    native, why = median_seconds([str(elf)])
    guest, why2 = median_seconds([str(xnurun), str(macho)]) if xnurun else (None, "no xnurun")
    lines = ["", f"Native speed: a loop of {ITERATIONS:,} iterations (`dec ecx; jnz`) between a write and an exit, "
             f"median of {RUNS} runs (bench/native_loop.py writes both files):", "",
             "| program | time | × native |", "|---|--:|--:|"]
    lines.append(f"| static Linux ELF, run directly | {native:.3f} s | 1.00× |" if native else f"| static Linux ELF | n/a: {why} | |")
    if guest and native:
        verdict = "PASS" if guest / native <= 1.5 else "FAIL"
        lines.append(f"| static XNU Mach-O under `xnurun` | {guest:.3f} s | {guest / native:.2f}× |")
        lines += ["", f"- xnurun ≤ 1.5× native: {verdict}"]
    else:
        lines.append(f"| static XNU Mach-O under `xnurun` | n/a: {why2} | |")
    lines += emulated_and_i386(out, xnurun, elf, macho)
    return lines


ROUNDS = 9


def fastest_seconds(argvs):
    """Each program's fastest run, in seconds, from ROUNDS rounds that run
    every program once in a new random order. On this project's shared
    VMs a neighbour's load only ever adds time (a loop of the same
    instructions cannot run faster than it does alone), and it comes and
    goes within a second: the fastest of interleaved runs is what the
    program costs, where the median of one program's consecutive runs
    measured the neighbours as much (the same pair has read 1.01× and
    1.11× an hour apart). Returns {index: (seconds, "")} or (None, why)."""
    best = {i: (None, "") for i in range(len(argvs))}
    for _ in range(ROUNDS):
        order = list(range(len(argvs)))
        random.shuffle(order)
        for i in order:
            if best[i][1]:
                continue
            t = time.perf_counter()
            p = subprocess.run(argvs[i], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            took = time.perf_counter() - t
            if p.returncode != 0:
                best[i] = (None, f"`{' '.join(map(str, argvs[i]))}` exited {p.returncode}: {p.stderr.decode(errors='replace').strip()[:120]}")
            elif best[i][0] is None or took < best[i][0]:
                best[i] = (took, "")
    return best


def emulated_and_i386(out: Path, xnurun, elf, macho):
    """The emulated CPU against the QEMU it is built on (the same loop as a
    Linux ELF under qemu-x86_64, and in arm64 under qemu-aarch64), and the
    i386 loop on each CPU kind's choice: the real CPU (AMD) and the
    emulated one (Intel's default), in guest instructions per second."""
    i386 = out / "loop-xnu-i386"
    i386.write_bytes(xnu_i386_macho())
    elf64, macho64, why64 = arm64_pair(out)
    missing = lambda why: ["false", why]
    runner = lambda *args: [str(xnurun), *map(str, args)] if xnurun else missing("no xnurun")
    rows = [
        ("static Linux ELF under qemu-x86_64", ["qemu-x86_64", str(elf)], None),
        ("x86_64 Mach-O, `xnurun --cpu emulated`", runner("--cpu", "emulated", macho), 0),
        ("i386 Mach-O, `xnurun --cpu real` (AMD's default)", runner("--cpu", "real", i386), None),
        ("i386 Mach-O, `xnurun --cpu emulated` (Intel's default)", runner("--cpu", "emulated", i386), None),
        ("static Linux aarch64 ELF under qemu-aarch64", ["qemu-aarch64", str(elf64)] if elf64 else missing(why64), None),
        ("arm64 Mach-O, `xnurun` (the emulated CPU)", runner(macho64) if macho64 else missing(why64), 4),
    ]
    best = fastest_seconds([argv for _, argv, _ in rows])
    rate = lambda t: f"{2 * ITERATIONS / t / 1e6:,.0f} M"
    lines = ["", f"The emulated CPU and the i386 image, same loop (2 instructions an iteration), the fastest of {ROUNDS} "
             "runs, each round running every program once in a new random order (bench/native_loop.py, `fastest_seconds`, says why):",
             "", "| program | time | guest instructions/s | × qemu-user |", "|---|--:|--:|--:|"]
    verdicts = []
    for i, (name, argv, against) in enumerate(rows):
        t, why = best[i]
        if argv[0] == "false":
            t, why = None, argv[1]
        if t is None:
            lines.append(f"| {name} | n/a: {why} | | |")
            continue
        base = best[against][0] if against is not None else None
        ratio = "1.00×" if name.startswith("static") else (f"{t / base:.2f}×" if base else "")
        lines.append(f"| {name} | {t:.3f} s | {rate(t)} | {ratio} |")
        if against is not None and base:
            arch = "x86_64" if against == 0 else "arm64"
            verdicts.append(f"- emulated {arch} ≤ 1.1× qemu-user: {'PASS' if t / base <= 1.1 else 'FAIL'} ({t / base:.2f}×)")
        if "i386" in name:
            cpu = "real" if "real" in name else "emulated"
            verdicts.append(f"- i386 on the {cpu} CPU ≥ 10^8 guest instructions/s: {'PASS' if 2 * ITERATIONS / t >= 1e8 else 'FAIL'} ({rate(t)})")
    return lines + [""] + verdicts
