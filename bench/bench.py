"""Builds the hellos, measures them, prints the table: the body of bench/run.

Every cell is either measured in this run or `n/a` with a footnote giving the
reason. The one figure not measured here, origin's `tiny` size when its
example cannot be built, is printed as a reported figure, outside the table.
Run through bench/run, which first installs the tools this needs.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"  # everything this script builds goes here
SPAWNS = int(os.environ.get("BENCH_SPAWNS", "1000"))


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(argv, stderr=subprocess.STDOUT, **kw):
    """Runs argv; returns (ok, output), stderr merged into the output unless
    redirected elsewhere. Never raises for a failure."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, errors="replace", **kw)
    except OSError as e:
        return False, str(e)
    return p.returncode == 0, p.stdout


def last_error(output):
    """The line of a failed build's output that best says why."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error")]
    return (errors or lines or ["no output"])[0][:160]


class Notes:
    """Footnotes: one number per distinct reason, in order of first use."""

    def __init__(self):
        self.reasons = []

    def na(self, reason):
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"n/a [^{self.reasons.index(reason) + 1}]"


NOTES = Notes()


@dataclass
class Row:
    name: str
    file: Path | None  # the file whose size is reported; None: not built
    why_missing: str = ""  # set when file is None
    xnu: bool = False  # a Mach-O image: runs only under xnurun
    qemu: bool = False  # an aarch64 ELF on another host: runs under qemu-aarch64
    runner: Path | None = None  # xnurun, for xnu rows
    why_no_runner: str = ""  # set when an xnu row has no runner
    prints: bool = True  # False: writes nothing, so /dev/full tells nothing

    def argv(self, *runner_flags):
        """How to run it: the file itself, or `xnurun [FLAGS] IMAGE`."""
        if self.xnu:
            return [str(self.runner), *runner_flags, str(self.file)]
        if self.qemu:
            return [shutil.which("qemu-aarch64") or "qemu-aarch64", *runner_flags, str(self.file)]
        return [str(self.file)]

    def runnable(self):
        """None if it can be run, else why not."""
        if self.file is None:
            return self.why_missing
        if self.xnu and self.runner is None:
            return self.why_no_runner
        if self.qemu and not shutil.which("qemu-aarch64"):
            return "qemu-aarch64 is not installed (apt-get install qemu-user; .ci/setup does)"
        return None


# ---------------------------------------------------------------- building

# The host's machine, as the kernel names it: on aarch64 the aarch64 ELF
# runs natively and is measured like the x86 ones on x86.
NATIVE_AARCH64 = os.uname().machine in ("aarch64", "arm64")


def cargo_hello(target):
    """Builds one of the project's hellos exactly as the README does."""
    argv = ["cargo", "build", "--release"] + (["--target", target] if target else [])
    ok, out = run(argv, cwd=ROOT)
    path = ROOT / "target" / (target or "") / "release" / "hello"
    if not ok:
        return None, f"`{' '.join(argv)}` failed: {last_error(out)}"
    return path, ""


def cc(compiler, flags, name):
    """Builds bench/hello.c; stripped, like every reference binary here."""
    if not shutil.which(compiler):
        return None, f"`{compiler}` is not installed (bench/run installs it with apt-get; that failed)"
    out_file = OUT / name
    ok, out = run([compiler, "-O2", "-s", *flags, "-o", str(out_file), str(ROOT / "bench/hello.c")])
    return (out_file, "") if ok else (None, f"`{compiler} {' '.join(flags)}` failed: {last_error(out)}")


def std_hello():
    ok, out = run(["cargo", "build", "--release", "--manifest-path", str(ROOT / "bench/std-hello/Cargo.toml"),
                   "--target-dir", str(OUT)])
    if not ok:
        return None, f"cargo build of bench/std-hello failed: {last_error(out)}"
    return OUT / "release/std-hello", ""


def build_xnurun():
    """The project's runner, built as the cargo runner builds it
    (.cargo/build-xnurun: static), so that timing it runs the binary and not
    the .cargo/xnurun wrapper (which calls cargo every time)."""
    ok, out = run([str(ROOT / ".cargo/build-xnurun")], stderr=subprocess.PIPE, cwd=ROOT)
    if not ok:
        return None, f"tools/xnurun does not build: {last_error(out)}"
    path = Path(out.strip().splitlines()[-1])
    # Until the runner is written, its main() is empty: it "runs" an image
    # by doing nothing and exiting 0. Measuring that would be made up.
    ok, out = run([str(path), "--help"])
    if not ok or not out.strip():
        return None, "tools/xnurun is not written yet (its `--help` prints nothing)"
    return path, ""


def origin_tiny():
    """origin's `tiny` example, only if the crates.io package ships it.

    Returns (row or None, note). The example lives in the git repository's
    example-crates/tiny; we look for it in the published package (cargo
    fetches that into ~/.cargo/registry) and build it only if it is there.
    """
    probe = OUT / "origin-probe"
    (probe / "src").mkdir(parents=True, exist_ok=True)
    (probe / "Cargo.toml").write_text(
        '[package]\nname = "origin-probe"\nversion = "0.0.0"\nedition = "2021"\n\n'
        '[dependencies]\norigin = { version = "0.26", default-features = false }\n\n[workspace]\n')
    (probe / "src/main.rs").write_text("fn main() {}\n")
    ok, out = run(["cargo", "metadata", "--format-version", "1", "--manifest-path", str(probe / "Cargo.toml")],
                  stderr=subprocess.DEVNULL)
    if not ok:
        return None, "origin `tiny`: not built: `cargo metadata` could not fetch the `origin` crate."
    pkg = next(p for p in json.loads(out)["packages"] if p["name"] == "origin")
    src = Path(pkg["manifest_path"]).parent
    tiny = src / "example-crates/tiny"
    if not tiny.is_dir():
        return None, (
            f"origin `tiny`: not built. The crates.io package origin-{pkg['version']} does not ship its "
            "examples (no example-crates/ in it; they live only in the git repository), so it cannot be "
            "built here without fetching the repository. For reference only, not measured: its README "
            "reports 408 bytes on x86_64, after `objcopy -R .eh_frame -R .comment`, built with the "
            "nightly-only `-Z trap-unreachable=no`; it makes one system call (exit_group(42)) and prints nothing.")
    # Shipped: build a copy (never inside the registry), as its README says.
    copy = OUT / "origin-src"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(src, copy)
    ok, out = run(["cargo", "+nightly", "build", "--release", "--target-dir", str(OUT / "origin-tiny")],
                  cwd=copy / "example-crates/tiny")
    if not ok:
        return None, f"origin `tiny`: shipped in the package, but its build failed: {last_error(out)}"
    small = OUT / "origin-tiny-stripped"
    ok, out = run(["objcopy", "-R", ".eh_frame", "-R", ".comment", str(OUT / "origin-tiny/release/tiny"), str(small)])
    if not ok:
        return None, f"origin `tiny`: built, but objcopy failed: {last_error(out)}"
    return Row("origin `tiny` (prints nothing, exits 42)", small, prints=False), ""


# ---------------------------------------------------------------- measuring

def size(row):
    return str(row.file.stat().st_size)


# xnurun --trace prints register lines (`RIP 0x…`, `EIP 0x…`) and one
# strace-like line per call: `write(1, "Hello, world!\n", 14) = 14`, `exit(0)`.
XNU_CALL = re.compile(r"^[a-z_][a-z0-9_]*\(.*\)(\s*=.*)?$")


# qemu-aarch64 -strace prints one line per guest call, after the PID:
# `1234 write(1,0x4000f4,14) = 14`, `1234 exit(0)`.
QEMU_CALL = re.compile(r"^\d+ [a-z_][a-z0-9_]*\(.*\)( = .*)?$")


def syscalls(row):
    if row.qemu:
        p = subprocess.run(row.argv("-strace"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, errors="replace")
        calls = [l for l in p.stderr.splitlines() if QEMU_CALL.match(l)]
        return str(len(calls)) if calls else NOTES.na("`qemu-aarch64 -strace` printed no system-call lines")
    if row.xnu:
        p = subprocess.run(row.argv("--trace"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, errors="replace")
        calls = [l for l in p.stderr.splitlines() if XNU_CALL.match(l)]
        return str(len(calls)) if calls else NOTES.na("`xnurun --trace` printed no system-call lines")
    if not shutil.which("strace"):
        return NOTES.na("strace is not installed")
    with tempfile.NamedTemporaryFile("r") as log:
        ok, out = run(["strace", "-f", "-o", log.name, *row.argv()])
        lines = log.read().splitlines()
    # Everything after the program's execve line, minus strace's own
    # annotations (+++ exit +++, --- signal ---) and the second half of
    # calls that -f split in two (<... resumed>).
    start = next((i for i, l in enumerate(lines) if "execve(" in l), None)
    if start is None:
        return NOTES.na(f"strace showed no execve: {last_error(out)}")
    calls = [l for l in lines[start + 1:]
             if not re.match(r"^(\d+\s+)?(\+\+\+|---|\[ )", l) and "resumed>" not in l]
    return str(len(calls))


def instructions(row):
    if row.xnu:
        return xnu_steps(row)
    if row.qemu:
        return qemu_steps(row)
    if PERF_WORKS:
        return perf_instructions(row.argv()) or NOTES.na("`perf stat -e instructions:u` failed")
    if not shutil.which("valgrind"):
        return NOTES.na("perf cannot count instructions:u here, and valgrind is not installed")
    # Lackey counts every guest instruction executed: 19 for the no_std
    # hellos, matching a count by hand of their _start.
    ok, out = run(["valgrind", "--tool=lackey", *row.argv()])
    m = re.search(r"guest instrs:\s+([\d,]+)", out)
    return m.group(1).replace(",", "") if m else NOTES.na(f"valgrind failed: {last_error(out)}")


def perf_instructions(argv):
    """`perf stat -x,` writes CSV on stderr; the count is the first field
    (`<not supported>` where the CPU or the VM exposes no counter)."""
    p = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "--", *argv], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    line = next((l for l in p.stderr.splitlines() if "instructions" in l), "")
    value = line.split(",")[0]
    return value if value.isdigit() else None


# perf counts on the real CPU, where the CPU (or the hypervisor) exposes a
# counter; where it does not, instructions() falls back to valgrind.
PERF_WORKS = bool(shutil.which("perf")) and perf_instructions(["true"]) is not None


def qemu_steps(row):
    """Valgrind cannot run aarch64 code on this host, so ask qemu: with
    `-singlestep` every guest instruction is a translation block of its
    own, and `-d exec,nochain` logs one `Trace` line each time a block
    runs, so the lines count the instructions executed."""
    with tempfile.NamedTemporaryFile("r") as log:
        p = subprocess.run(row.argv("-singlestep", "-d", "exec,nochain", "-D", log.name), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        n = sum(1 for l in log if l.startswith("Trace "))
    if p.returncode != 0:
        return NOTES.na(f"`qemu-aarch64 -singlestep -d exec,nochain` exited {p.returncode}")
    return str(n) if n else NOTES.na("`qemu-aarch64 -d exec,nochain` logged no translation blocks")


def xnu_steps(row):
    """Valgrind cannot load Mach-O, so ask the runner, which single-steps the
    image and stops it with status 124 after `--max-steps N` instructions:
    the smallest N that lets the image reach its exit is its count."""
    def status(n):
        return subprocess.run(row.argv("--max-steps", str(n)), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    hi = 1
    while status(hi) == 124:  # double until it finishes...
        hi *= 2
        if hi > 1 << 30:
            return NOTES.na("`xnurun --max-steps` never let the image finish")
    lo = hi // 2  # ...then bisect: lo is too few (or 0), hi is enough
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if status(mid) == 124 else (lo, mid)
    code = status(hi)
    return str(hi) if code == 0 else NOTES.na(f"`xnurun --max-steps {hi}` exited {code}, not 0")


def dev_full(row):
    if not row.prints:
        return NOTES.na("writes nothing, so /dev/full cannot make it fail")
    with open("/dev/full", "w") as full:
        try:
            code = subprocess.run(row.argv(), stdout=full, stderr=subprocess.DEVNULL).returncode
        except OSError as e:
            return NOTES.na(f"could not run: {e}")
    if code < 0:
        return f"yes (signal {-code})"
    return f"yes (exit {code})" if code else "no (exit 0)"


def times(rows):
    """Median exec-to-exit ns per row, all in one spawntime run."""
    if not rows:
        return {}
    timer = OUT / "spawntime"
    ok, out = run(["cc", "-O2", "-o", str(timer), str(ROOT / "bench/spawntime.c")])
    if not ok:
        return {id(r): NOTES.na(f"could not build bench/spawntime.c: {last_error(out)}") for r in rows}
    argv = [str(timer), str(SPAWNS)]
    for r in rows:
        argv += [*r.argv(), "--"]
    say(f"timing {len(rows)} programs, {SPAWNS} spawns each")
    ok, out = run(argv[:-1])
    results = out.split("\n")
    return {id(r): results[i].strip() for i, r in enumerate(rows)} if ok else \
        {id(r): NOTES.na(f"spawntime failed: {last_error(out)}") for r in rows}


def time_cells(rows, baseline):
    runnable = [r for r in rows if r.runnable() is None]
    medians = times(runnable)
    base = medians.get(id(baseline), "")
    cells = {}
    for r in rows:
        m = medians.get(id(r))
        if m is None:
            cells[id(r)] = NOTES.na(r.runnable())
        elif m.startswith("fail"):
            cells[id(r)] = NOTES.na(f"a timed run did not exit 0 ({m.removeprefix('fail ')})")
        elif m.startswith("n/a"):
            cells[id(r)] = m
        elif not base.isdigit():
            cells[id(r)] = f"{NOTES.na('the C glibc dynamic baseline could not be timed')} ({int(m) / 1000:.0f} µs)"
        else:
            cells[id(r)] = f"{int(m) / int(base):.2f}× ({int(m) / 1000:.0f} µs)"
    return cells


# ---------------------------------------------------------------- the report

def cell(row, measure):
    """One measured cell, or n/a if the row cannot be run (size needs only the file)."""
    why = row.runnable() if measure is not size else row.why_missing if row.file is None else None
    return NOTES.na(why) if why else measure(row)


def report(rows, table, tiny_note):
    instructions_how = (
        "`perf stat -e instructions:u`" if PERF_WORKS else
        "`valgrind --tool=lackey` (guest instructions; perf cannot count `instructions:u` on this machine, "
        "and valgrind's simulated CPU can steer glibc's ifunc choices, so the libc rows are close, not exact)")
    md = ["| hello | size (bytes) | system calls after exec | user-mode instructions "
          "| exec-to-exit time (× C glibc dynamic; median) | exits non-zero on /dev/full |",
          "|---|--:|--:|--:|--:|---|"]
    md += [f"| {r.name} | " + " | ".join(table[id(r)]) + " |" for r in rows]
    md += ["",
           f"- Time: {SPAWNS} spawns of each program, in rounds of one spawn each, in a new random order every round (a run pays for the caches its predecessor left), posix_spawn to waitpid with stdout on "
           "/dev/null (bench/spawntime.c). **The Mach-O rows time `xnurun IMAGE`**: the runner's own start-up "
           "and the guest's set-up (a fresh process, its mappings, the seccomp filter) dominate, not the image. "
           + ("" if NATIVE_AARCH64 else
              "**The Linux aarch64 row times `qemu-aarch64 FILE`**: qemu-user's start-up and translation "
              "dominate, not the 17 instructions."),
           "- System calls: Linux, `strace -f`, the lines after the execve line"
           + ("" if NATIVE_AARCH64 else "; Linux aarch64, the guest's calls as `qemu-aarch64 -strace` prints them")
           + "; Mach-O, the call lines of `xnurun --trace`.",
           f"- Instructions: Linux, {instructions_how}, dynamic loader included"
           + ("" if NATIVE_AARCH64 else "; Linux aarch64, the `Trace` lines of `qemu-aarch64 -singlestep "
              "-d exec,nochain` (one per guest instruction executed)")
           + "; Mach-O, the runner's own count: the smallest `xnurun --max-steps N` that lets the image reach its exit.",
           "- C hellos: bench/hello.c, the plain `printf` hello, whose exit status ignores write errors; "
           "built `-O2 -s`. Rust std hello: bench/std-hello, `println!`, which panics on a write error.",
           f"- Reference: {tiny_note}" if tiny_note else "- Reference: origin `tiny` is measured in the table.",
           "", "Size promises (a report, not a test):", ""]
    for r, op, limit in [(rows[0], "≤", 448), (rows[1], "≤", 360), (rows[2], "≤", 512),
                         (rows[3], "=", 4096), (rows[4], "=", 4096)]:
        got = r.file.stat().st_size if r.file else None
        verdict = "n/a (not built)" if got is None else \
            ("PASS" if (got <= limit if op == "≤" else got == limit) else "FAIL") + f" ({got} bytes)"
        md.append(f"- {r.name.split(' (')[0]} {op} {limit} bytes: {verdict}")
    md += [""] + [f"[^{i + 1}]: {reason}" for i, reason in enumerate(NOTES.reasons)]
    return "\n".join(md) + "\n"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    say("building")
    runner, why_no_runner = build_xnurun()
    rows = []
    aarch64 = "Linux aarch64 (this project)" + ("" if NATIVE_AARCH64 else ", under qemu-aarch64")
    for name, target, xnu in [("Linux x86_64 (this project)", "x86_64-unknown-linux-gnu", False),
                              ("Linux i386 (this project)", "i686-unknown-linux-gnu", False),
                              (aarch64, "aarch64-unknown-linux-gnu", False),
                              ("XNU x86_64 Mach-O (this project), under xnurun", "x86_64-apple-darwin", True),
                              ("XNU i386 Mach-O (this project), under xnurun", "i686-apple-darwin", True),
                              ("XNU arm64 Mach-O (this project), under xnurun's emulated CPU", "aarch64-apple-darwin", True)]:
        rows.append(Row(name, *cargo_hello(target), xnu=xnu, runner=runner, why_no_runner=why_no_runner,
                        qemu=target == "aarch64-unknown-linux-gnu" and not NATIVE_AARCH64))
    glibc_dyn = Row("C printf hello, glibc, dynamic", *cc("cc", [], "c-glibc-dynamic"))
    rows += [glibc_dyn,
             Row("C printf hello, glibc, static", *cc("cc", ["-static"], "c-glibc-static")),
             Row("C printf hello, musl, static", *cc("musl-gcc", ["-static"], "c-musl-static")),
             Row("Rust std hello (release, stripped)", *std_hello())]
    tiny, tiny_note = origin_tiny()
    if tiny:
        rows.append(tiny)

    say("measuring size, system calls, instructions, /dev/full")
    table = {id(r): [cell(r, f) for f in (size, syscalls, instructions)] for r in rows}
    for key, t in time_cells(rows, glibc_dyn).items():  # after the rest: a quiet machine
        table[key].append(t)
    for r in rows:
        table[id(r)].append(cell(r, dev_full))

    # The runner's own promise: `xnurun IMAGE` for hello no slower than the
    # dynamic glibc hello, spawn to exit.
    cell_x64 = table[id(rows[3])][3]
    ratio = re.match(r"([0-9.]+)×", cell_x64)
    verdict = "n/a" if not ratio else ("PASS" if float(ratio.group(1)) <= 1.0 else "FAIL") + f" ({cell_x64})"
    extra = f"\n- `xnurun` hello (XNU x86_64) no slower than the C glibc dynamic hello, spawn to exit: {verdict}\n"
    say("timing the native-speed loop")
    import native_loop
    text = report(rows, table, tiny_note) + extra + "\n".join(native_loop.measure(OUT / "loop", runner)) + "\n"
    say("measuring the runner's memory")
    import memory
    text += "\n".join(memory.measure(OUT / "memory", runner)) + "\n"
    say("timing machlink against input size")
    ok, out = run([str(ROOT / "bench/link_scaling")], stderr=subprocess.PIPE, cwd=ROOT)
    text += ("\nmachlink's link time against the number of functions, next to ld64.lld on the same objects (bench/link_scaling; "
             "it must grow about linearly: the last column stays flat):\n\n" + out if ok
             else f"\nbench/link_scaling failed: {last_error(out)}\n")
    text += (ROOT / "bench/history.md").read_text()
    print(text, end="")
    (ROOT / "bench/results.md").write_text(text)
    say("wrote bench/results.md")


if __name__ == "__main__":
    main()
