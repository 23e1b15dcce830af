"""The sandbox's limits hold against the attacks that went around them.

Each test runs the attack through the real sandbox (the bubblewrap command line every kernel
and every probe gets, :func:`losslab.grading.sandbox.command`) and checks its effect from the
host: memory the host kernel gives out (``Shmem`` in ``/proc/meminfo``), files on the host, a
user namespace and a mount inside, the files of each tmpfs, the kernel's socket folder, and the
time the judge spends on a forged result frame. The red-team batch (``test_red_team.py``) runs
the same attacks from a notebook cell, as root and as an ordinary user.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from assignment_helpers import ROOT

from losslab.grading import sandbox
from losslab.grading.judge import well_formed

GIB = 1 << 30


def _sandboxed(code: str, limits: sandbox.Limits, **kwargs) -> subprocess.Popen:
    launch = sandbox.command([sys.executable, "-c", code], limits=limits)
    return subprocess.Popen(launch.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=sandbox.preexec(limits), cwd="/", **kwargs)


def _finish(process: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def _host_shmem() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem line in /proc/meminfo")


MEMORY_HOG = r'''
import ctypes, mmap, os, sys, time
chunk = b"\1" * (64 << 20)

def report(name, done, error=None):
    print(name, done >> 20, "MiB", "refused: " + str(error) if error else "all", flush=True)

# 3 GiB in memfd files (16 of 192 MiB, each under the file-size limit), written, never mapped.
done, keep = 0, []
try:
    for _ in range(16):
        fd = os.memfd_create("hog")
        keep.append(fd)
        for _ in range(3):
            done += os.write(fd, chunk)
    report("MEMFD", done)
except OSError as error:
    report("MEMFD", done, error)
# 3 GiB of System V shared memory, attached, filled and detached a GiB at a time.
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
done = 0
for _ in range(3):
    ident = libc.shmget(0, 1 << 30, 0o1600)
    if ident < 0:
        report("SYSV", done, os.strerror(ctypes.get_errno()))
        break
    address = libc.shmat(ident, None, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        report("SYSV", done, os.strerror(ctypes.get_errno()))
        break
    ctypes.memset(address, 1, 1 << 30)
    libc.shmdt(ctypes.c_void_p(address))
    done += 1 << 30
else:
    report("SYSV", done)
# 3 GiB of shared anonymous memory.
try:
    shared = mmap.mmap(-1, 3 << 30, flags=mmap.MAP_SHARED)
    for offset in range(0, 3 << 30, 1 << 20):
        shared[offset] = 1
    report("SHARED", 3 << 30)
except (OSError, ValueError, MemoryError) as error:
    report("SHARED", 0, error)
print("HOLDING", flush=True)
time.sleep(30)
'''


def test_memory_outside_the_rlimits_is_refused_and_the_host_gives_none():
    """memfd files, System V segments and shared mappings: none gets past the 2 GiB limit,
    and the host's shared memory does not rise by them while the sandbox holds them."""
    before = _host_shmem()
    process = _sandboxed(MEMORY_HOG, sandbox.Limits(memory_mb=2048))
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.strip())
            if line.startswith("HOLDING"):
                break
        held = _host_shmem() - before
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    report = {line.split()[0]: line for line in lines}
    assert set(report) >= {"MEMFD", "SYSV", "SHARED", "HOLDING"}, lines
    for name in ("MEMFD", "SYSV", "SHARED"):
        assert "refused" in report[name], report[name]
        assert int(report[name].split()[1]) < 2048, report[name]
    assert held < GIB, f"the host's shared memory rose by {held >> 20} MiB"


NAMESPACE_ESCAPE = r'''
import ctypes, os, subprocess
run = subprocess.run(["unshare", "-Urm", "sh", "-c",
                      "mount -t tmpfs -o size=8g none /sandbox && echo MOUNTED"],
                     capture_output=True, text=True)
print("UNSHARE", run.returncode, run.stdout.strip(), run.stderr.strip()[:200])
libc = ctypes.CDLL(None, use_errno=True)
print("USERNS", libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))
print("MOUNT", libc.mount(b"none", b"/sandbox", b"tmpfs", 0, b"size=8g"),
      os.strerror(ctypes.get_errno()))
size = os.statvfs("/sandbox")
print("SANDBOX-MIB", size.f_blocks * size.f_frsize >> 20)
try:
    os.mkdir("/rt-root-folder")
    print("ROOTFS writable")
except OSError as error:
    print("ROOTFS", error.errno)
'''


def test_no_user_namespace_no_mount_and_a_read_only_root_inside_the_sandbox():
    process = _sandboxed(NAMESPACE_ESCAPE, sandbox.Limits())
    out, err = _finish(process)
    report = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert set(report) == {"UNSHARE", "USERNS", "MOUNT", "SANDBOX-MIB", "ROOTFS"}, out + err
    assert report["UNSHARE"][0] != "0" and "MOUNTED" not in out, report["UNSHARE"]
    assert report["USERNS"][0] == "-1", report["USERNS"]
    assert report["MOUNT"][0] == "-1", report["MOUNT"]
    assert int(report["SANDBOX-MIB"][0]) <= 256
    assert report["ROOTFS"] == ["30"], report["ROOTFS"]  # EROFS: the root tmpfs is read-only


FILE_FLOOD = r'''
import os
for folder in ("/tmp", "/dev/shm", "/sandbox"):
    made = 0
    try:
        for made in range(60000):
            os.close(os.open(f"{folder}/f{made}", os.O_CREAT | os.O_WRONLY, 0o600))
        made = 60000
        print("FILES", folder, made, "all")
    except OSError as error:
        print("FILES", folder, made, error.errno)
'''


def test_every_tmpfs_bounds_its_files():
    """Empty files pin kernel memory no byte limit counts: each tmpfs takes a bounded number."""
    limits = sandbox.Limits()
    process = _sandboxed(FILE_FLOOD, limits)
    out, err = _finish(process, timeout=300)
    counts = {line.split()[1]: line.split()[2:] for line in out.splitlines()
              if line.startswith("FILES")}
    assert set(counts) == {"/tmp", "/dev/shm", "/sandbox"}, out + err
    for folder, (made, how) in counts.items():
        assert how == "28" and int(made) < limits.tmp_files, (folder, made, how)  # ENOSPC


def _kernel_writes(code: str, kill: bool = False) -> dict:
    """Start a grading kernel, run ``code`` in it, and return what the host saw."""
    from losslab.grading.kernel import LimitedKernelManager

    async def main():
        manager = LimitedKernelManager(kernel_name="python3")
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        seen: dict = {"host_folder": manager._sockets, "output": ""}
        try:
            await client.wait_for_ready(timeout=120)
            msg_id = client.execute(code)
            while True:
                message = await client.get_iopub_msg(timeout=120)
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "stream":
                    seen["output"] += message["content"]["text"]
                if (message["msg_type"] == "status"
                        and message["content"]["execution_state"] == "idle"):
                    break
            seen["during"] = sorted(os.listdir(manager._sockets))
            seen["during_bytes"] = sum(path.stat().st_size
                                       for path in Path(manager._sockets).rglob("*"))
            if kill:
                # What a worker killed at its time limit leaves: the sandbox dies with bwrap.
                os.killpg(manager.provisioner.process.pid, signal.SIGKILL)
                manager.provisioner.process.wait()
                seen["after_kill"] = sorted(os.listdir(manager._sockets))
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
        seen["after"] = os.path.exists(manager._sockets)
        return seen

    return asyncio.run(main())


KERNEL_FILLS_ITS_FOLDER = r'''
import os
written = 0
for target in ("/run/kernel", os.path.dirname(CONNECTION_FILE)):
    for index in range(4):
        try:
            with open(f"{target}/fill{index}", "wb") as handle:
                for _ in range(200):
                    handle.write(b"\1" * (1 << 20))
                    written += 1 << 20
        except OSError as error:
            print("STOPPED", target, type(error).__name__)
            break
print("WRITTEN-MIB", written >> 20)
try:
    open(CONNECTION_FILE, "a").write("x")
    print("CONNECTION-FILE-WRITABLE")
except OSError as error:
    print("CONNECTION-FILE-READ-ONLY", type(error).__name__)
'''


@pytest.mark.parametrize("kill", [False, True], ids=["shutdown", "killed"])
def test_the_kernels_socket_folder_is_a_bounded_tmpfs_that_goes_with_the_sandbox(kill):
    # The kernel learns the connection file's path from its own command line.
    code = ("import sys\nCONNECTION_FILE = sys.argv[sys.argv.index('-f') + 1]\n"
            + KERNEL_FILLS_ITS_FOLDER)
    seen = _kernel_writes(code, kill=kill)
    out = seen["output"]
    assert "CONNECTION-FILE-READ-ONLY" in out, out
    written = int(out.split("WRITTEN-MIB")[1].split()[0])
    assert written <= 256 + 4, out  # the 256 MiB tmpfs, whatever the kernel tries
    # On the host, the folder holds the connection file the grader wrote, and nothing else.
    assert seen["during"] == ["kernel.json"], seen
    assert seen["during_bytes"] < 4096, seen
    if kill:
        assert seen["after_kill"] == ["kernel.json"], seen
    assert seen["after"] is False


def _nested(levels: int, width: int = 1000) -> dict:
    value: dict = {str(i): 0 for i in range(width)}
    for _ in range(levels - 1):
        value = {str(i): value for i in range(width)}
    return value


def test_well_formed_is_linear_in_the_frame_even_with_shared_references():
    """About 120 kB on the wire that look like 1000**8 leaves: refused at once."""
    import io

    import torch

    record = _nested(8)
    buffer = io.BytesIO()
    torch.save(record, buffer)
    assert len(buffer.getvalue()) < 256 * 1024  # far below the channel's 64 MiB cap
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    start = time.monotonic()
    assert well_formed(loaded) is False
    assert time.monotonic() - start < 1.0
    # An honest record of the same breadth without sharing is still read.
    assert well_formed({str(i): {"kind": "python", "value": i} for i in range(1000)})


FORGED_FRAMES = r'''
import io, os, sys, torch
fd = int(sys.argv[-1])

def send(message):
    buffer = io.BytesIO()
    torch.save(message, buffer)
    data = buffer.getvalue()
    os.write(fd, len(data).to_bytes(8, "big") + data)

value = {str(i): 0 for i in range(1000)}
for _ in range(7):
    value = {str(i): value for i in range(1000)}
send({"step": 1})
send({"result": 1, "verdicts": {"stable_bce.basic": value}})
'''

JUDGE_FORGED = f'''
import sys, time
from losslab.grading.judge import Limits, judge_notebook
cells = [{{"kind": "code", "source": {FORGED_FRAMES!r}}},
         {{"kind": "check", "grade_id": "t1", "checks": ["stable_bce.basic"]}}]
start = time.monotonic()
verdicts = judge_notebook("stable_bce", cells, limits=Limits(step_seconds=10), seed=1,
                          device="cpu")
print("VERDICT", verdicts["t1"].passed, round(time.monotonic() - start, 1))
print("MESSAGE", verdicts["t1"].messages)
'''


def test_a_forged_frame_of_shared_references_does_not_stall_the_judge():
    """Through the real sandbox: student code writes the frame into the result pipe; the
    grader's process judges it (a failed check) within its own time, not 1000**8 steps."""
    run = subprocess.run([sys.executable, "-c", JUDGE_FORGED], cwd=ROOT, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    verdict = next(line for line in run.stdout.splitlines() if line.startswith("VERDICT"))
    _, passed, seconds = verdict.split()
    assert passed == "False"
    assert float(seconds) < 120, verdict
    assert "no well-formed result" in run.stdout


def test_without_libseccomp_grading_stops_before_any_student_code(tmp_path):
    """Fail closed: no seccomp filter, no grading (exit code 3, saying why)."""
    from assignment_helpers import grading_env, student_notebook, write_submission

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "pyseccomp.py").write_text(
        'raise OSError("libseccomp.so.2: cannot open shared object file")\n')
    subs = tmp_path / "subs"
    write_submission(subs, "alice", "stable_bce", student_notebook("stable_bce", answers={}))
    env = grading_env()
    env["PYTHONPATH"] = os.pathsep.join([str(fake), str(ROOT)])
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                          str(subs), "--out", str(tmp_path / "c")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
    assert "seccomp filter could not be built" in run.stderr
    assert "libseccomp" in run.stderr
    assert not (tmp_path / "c" / "gradebook.db").exists()
