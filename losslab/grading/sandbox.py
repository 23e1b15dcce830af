"""Run student code inside bubblewrap: no network, no other processes, almost no files.

Every student kernel and every sandbox process is started through :func:`command`, which wraps
it in ``bwrap`` with new user, PID, IPC, UTS and network namespaces (only ``lo`` inside), all
capabilities dropped, ``--die-with-parent`` and ``--new-session``. Inside, the code runs as uid
65534 and sees a fresh tmpfs root holding only read-only binds of what Python needs (the system
libraries under ``/usr``, the interpreter, the library folders on ``sys.path``), whatever the
caller binds on top (the probe modules of one assignment, the job's inputs), and tmpfs folders
bounded in bytes and in files (``nr_inodes``) for ``/tmp``, ``/dev/shm``, the work folder and
any scratch folder the caller asks for (a kernel's sockets). The course's sources
(``solutions/``, the grader, the references), the gradebook and other submissions are not there.

A seccomp filter (:func:`seccomp_program`) then refuses what no limit would count: new user
namespaces (and so mounts), ``memfd_create``, System V shared memory and shared anonymous
mappings (memory outside RLIMIT_DATA, or inside RLIMIT_AS's slack).

The namespace is set up by bubblewrap itself (the same tool Flatpak uses); this module only
chooses its arguments. When it cannot be set up, :func:`require` stops the run with a message
that says why and how to fix it; grading without isolation needs the loudly named option
``--unsafe-no-isolation`` (``LOSSLAB_ISOLATION=none``).
"""

from __future__ import annotations

import errno
import functools
import glob
import os
import resource
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import bwrap_env, sandboxed_env
from .settings import (
    ADDRESS_SLACK_MB,
    REPO_ROOT,
    SANDBOX_ROOT_SECONDS,
    SELF_TEST_SECONDS,
    UNSAFE,
    Limits,
    isolation_mode,
)

SANDBOX_UID = 65534
# Where things appear inside the sandbox.
WORK = "/sandbox"
PROBES = "/opt/losslab/losslab_probes"
PROBES_PARENT = "/opt/losslab"
# A kernel's ZeroMQ sockets: a bounded tmpfs that goes away with the sandbox.
KERNEL_RUN = "/run/kernel"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow unprivileged "
    "user namespaces (sysctl kernel.unprivileged_userns_clone=1, and on Ubuntu 24.04 "
    "kernel.apparmor_restrict_unprivileged_userns=0; in Docker run with "
    "--security-opt seccomp=unconfined or a profile that allows clone(CLONE_NEWUSER))"
)


class IsolationUnavailable(RuntimeError):
    """bubblewrap cannot set up the sandbox here; the message says why and how to fix it."""


def mode() -> str:
    """``"bwrap"`` (the default) or ``"none"`` (unsafe, asked for by name)."""
    return UNSAFE if isolation_mode() == UNSAFE else "bwrap"


def describe_mode() -> str:
    """What the grading log records for each submission."""
    if mode() == UNSAFE:
        return "NONE (--unsafe-no-isolation: student code ran as the grading user)"
    if os.geteuid() == 0:
        return ("bubblewrap (new pid/ipc/net/mount namespaces; student code as a fresh "
                "unprivileged host uid, no capabilities)")
    return (f"bubblewrap (new user/pid/ipc/net/mount namespaces; uid {SANDBOX_UID} inside, "
            f"host uid {os.geteuid()}, no capabilities)")


def gpu_devices() -> list[str]:
    """The NVIDIA device nodes to bind so CUDA kernels run inside the sandbox."""
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/renderD*"))


def _inside_repo_sources(path: Path) -> bool:
    """A folder that would show course sources: the repository root or one above it, or a
    folder holding ``solutions/`` or the ``losslab`` package."""
    try:
        path = path.resolve()
    except OSError:
        return True
    if path == REPO_ROOT or path in REPO_ROOT.parents:
        return True
    # Inside the repository only a virtual environment (a .venv, with its pyvenv.cfg) is
    # bound; test folders and the rest never are.
    if REPO_ROOT in path.parents and not any(
            (folder / "pyvenv.cfg").is_file() for folder in (path, *path.parents)
            if REPO_ROOT in folder.parents):
        return True
    return (path / "solutions").exists() or (path / "losslab").exists()


@functools.cache
def library_folders() -> tuple[str, ...]:
    """Folders of the interpreter and its libraries, bound read-only at the same path."""
    candidates = [sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix,
                  str(Path(sys.executable).resolve().parent)]
    candidates += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                          "platlib")]
    candidates += [entry for entry in sys.path if entry]
    chosen: list[str] = []
    for entry in candidates:
        path = Path(entry)
        if not path.is_dir() or _inside_repo_sources(path):
            continue
        text = str(path.resolve()) if path.is_symlink() else str(path.absolute())
        if text.startswith(("/usr/", "/proc", "/dev", "/sys")) or text == "/usr":
            continue
        if any(text == other or text.startswith(other + "/") for other in chosen):
            continue
        chosen = [other for other in chosen if not other.startswith(text + "/")] + [text]
    return tuple(chosen)


def python_path() -> str:
    """``PYTHONPATH`` inside the sandbox: the library folders and the probe package's parent."""
    entries = [entry for entry in sys.path if entry and Path(entry).is_dir()
               and not _inside_repo_sources(Path(entry))]
    return os.pathsep.join([PROBES_PARENT, *entries])


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
                 "nsswitch.conf"):
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    # A passwd/group naming the sandbox's ids, so getpass and friends answer.
    return args


@dataclass
class Launch:
    """A bwrap command line, and the host ids the student's code will run as (``None``: as
    we do; a folder bound writable is handed to them)."""

    argv: list[str]
    ids: tuple[int, int] | None = None


def host_ids() -> tuple[int, int] | None:
    """When the grader is root, the unprivileged host (uid, gid) student code runs as: a fresh
    id per sandbox, owning nothing on the host. As an ordinary user: None."""
    if os.geteuid() != 0:
        return None
    number = 200_000 + secrets.randbelow(800_000)
    return number, number


def _parents(targets: list[str]) -> list[str]:
    """Folders to create (mode 0755) above the bind targets, so that an unprivileged user can
    walk down to them (bwrap would create them 0700 as root)."""
    made: set[str] = set()
    for target in targets:
        for parent in reversed(Path(target).parents):
            text = str(parent)
            if text not in ("/", "/usr", "/proc", "/dev", "/tmp") and text not in targets:
                made.add(text)
    return sorted(made, key=lambda text: (text.count("/"), text))


def command(
    argv: list[str],
    *,
    ro_binds: list[tuple[str, str]] = (),
    rw_binds: list[tuple[str, str]] = (),
    limits: Limits | None = None,
    env: dict | None = None,
    chdir: str = WORK,
    scratch: tuple[str, ...] = (),
) -> Launch:
    """The bwrap command line that runs ``argv`` isolated (see the module docstring).

    As an ordinary user, bwrap makes a user namespace (uid 0 there is us) that owns the
    sandbox's mounts; the first program bounds them and then moves into a nested user
    namespace of its own, as uid 65534 with no capabilities.
    As root, bwrap sets the namespaces up with root's rights (so it can bind a pyenv Python
    under /root) and the code then runs as a fresh unprivileged host uid (:func:`host_ids`):
    no capabilities, no_new_privs, an empty bounding set, and per-user limits that the kernel
    never applies to root (RLIMIT_NPROC).

    ``scratch`` lists more folders to mount as bounded tmpfs (writable by the sandbox, gone
    with it). The first program inside (:data:`_TRAMPOLINE`) bounds the files of every tmpfs,
    drops its last capabilities, installs the seccomp filter and only then runs ``argv``.
    """
    limits = limits or Limits()
    ids = host_ids()
    size = str(limits.tmp_mb * 1024 * 1024)
    program = seccomp_program()
    # Only what the first program needs (to bound the tmpfs files and, as root, to drop to
    # the unprivileged uid); it gives them all up before it runs anything else.
    keep = ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    if ids is None:
        # uid 0 of a new user namespace (the one that owns the sandbox's mounts, so the first
        # program can bound them); it then moves to uid 65534 in a namespace of its own.
        # (CAP_SETFCAP: the kernel lets a namespace map its parent's uid 0 only then.)
        args = [bwrap_path(), "--unshare-user", "--uid", "0", "--gid", "0", *keep,
                "--cap-add", "CAP_SETFCAP"]
    else:
        args = [bwrap_path(), *keep, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += [
        "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts",
        "--unshare-cgroup-try", "--die-with-parent", "--new-session",
        "--hostname", "sandbox", "--clearenv",
        *_system_binds(),
        "--proc", "/proc", "--dev", "/dev",
    ]
    for device in gpu_devices():
        args += ["--dev-bind", device, device]
    binds = [("--ro-bind", folder, folder) for folder in library_folders()]
    binds += [("--ro-bind", str(source), str(target)) for source, target in ro_binds]
    binds += [("--bind", str(source), str(target)) for source, target in rw_binds]
    # Bounded tmpfs first: binds below /tmp (a kernel's socket folder) go on top of it.
    args += ["--size", size, "--perms", "1777", "--tmpfs", "/tmp", "--size", size,
             "--perms", "1777", "--tmpfs", "/dev/shm"]
    for parent in _parents([target for _, _, target in binds] + [WORK]):
        args += ["--perms", "0755", "--dir", parent]
    args += ["--size", size, "--perms", "0777", "--tmpfs", WORK]
    for folder in scratch:
        args += ["--size", size, "--perms", "0777", "--tmpfs", folder]
    for option, source, target in binds:
        if option == "--bind" and ids is not None:
            os.chown(source, *ids)
        args += [option, source, target]
    # The root tmpfs holds only mount points; as an ordinary user the sandbox's uid owns it, so
    # it is made read-only (it has no size or file bound).
    args += ["--remount-ro", "/"]
    inside = {**sandboxed_env(WORK, python_path()), **(env or {})}
    for key, value in inside.items():
        args += ["--setenv", key, value]
    # The first program inside bounds the files of every tmpfs, drops to the unprivileged uid
    # (as root), sets RLIMIT_NPROC there (so it counts only the sandbox's own processes),
    # gives up every capability and installs the seccomp filter.
    uid = ids[0] if ids else -SANDBOX_UID
    mounts = ",".join(["/tmp", "/dev/shm", WORK, *scratch])
    args += ["--chdir", chdir, "--", sys.executable, "-I", "-S", "-c", _TRAMPOLINE,
             str(limits.processes), str(uid), str(limits.tmp_files), mounts, program.hex(),
             *argv]
    return Launch(args, ids)


# Runs inside the sandbox before anything else, with CAP_SYS_ADMIN and CAP_SETPCAP (and, as
# root, CAP_SETUID/CAP_SETGID) in the sandbox's namespaces only. Any failure ends it (exit 3)
# before the student's program starts.
_TRAMPOLINE = (
    "import ctypes, os, resource, sys\n"
    "n, uid, files, mounts, bpf = sys.argv[1:6]\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def fail(what):\n"
    "    reason = os.strerror(ctypes.get_errno())\n"
    "    os.write(2, f'sandbox setup failed: {what}: {reason}\\n'.encode())\n"
    "    os._exit(3)\n"
    "for path in mounts.split(','):\n"
    "    # MS_REMOUNT | MS_NOSUID | MS_NODEV: same tmpfs, at most `files` inodes.\n"
    "    if libc.mount(None, path.encode(), None, 32 | 2 | 4, f'nr_inodes={files}'.encode()):\n"
    "        fail('bounding the files of ' + path)\n"
    "if int(uid) < 0:\n"
    "    # As an ordinary user: uid -uid in a user namespace of its own, mapped to ours.\n"
    "    if libc.unshare(0x10000000):\n"
    "        fail('a user namespace for the sandbox uid')\n"
    "    for name, text in (('setgroups', 'deny'), ('uid_map', f'{-int(uid)} 0 1'),\n"
    "                       ('gid_map', f'{-int(uid)} 0 1')):\n"
    "        with open(f'/proc/self/{name}', 'w') as handle:\n"
    "            handle.write(text)\n"
    "    if os.getuid() != -int(uid) or os.geteuid() != -int(uid):\n"
    "        fail('moving to the sandbox uid')\n"
    "for cap in range(64):\n"
    "    libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP\n"
    "if libc.prctl(47, 4, 0, 0, 0):  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL\n"
    "    fail('clearing ambient capabilities')\n"
    "if int(uid) >= 0:\n"
    "    os.setgroups([]); os.setgid(int(uid)); os.setuid(int(uid))\n"
    "    if os.getuid() != int(uid) or os.geteuid() != int(uid):\n"
    "        fail('dropping to the unprivileged uid')\n"
    "resource.setrlimit(resource.RLIMIT_NPROC, (int(n), int(n)))\n"
    "# capset(version 3, this process): no effective, permitted or inheritable capability.\n"
    "header = (ctypes.c_uint32 * 2)(0x20080522, 0)\n"
    "if libc.capset(header, (ctypes.c_uint32 * 6)()):\n"
    "    fail('dropping the last capabilities')\n"
    "code = bytes.fromhex(bpf)\n"
    "class Program(ctypes.Structure):\n"
    "    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_char_p)]\n"
    "program = Program(len(code) // 8, code)\n"
    "if libc.prctl(38, 1, 0, 0, 0):  # PR_SET_NO_NEW_PRIVS\n"
    "    fail('no_new_privs')\n"
    "if libc.prctl(22, 2, ctypes.byref(program), 0, 0):  # PR_SET_SECCOMP, FILTER\n"
    "    fail('installing the seccomp filter')\n"
    "os.execvp(sys.argv[6], sys.argv[6:])\n"
)

def sandbox_root(bwrap_pid: int, timeout: float = SANDBOX_ROOT_SECONDS) -> str:
    """The sandbox's own root as the host sees it (``/proc/PID/root`` of the process bwrap
    starts inside it, which lives as long as the sandbox): the host reaches a socket in a
    sandbox's tmpfs through it, while nothing of the sandbox is on the host's disk."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children")
    while True:
        try:
            found = children.read_text().split()
        except OSError as error:
            raise IsolationUnavailable(f"the sandbox (bwrap pid {bwrap_pid}) ended before it "
                                       f"started: {error}") from error
        if found:
            return f"/proc/{int(found[0])}/root"
        if time.monotonic() > deadline:
            raise IsolationUnavailable(f"bwrap (pid {bwrap_pid}) started no sandbox within "
                                       f"{timeout:g} seconds")
        time.sleep(0.01)


CLONE_NEWUSER = 0x10000000
MAP_SHARED_ANONYMOUS = (0x01 | 0x20, 0x03 | 0x20)  # MAP_SHARED, MAP_SHARED_VALIDATE
# Not namespaced or not needed by Python and PyTorch, and refused by Docker's default profile.
REFUSED_SYSCALLS = ("memfd_create", "memfd_secret", "shmget", "keyctl", "add_key",
                    "request_key", "bpf", "userfaultfd", "perf_event_open", "io_uring_setup",
                    "io_uring_enter", "io_uring_register")


@functools.cache
def seccomp_program() -> bytes:
    """The seccomp filter of every sandboxed process, as the BPF program the kernel loads.

    Refused with EPERM: ``unshare`` and ``clone`` asking for a new user namespace (so no
    mount of its own either), ``memfd_create``, ``memfd_secret`` and ``shmget`` (memory no
    rlimit counts), ``mmap`` of shared anonymous memory (RLIMIT_DATA does not count it, and
    RLIMIT_AS leaves the slack torch needs), and the calls of :data:`REFUSED_SYSCALLS`;
    ``clone3``, whose flags a filter cannot read, answers ENOSYS so that the C library falls
    back to ``clone``. Shared memory stays possible in files of the bounded ``/dev/shm``.
    Syscalls of another architecture (32-bit x86 on x86-64) kill the process.
    The program is compiled by libseccomp (through ``pyseccomp``).
    """
    try:
        import pyseccomp as seccomp

        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        refuse = seccomp.ERRNO(errno.EPERM)
        user = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
        rules.add_rule(refuse, "unshare", user)
        rules.add_rule(refuse, "clone", user)
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        for name in REFUSED_SYSCALLS:
            rules.add_rule(refuse, name)
        for flags in MAP_SHARED_ANONYMOUS:
            rules.add_rule(refuse, "mmap", seccomp.Arg(3, seccomp.MASKED_EQ, 0x23, flags))
        with tempfile.TemporaryFile() as handle:
            rules.export_bpf(handle)
            handle.seek(0)
            program = handle.read()
    except Exception as error:  # noqa: BLE001 - no libseccomp, an unknown syscall, ...
        raise IsolationUnavailable(
            f"the sandbox's seccomp filter could not be built ({type(error).__name__}: "
            f"{error}); install libseccomp (Debian/Ubuntu: apt-get install libseccomp2) and "
            "the pinned pyseccomp (make venv)") from error
    if not program or len(program) % 8 or len(program) // 8 > 4096:
        raise IsolationUnavailable("the sandbox's seccomp filter came out malformed")
    return program


def preexec(limits: Limits):
    """Resource limits for the bwrap process and everything in the sandbox (set before exec).

    Memory: RLIMIT_AS where there is no GPU (it counts shared memory too); with a GPU (CUDA
    reserves huge address ranges) RLIMIT_DATA plus bounded tmpfs for ``/dev/shm`` and
    ``/tmp``. The process limit is set inside the sandbox (see :func:`command`).
    """

    def apply() -> None:
        memory = limits.memory_mb * 1024 * 1024
        if gpu_devices():
            resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        else:
            # Address space of a torch process is about 1 GiB larger than what it touches.
            space = memory + ADDRESS_SLACK_MB * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (space, space))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


@functools.cache
def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise IsolationUnavailable(
            "make grade runs every submission inside bubblewrap, but no `bwrap` program was "
            f"found on PATH ({os.environ.get('PATH', '')}); {INSTALL_HINT}. To grade without "
            "isolation anyway (student code then runs as you, can read solutions/ and reach "
            "the network), pass --unsafe-no-isolation."
        )
    return found


@functools.cache
def _self_test() -> str | None:
    """Start Python inside a sandbox once; None when it works, else what went wrong. Where the
    grader uses a GPU, the sandboxed Python must also compute on it (under the seccomp filter)."""
    code = "import os, sys; print(os.getuid())"
    if gpu_devices():
        import torch

        if torch.cuda.is_available():
            code += "\nimport torch; assert torch.ones(2, device='cuda').sum().item() == 2"
    try:
        launch = command([sys.executable, "-c", code], limits=Limits())
    except IsolationUnavailable as error:
        return str(error)
    argv = launch.argv
    try:
        # bwrap starts with the environment the other sandboxes' bwrap gets (it clears it
        # inside anyway); on a timeout, run() kills bwrap and --die-with-parent the rest.
        run = subprocess.run(argv, capture_output=True, text=True, env=bwrap_env(),
                             timeout=SELF_TEST_SECONDS,
                             preexec_fn=preexec(Limits()))
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"running {argv[0]} failed: {error}"
    expected = str(launch.ids[0] if launch.ids else SANDBOX_UID)
    if run.returncode != 0 or run.stdout.strip() != expected:
        tail = " ".join(run.stderr.strip().splitlines()[-3:]) or "(no message)"
        return (f"bubblewrap could not start Python in a sandbox: expected it to print uid "
                f"{expected}, got exit code {run.returncode} and {run.stdout.strip()!r}; "
                f"bwrap said: {tail}")
    return None


def require() -> None:
    """Stop with :class:`IsolationUnavailable` unless student code can be isolated here (or the
    unsafe mode was asked for by name)."""
    if mode() == UNSAFE:
        return
    problem = _self_test()
    if problem is None:
        return
    if "--unsafe-no-isolation" in problem:
        raise IsolationUnavailable(problem)
    raise IsolationUnavailable(
        f"cannot isolate student code, so nothing was graded: {problem}. To fix it: "
        f"{INSTALL_HINT}. To grade without isolation anyway (student code then runs as you, "
        "can read solutions/ and reach the network), pass --unsafe-no-isolation."
    )
