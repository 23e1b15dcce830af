"""The assignments grade fairly: solutions, blanks, common mistakes and hostile submissions.

One batch of submissions is graded with the parallel grader (as ``make grade`` does) and every
test reads the resulting gradebook, feedback and CSV.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from assignment_fixtures import FIXTURES, TEST_CELLS
from assignment_helpers import (
    ASSIGNMENTS,
    CHECK_CALL,
    ROOT,
    cell_scores,
    grading_env,
    is_test_cell,
    nbgrader_meta,
    read,
    student_notebook,
    write_submission,
)

SEED = "2024"
BATCH_ENV = {
    "LOSSLAB_GRADING_SEED": SEED,
    "LOSSLAB_CELL_TIMEOUT": "10",
    "LOSSLAB_SANDBOX_STEP_SECONDS": "20",
}


def _run(command: list[str], timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=grading_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def _write_batch(submitted: Path, assignments, fixtures) -> None:
    """Each assignment's solution and blank release, and each fixture, as a submission."""
    for assignment in assignments:
        write_submission(submitted, f"solution-{assignment}", assignment,
                         student_notebook(assignment, answers={}))
        write_submission(submitted, f"blank-{assignment}", assignment,
                         student_notebook(assignment))
    for fixture in fixtures:
        nb = student_notebook(fixture.assignment, answers=fixture.cells, edit=fixture.edit)
        write_submission(submitted, fixture.name, fixture.assignment, nb)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every solution, blank release and fixture in one parallel run."""
    base = tmp_path_factory.mktemp("batch")
    submitted = base / "submitted"
    _write_batch(submitted, ASSIGNMENTS, FIXTURES)
    course = base / "course"
    run = _run([sys.executable, "-m", "losslab.grading", "grade", "--submissions",
                str(submitted), "--out", str(course), "--jobs", "2"], timeout=1500, **BATCH_ENV)
    return {"run": run, "course": course, "scores": cell_scores(course),
            "count": 2 * len(ASSIGNMENTS) + len(FIXTURES)}


def test_batch_grades_every_submission_and_reports_progress(batch):
    run = batch["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    count = batch["count"]
    assert f"Done: {count} graded, 0 failed." in run.stdout, run.stdout[-3000:]
    progress = [line for line in run.stdout.splitlines() if re.match(r"\[\s*\d+/\d+\]", line)]
    assert len(progress) == count
    assert progress[-1].startswith(f"[{count}/{count}]")
    assert len(batch["scores"]) == count


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(batch, assignment):
    cells = batch["scores"][(assignment, f"solution-{assignment}")]
    for grade_id in TEST_CELLS[assignment]:
        score, max_score, _ = cells[grade_id]
        assert max_score > 0
        assert score == max_score, f"{grade_id}: {score}/{max_score}"
    manual = {g for g, (_, _, needs) in cells.items() if needs}
    expected_manual = {"explanation"} if assignment == "outlier_comparison" else set()
    assert manual == expected_manual


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_scores_zero_on_every_graded_cell(batch, assignment):
    cells = batch["scores"][(assignment, f"blank-{assignment}")]
    assert set(TEST_CELLS[assignment]) <= set(cells)
    for grade_id, (score, max_score, needs_manual) in cells.items():
        assert max_score > 0
        assert score == 0, f"{grade_id}: {score}/{max_score}"
        assert not needs_manual, grade_id


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_fixture_gets_the_grade_it_deserves(batch, fixture):
    cells = batch["scores"][(fixture.assignment, fixture.name)]
    got = {grade_id: cells[grade_id][0] == cells[grade_id][1] for grade_id in fixture.passes}
    zero = {grade_id: cells[grade_id][0] == 0 for grade_id in fixture.passes}
    assert got == fixture.passes
    assert all(got[g] or zero[g] for g in fixture.passes), cells


# The assignments added last, graded once more by an ordinary user (when the tests run as root;
# otherwise the batch above already runs as one).
NEW_ASSIGNMENTS = ("gaussian_nll", "info_nce", "token_loss", "large_vocab")
NEW_FIXTURES = [f for f in FIXTURES if f.assignment in NEW_ASSIGNMENTS]


@pytest.fixture(scope="module")
def user_batch():
    if os.geteuid() != 0:
        pytest.skip("the tests run as an ordinary user: the whole batch above is graded as one")
    from test_red_team import _ordinary_user

    # Outside pytest's temporary folder, which pytest keeps private to root.
    base = Path(tempfile.mkdtemp(prefix="losslab-user-batch-"))
    try:
        base.chmod(0o755)
        submitted = base / "submitted"
        _write_batch(submitted, NEW_ASSIGNMENTS, NEW_FIXTURES)
        options, _ = _ordinary_user(base)
        for path in [submitted, *submitted.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o005)
        course = base / "course"
        course.mkdir()
        os.chown(course, options["uid"], -1)
        env = {**options["env"], **BATCH_ENV}
        run = subprocess.run([options["python"], "-m", "losslab.grading", "grade",
                              "--submissions", str(submitted), "--out", str(course),
                              "--jobs", "2"], cwd=ROOT, env=env, preexec_fn=options["preexec_fn"],
                             capture_output=True, text=True, timeout=1500)
        yield {"run": run, "uid": options["uid"], "course": course,
               "scores": cell_scores(course) if run.returncode == 0 else {},
               "count": 2 * len(NEW_ASSIGNMENTS) + len(NEW_FIXTURES)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_an_ordinary_user_grades_the_new_assignments_as_root_does(user_batch):
    run = user_batch["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    count = user_batch["count"]
    assert f"Done: {count} graded, 0 failed." in run.stdout, run.stdout[-3000:]
    # The gradebook and feedback are the ordinary user's, not root's.
    assert (user_batch["course"] / "gradebook.db").stat().st_uid == user_batch["uid"]
    scores = user_batch["scores"]
    for assignment in NEW_ASSIGNMENTS:
        solution = scores[(assignment, f"solution-{assignment}")]
        blank = scores[(assignment, f"blank-{assignment}")]
        for grade_id in TEST_CELLS[assignment]:
            assert solution[grade_id][0] == solution[grade_id][1] > 0, (assignment, grade_id)
            assert blank[grade_id][0] == 0, (assignment, grade_id)
    for fixture in NEW_FIXTURES:
        cells = scores[(fixture.assignment, fixture.name)]
        got = {grade_id: cells[grade_id][0] == cells[grade_id][1] for grade_id in fixture.passes}
        assert got == fixture.passes, (fixture.name, cells)


def _feedback_files(course: Path) -> list[Path]:
    return sorted((course / "feedback").glob("*/*/*.html"))


def test_every_submission_gets_html_feedback(batch):
    files = _feedback_files(batch["course"])
    assert len(files) == batch["count"]
    for path in files:
        text = _visible_text(path)
        assert "Score:" in text or "score" in text.lower(), path


def _hidden_lines() -> set[str]:
    lines = set()
    for assignment in ASSIGNMENTS:
        nb = read(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                if inside and len(line.strip()) > 8:
                    lines.add(line.strip())
                if "END HIDDEN TESTS" in line:
                    inside = False
    return lines


def _visible_text(path: Path) -> str:
    """Feedback as the student reads it: tags dropped (code is split into spans), unescaped."""
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", path.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def test_feedback_holds_no_hidden_test_text(batch):
    hidden = _hidden_lines()
    assert hidden
    for path in _feedback_files(batch["course"]):
        text = _visible_text(path)
        assert "HIDDEN TESTS" not in text, path
        for line in hidden:
            assert line not in text, f"{path}: contains hidden test line {line!r}"


def _hidden_reference_values(assignment: str) -> set[str]:
    """Every reference value the hidden cases compare with, for the batch's seed."""
    from losslab.grading.checks import checks_for, expect
    from losslab.grading.probes.probing import Probe
    from losslab.grading.support import pick_device

    nb = read(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    namespace: dict = {}
    keys = []
    for cell in nb.cells:
        if is_test_cell(cell):
            keys += [f"{a}.{n}" for a, n in CHECK_CALL.findall(cell.source)]
        elif cell.cell_type == "code":
            exec(compile(cell.source, assignment, "exec"), namespace)  # noqa: S102
    values: set[str] = set()
    original = expect.expect_close

    def recording(out, expected, what, *, hidden, **kwargs):
        if hidden:
            for x in expected.detach().double().reshape(-1).tolist():
                if abs(x) > 1e-3 and abs(x - round(x)) > 1e-6:
                    values.add(f"{x:.6g}")
                    values.add(f"{x:.4f}")
        return original(out, expected, what, hidden=hidden, **kwargs)

    checks = checks_for(assignment)
    device = pick_device()
    for offset, key in enumerate(keys):
        check = checks[key.split(".", 1)[1]]
        inputs = check.make_inputs(torch.Generator().manual_seed(int(SEED) + offset))
        outputs = check.probe(Probe(namespace, device), inputs)
        outputs["__device__"] = device
        outputs["__forbidden__"] = []
        owner = sys.modules[check.judge.__module__]
        patched = [m for m in (owner, expect) if getattr(m, "expect_close", None) is original]
        for m in patched:
            m.expect_close = recording
        try:
            check.judge(inputs, outputs)
        finally:
            for m in patched:
                m.expect_close = original
    return values


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_holds_no_hidden_reference_values(batch, assignment):
    references = _hidden_reference_values(assignment)
    if assignment in ("focal_loss", "manual_cross_entropy", "stable_bce", "choose_loss",
                      "gaussian_nll", "info_nce", "token_loss", "large_vocab"):
        assert references, "the hidden cases should compare with reference values"
    number = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
    for path in sorted((batch["course"] / "feedback").glob(f"*/{assignment}/*.html")):
        found = set(number.findall(_visible_text(path)))
        leaked = found & references
        assert not leaked, f"{path}: shows reference values {sorted(leaked)[:5]}"


def test_feedback_explains_visible_failures(batch):
    path = batch["course"] / "feedback" / "focal_alpha_everywhere" / "focal_loss"
    text = _visible_text(path / "focal_loss.html")
    assert "focal_loss matches the reference" in text
    assert "expected" in text and ", got" in text
    hang = _visible_text(batch["course"] / "feedback" / "hostile_loop_in_function" /
                         "focal_loss" / "focal_loss.html")
    assert "did not finish within" in hang
    exited = _visible_text(batch["course"] / "feedback" / "hostile_os_exit_top_level" /
                           "focal_loss" / "focal_loss.html")
    assert "in the cell starting 'def focal_loss(logits, target" in exited
    assert "exited" in exited
    forbidden = _visible_text(batch["course"] / "feedback" / "ce_calls_torch_log_softmax" /
                              "manual_cross_entropy" / "manual_cross_entropy.html")
    assert "asks you not to use" in forbidden and "log_softmax" in forbidden


def test_grades_csv_matches_the_gradebook(batch):
    course = batch["course"]
    with (course / "grades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # nbgrader's export has a row per student and assignment; no submission counts as zero.
    students = {student for _, student in batch["scores"]}
    assert len(rows) == len(students) * len(ASSIGNMENTS)
    for row in rows:
        cells = batch["scores"].get((row["assignment"], row["student_id"]))
        if cells is None:
            assert float(row["score"]) == 0
            continue
        assert float(row["raw_score"]) == pytest.approx(sum(s for s, _, _ in cells.values()))
        assert float(row["max_score"]) == pytest.approx(sum(m for _, m, _ in cells.values()))
    with (course / "grading_log.csv").open() as handle:
        log = list(csv.DictReader(handle))
    assert {row["status"] for row in log} == {"graded"}


def test_release_equals_a_fresh_generation(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    for assignment in ASSIGNMENTS:
        src = ROOT / "solutions" / assignment
        (course / "solutions" / assignment).mkdir()
        (course / "solutions" / assignment / f"{assignment}.ipynb").write_bytes(
            (src / f"{assignment}.ipynb").read_bytes())
        run = _run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment,
                    "--force", "--no-db", f"--CourseDirectory.root={course}"])
        assert run.returncode == 0, run.stderr[-2000:]
        fresh = json.loads((course / "exercises" / assignment / f"{assignment}.ipynb").read_text())
        committed = json.loads(
            (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
        assert fresh["metadata"] == committed["metadata"]
        assert (fresh["nbformat"], fresh["nbformat_minor"]) == (
            committed["nbformat"], committed["nbformat_minor"])
        assert len(fresh["cells"]) == len(committed["cells"])
        for new, old in zip(fresh["cells"], committed["cells"]):
            assert new == old, f"{assignment}: cell {old.get('id')} differs from a fresh release"
    assert sorted(p.name for p in (ROOT / "exercises").iterdir()) == sorted(ASSIGNMENTS)


def test_release_has_no_solutions_hidden_tests_or_outputs():
    for assignment in ASSIGNMENTS:
        path = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "hidden_check"):
            assert marker not in text, f"{path}: {marker}"
        for cell in read(path).cells:
            assert not cell.get("outputs"), f"{path}: outputs committed"


def test_blank_release_fails_validation_everywhere():
    paths = [str(ROOT / "exercises" / a / f"{a}.ipynb") for a in ASSIGNMENTS]
    run = _run([sys.executable, "-m", "nbgrader", "validate", "--invert", *paths])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.count("Success! The notebook does not pass any tests.") == len(paths), (
        run.stdout[-3000:])


def test_solutions_pass_validation_with_hidden_tests():
    paths = [str(ROOT / "solutions" / a / f"{a}.ipynb") for a in ASSIGNMENTS]
    run = _run([sys.executable, "-m", "nbgrader", "validate", *paths])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.count("Success! Your notebook passes all the tests.") == len(paths), (
        run.stdout[-3000:])


def test_sources_are_consistent():
    from losslab.grading.checks import checks_for

    for assignment in ASSIGNMENTS:
        nb = read(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
        named = []
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            assert "outputs" not in cell or not cell.outputs, "solutions keep no outputs"
            if is_test_cell(cell):
                assert meta["points"] > 0 and meta["locked"]
                assert "BEGIN HIDDEN TESTS" in cell.source
                keys = CHECK_CALL.findall(cell.source)
                assert keys, f"{meta['grade_id']} names no check"
                named += [name for owner, name in keys if owner == assignment]
            elif meta.get("solution") and cell.cell_type == "code":
                assert "BEGIN SOLUTION" in cell.source
        assert sorted(named) == sorted(checks_for(assignment)), assignment
        assert [meta for meta in map(nbgrader_meta, nb.cells) if not meta] == []


CHAPTER_OF = {"gaussian_nll": "probabilistic", "info_nce": "contrastive", "token_loss": "sequences",
              "large_vocab": "scale"}


def _link_targets(markdown: str) -> list[str]:
    """Every link target of a Markdown text, as markdown-it parses it."""
    from markdown_it import MarkdownIt

    targets = []
    for token in MarkdownIt().parse(markdown):
        for child in token.children or []:
            if child.type == "link_open":
                targets.append(child.attrs["href"])
    return targets


@pytest.mark.parametrize("assignment", sorted(CHAPTER_OF))
def test_assignment_and_its_chapter_link_each_other(assignment):
    page = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    brief = next(cell for cell in read(page).cells
                 if nbgrader_meta(cell).get("grade_id") == "brief")
    chapter = ROOT / "chapters" / f"{CHAPTER_OF[assignment]}.md"
    from_page = {(page.parent / target).resolve() for target in _link_targets(brief.source)}
    assert chapter.resolve() in from_page, f"{page.name} should link to {chapter.name}"
    from_chapter = {(chapter.parent / target).resolve()
                    for target in _link_targets(chapter.read_text())}
    assert page.resolve() in from_chapter, f"{chapter.name} should link to {page.name}"
