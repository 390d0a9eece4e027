"""The memory figures for xnurun: two images whose guests touch almost
nothing but whose segments are huge, run on each CPU, with the peak
resident set of xnurun and the guest it reaped (wait4's rusage). XNU maps
file bytes lazily and zero-fill on first write; the goal is the same,
under 100 MB for each. Used by bench.py; prints nothing itself."""

import os
import struct
import subprocess
from pathlib import Path

LIMIT_MB = 100
EXIT1 = b"\xbf\x01\x00\x00\x00\xb8\x01\x00\x00\x02\x0f\x05"  # exit(1)


def macho64(segments, code, sp=0, head=0x2000):
    """A static x86_64 image: __PAGEZERO, __TEXT over the first `head`
    bytes with `code` at its last page, the given extra segments
    (name, vmaddr, vmsize, fileoff, filesize, prot), and LC_UNIXTHREAD."""
    text = 0x1_0000_0000
    entry = text + head - 0x1000
    seg = lambda name, vmaddr, vmsize, fileoff, filesize, prot: struct.pack(
        "<II16sQQQQIIII", 0x19, 72, name, vmaddr, vmsize, fileoff, filesize, prot, prot, 0, 0)
    state = [0] * 21
    state[7], state[16] = sp, entry                   # rsp, rip
    cmds = seg(b"__PAGEZERO", 0, text, 0, 0, 0) + seg(b"__TEXT", text, head, 0, head, 5)
    cmds += b"".join(seg(*s) for s in segments)
    cmds += struct.pack("<IIII", 5, 184, 4, 42) + struct.pack("<21Q", *state)
    header = struct.pack("<IIIIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 3 + len(segments), len(cmds), 1, 0)
    image = bytearray(header + cmds)
    assert len(image) <= head - 0x1000, "load commands overlap the code"
    image += bytes(head - 0x1000 - len(image)) + code
    image += bytes(head - len(image))
    return bytes(image)


def images(out: Path):
    """The two images: 200 segments over one 32 MiB of the file, and a
    stack pointer 64 GiB into a zero-fill segment."""
    mib32, head = 32 << 20, 0x5000
    same = [(b"__SAME", 0x2_0000_0000 + i * mib32, mib32, head, mib32, 1) for i in range(200)]
    a = out / "mem-200-segments"
    a.write_bytes(macho64(same, EXIT1, head=head))
    with open(a, "r+b") as f:                          # 32 MiB of file, mostly a hole
        f.seek(head + mib32 - 1)
        f.write(b"x")
    gib64 = 64 << 30
    b = out / "mem-64gib-stack"
    b.write_bytes(macho64([(b"__ZERO", 0x10_0000_0000, gib64 + 0x10000, 0, 0, 3)], EXIT1, sp=0x10_0000_0000 + gib64))
    return [("200 segments over the same 32 MiB of file", a), ("stack pointer 64 GiB into a zero-fill segment", b)]


def peak_kib(argv):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace").strip()
    p.stderr.close()
    return os.waitstatus_to_exitcode(status), ru.ru_maxrss, err


def measure(out: Path, xnurun):
    out.mkdir(parents=True, exist_ok=True)
    lines = ["", "Memory: peak resident set of `xnurun` and its guest (wait4's rusage), for guests that touch "
             "almost nothing of huge segments (bench/memory.py):", "",
             "| image | `--cpu real` | `--cpu emulated` |", "|---|--:|--:|"]
    verdicts = []
    for name, path in images(out):
        cells = []
        for cpu in ["real", "emulated"]:
            if not xnurun:
                cells.append("n/a")
                continue
            code, kib, err = peak_kib([str(xnurun), "--cpu", cpu, str(path)])
            if code != 1:
                cells.append(f"n/a: exit {code}: {err[:80]}")
                continue
            cells.append(f"{kib / 1024:.1f} MB")
            verdicts.append(f"- {name}, {cpu} CPU, under {LIMIT_MB} MB: {'PASS' if kib < LIMIT_MB * 1024 else 'FAIL'} ({kib / 1024:.1f} MB)")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return lines + [""] + verdicts
