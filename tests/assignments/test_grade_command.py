"""``make grade`` from the instructor's side: bad input, LMS downloads, unit pieces."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile

from assignment_helpers import ROOT, grading_env, student_notebook, write_submission

from losslab.grading.isolate import Limits, forbidden_uses, judge_notebook


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


def test_forbidden_uses_finds_attribute_and_import_spellings():
    sources = ["import torch.nn.functional as F\ny = F.log_softmax(x, 1)",
               "from torch.nn.functional import nll_loss",
               "def log_softmax(x):\n    return x  # log_softmax in a comment"]
    assert forbidden_uses(sources, ("log_softmax", "nll_loss", "softmax")) == [
        "log_softmax", "nll_loss"]


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


def test_student_code_runs_as_another_user_only_when_that_user_can_run_python(tmp_path):
    from losslab.grading import privileges

    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    (closed / "file.py").write_text("")
    (closed / "file.py").chmod(0o644)
    assert not privileges._open_to_others(closed / "file.py")
    closed.chmod(0o755)
    tmp_path.chmod(0o755)
    if all(p.stat().st_mode & 0o001 for p in tmp_path.parents):
        assert privileges._open_to_others(closed / "file.py")
    ids = privileges.unprivileged_ids()
    assert (ids is not None) == privileges.can_switch_users()
    if ids is None:
        return
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    canary.chmod(0o644)
    source = RIGHT + f"\nopen({str(canary)!r}, 'w').write('tampered')\n"
    verdicts = judge_notebook("stable_bce", _cells(source), limits=Limits(step_seconds=20),
                              seed=1, device="cpu")
    assert canary.read_text() == "untouched"
    assert all(v.passed for v in verdicts.values())
