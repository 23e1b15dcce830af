"""``make grade`` from the instructor's side: bad input, LMS downloads, unit pieces."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile

from assignment_helpers import ROOT, grading_env, student_notebook, write_submission

from losslab.grading.judge import Limits, judge_notebook


def _grade(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslab.grading", "grade", *args], cwd=ROOT,
                          env=grading_env(LOSSLAB_GRADING_SEED="7"), capture_output=True,
                          text=True, timeout=timeout)


def test_missing_folder_is_a_clear_error(tmp_path):
    run = _grade("--submissions", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c"))
    assert run.returncode == 2
    assert "no such folder" in run.stderr and "nowhere" in run.stderr


def test_wrong_layout_says_what_was_expected_and_what_came(tmp_path):
    (tmp_path / "subs" / "alice" / "homework1").mkdir(parents=True)
    (tmp_path / "subs" / "notes.txt").write_text("hi")
    run = _grade("--submissions", str(tmp_path / "subs"), "--out", str(tmp_path / "c"))
    assert run.returncode == 2
    assert "expected <student>/<assignment>/" in run.stderr
    assert "alice/" in run.stderr and "notes.txt" in run.stderr
    assert not (tmp_path / "c" / "gradebook.db").exists()


def test_a_missing_source_folder_is_a_clear_error(tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs, "alice", "stable_bce", student_notebook("stable_bce"))
    run = _grade("--submissions", str(subs), "--out", str(tmp_path / "c"),
                 "--source", str(tmp_path / "private"))
    assert run.returncode == 2, run.stderr
    assert f"{tmp_path / 'private'}/stable_bce/stable_bce.ipynb" in run.stderr
    assert "SOURCE=" in run.stderr


def test_zips_need_an_assignment(tmp_path):
    (tmp_path / "dl").mkdir()
    run = _grade("--zips", str(tmp_path / "dl"), "--out", str(tmp_path / "c"))
    assert run.returncode == 2 and "--zips needs --assignment" in run.stderr


def test_make_grade_without_submissions_explains_itself():
    run = subprocess.run(["make", "--no-print-directory", "grade"], cwd=ROOT,
                         capture_output=True, text=True, env=grading_env(), timeout=120)
    assert run.returncode != 0
    assert "SUBMISSIONS=path/to/submitted" in run.stderr


def test_lms_download_is_collected_and_graded(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    good = write_submission(tmp_path / "tmp", "a", "stable_bce",
                            student_notebook("stable_bce", answers={}))
    blank = write_submission(tmp_path / "tmp", "b", "stable_bce", student_notebook("stable_bce"))
    with zipfile.ZipFile(downloads / "submissions.zip", "w") as archive:
        archive.write(good, "alice_12345_67890_stable_bce.ipynb")
        archive.write(blank, "bob_LATE_222_333_stable_bce-1.ipynb")
    course = tmp_path / "course"
    run = _grade("--zips", str(downloads), "--assignment", "stable_bce", "--out", str(course),
                 "--jobs", "2")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    with (course / "grades.csv").open() as handle:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert scores == {"alice": 8.0, "bob": 0.0}
    assert (course / "feedback" / "alice" / "stable_bce" / "stable_bce.html").exists()


def _cells(source: str) -> list[dict]:
    return [{"kind": "code", "source": source},
            {"kind": "check", "grade_id": "t1", "checks": ["stable_bce.basic"]},
            {"kind": "check", "grade_id": "t2", "checks": ["stable_bce.pos_weight"]}]


RIGHT = '''
import torch
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    nls = torch.clamp(-logits, min=0) + torch.log1p(torch.exp(-logits.abs()))
    pos = target * nls * (1 if pos_weight is None else pos_weight)
    loss = pos + (1 - target) * (logits + nls)
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''


def test_sandbox_verdicts_and_limits():
    limits = Limits(step_seconds=4, startup_seconds=60)
    verdicts = judge_notebook("stable_bce", _cells(RIGHT), limits=limits, seed=1, device="cpu")
    assert all(v.passed for v in verdicts.values()), verdicts
    hang = RIGHT.replace('    nls =', '    while pos_weight is not None:\n        pass\n    nls =')
    verdicts = judge_notebook("stable_bce", _cells(hang), limits=limits, seed=1, device="cpu")
    assert verdicts["t1"].passed
    assert not verdicts["t2"].passed and "did not finish within 4" in verdicts["t2"].messages[0]
    hog = RIGHT + "\nbig = torch.ones(2**33, dtype=torch.uint8)\n"
    verdicts = judge_notebook("stable_bce", _cells(hog), limits=limits, seed=1, device="cpu")
    # The allocation fails under the limit; the cell stops there as it would in a kernel, and
    # the functions defined before it still count.
    assert all(v.passed for v in verdicts.values()), verdicts


CE_RIGHT = '''
import torch
def log_softmax(logits, dim=-1):
    shift = logits.amax(dim=dim, keepdim=True).detach()
    return logits - shift - torch.log(torch.exp(logits - shift).sum(dim=dim, keepdim=True))
def cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=1)
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    losses = torch.where(keep, -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1), 0.0)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()
'''

# Every spelling of PyTorch's own log_softmax / cross_entropy; each is defined in turn and
# checked by the test cell right after it (cells run in order, as in a kernel).
BANNED_ROUTES = {
    "functional": "import torch.nn.functional as F\n"
                  "def log_softmax(logits, dim=-1):\n    return F.log_softmax(logits, dim)",
    "c_nn": "def cross_entropy(logits, target, ignore_index=-100, reduction='mean'):\n"
            "    r = {'none': 0, 'mean': 1, 'sum': 2}[reduction]\n"
            "    return torch._C._nn.cross_entropy_loss(logits, target, None, r, ignore_index)",
    "variable_functions": "def log_softmax(logits, dim=-1):\n"
                          "    return torch._C._VariableFunctions.log_softmax(logits, dim)",
    "ops_aten": "def log_softmax(logits, dim=-1):\n"
                "    return torch.ops.aten._log_softmax(logits, dim % logits.dim(), False)",
    "special": "def log_softmax(logits, dim=-1):\n"
               "    return torch.special.log_softmax(logits, dim)",
    "string_name": "import importlib\nmod = importlib.import_module('torch.nn.' + 'functional')\n"
                   "def log_softmax(logits, dim=-1):\n"
                   "    return getattr(mod, 'log_' + 'soft' + 'max')(logits, dim)",
    "method_alias": "softie = torch.Tensor.log_softmax\n"
                    "def log_softmax(logits, dim=-1):\n    return softie(logits, dim)",
    "logsumexp": "def log_softmax(logits, dim=-1):\n"
                 "    return logits - torch.special.logsumexp(logits, dim, keepdim=True)",
    "nll_module": "nll = torch.nn.NLLLoss\n"
                  "def cross_entropy(logits, target, ignore_index=-100, reduction='mean'):\n"
                  "    return nll(ignore_index=ignore_index, reduction=reduction)("
                  "log_softmax(logits, 1), target)",
}


def test_every_route_to_a_banned_function_is_caught_and_own_helpers_are_not():
    cells = [{"kind": "code", "source": CE_RIGHT},
             {"kind": "check", "grade_id": "honest",
              "checks": ["manual_cross_entropy.cross_entropy"]}]
    # An honest helper class whose methods share the banned names.
    cells += [{"kind": "code", "source": CE_RIGHT.replace("log_softmax(logits, dim=1)",
                                                          "Helpers().log_softmax(logits)") +
               "\nclass Helpers:\n    def log_softmax(self, x):\n        return log_softmax(x, 1)"
               "\n    def softmax(self, x):\n        return self.log_softmax(x).exp()\n"},
              {"kind": "check", "grade_id": "own_helper",
               "checks": ["manual_cross_entropy.cross_entropy"]}]
    for name, source in BANNED_ROUTES.items():
        cells += [{"kind": "code", "source": CE_RIGHT + "\n" + source},
                  {"kind": "check", "grade_id": name,
                   "checks": ["manual_cross_entropy.cross_entropy"]}]
    verdicts = judge_notebook("manual_cross_entropy", cells, limits=Limits(step_seconds=30),
                              seed=3, device="cpu")
    assert verdicts["honest"].passed, verdicts["honest"]
    assert verdicts["own_helper"].passed, verdicts["own_helper"]
    for name in BANNED_ROUTES:
        assert not verdicts[name].passed, name
        assert "asks you not to use PyTorch's own implementation" in (
            verdicts[name].messages[0]), (name, verdicts[name])


def test_grading_stops_before_any_student_code_without_bubblewrap(tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs, "alice", "stable_bce", student_notebook("stable_bce", answers={}))
    env = grading_env(LOSSLAB_GRADING_SEED="7")
    env["PATH"] = str(ROOT / ".venv" / "bin")  # no /usr/bin: no bwrap on PATH
    run = subprocess.run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                          str(subs), "--out", str(tmp_path / "c")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "no `bwrap` program was found" in run.stderr
    assert "apt-get install bubblewrap" in run.stderr and "--unsafe-no-isolation" in run.stderr
    assert not (tmp_path / "c" / "gradebook.db").exists()
