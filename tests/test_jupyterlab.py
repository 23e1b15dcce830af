"""The course in a real JupyterLab, as Binder serves it, driven by headless Chromium.

``jupyter lab`` starts from the project's environment on 127.0.0.1, on a copy of the
files a learner opens, with the JupyterLab settings ``binder/postBuild`` installs. Then:

- a chapter's ``.md`` opens as a notebook at ``lab/tree/chapters/<name>.md`` (the URL of
  the book's Binder button), every cell runs without an error, its widget draws its curves
  and redraws them when a slider moves; Python reads the moved control, and a control set
  from Python moves the slider and redraws the plot (the kernel's model is synced);
- an assignment opens, nbgrader's Validate toolbar button runs, and its verdict says the
  blank release fails and a solved copy passes.

Nothing in the user's home folder takes part: configuration, data, runtime, settings and
workspaces live in a temporary folder. The browser may reach 127.0.0.1 only. A watchdog
stops the server and the browser if the whole test runs past ``DEADLINE_S``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from browser import CHROMIUM_FLAGS, chromium_path

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.executable).with_name("jupyter")
CHAPTER = "chapters/why_losses.md"
ASSIGNMENT = "stable_bce"
SERVER_START_S = 120
DEADLINE_S = 330
UI_TIMEOUT_MS = 90_000

# Test-only settings, on top of binder/overrides.json: no news or update checks (they
# would reach outside), and every cell in the DOM so that the checks below see them all.
TEST_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false", "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def solved_copy(release: Path, solution: Path) -> dict:
    """The released notebook with each answer cell filled in as the solution has it.

    What a learner who solved the assignment would hand in: locked cells untouched, the
    solution code without nbgrader's ``### BEGIN/END SOLUTION`` markers.
    """
    nb = json.loads(release.read_text())
    answers = {}
    for cell in json.loads(solution.read_text())["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            lines = "".join(cell["source"]).splitlines(keepends=True)
            answers[meta["grade_id"]] = "".join(
                ln for ln in lines if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
            )
    filled = 0
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
            filled += 1
    assert filled == len(answers) > 0, (
        f"expected every answer cell of {solution.name} in its release, "
        f"filled {filled} of {len(answers)}"
    )
    return nb


def learner_tree(dest: Path) -> None:
    """The files a learner opens on Binder, copied so the test never writes to the repo."""
    (dest / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / CHAPTER, dest / CHAPTER)
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(ROOT / "exercises" / ASSIGNMENT, dest / "exercises" / ASSIGNMENT)
    solved = solved_copy(
        ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
    )
    (dest / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}_solved.ipynb").write_text(
        json.dumps(solved, indent=1))


def lab_settings(dest: Path) -> Path:
    """JupyterLab's application settings folder, laid out as binder/postBuild lays it out."""
    overrides = dest / "overrides.d"
    overrides.mkdir(parents=True)
    shutil.copy(ROOT / "binder" / "overrides.json", overrides / "losslab.json")
    (overrides / "zz-test-only.json").write_text(json.dumps(TEST_OVERRIDES))
    return dest


@dataclass
class Lab:
    url: str
    token: str
    log_path: Path
    proc: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no server log: {exc})"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@contextlib.contextmanager
def jupyter_lab(tmp: Path) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 from this environment, in its own process group."""
    assert JUPYTER.is_file(), (
        f"expected the project's jupyter at {JUPYTER} (run `make venv`), found nothing")
    root = tmp / "tree"
    learner_tree(root)
    settings = lab_settings(tmp / "lab-settings")
    home = tmp / "home"
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        # nbgrader's Validate starts kernels; they find losslab as Binder's would.
        "PATH": f"{JUPYTER.parent}{os.pathsep}{env.get('PATH', '')}",
    })
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        str(JUPYTER), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={settings}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
    ]
    if os.geteuid() == 0:  # containers and CI machines often run the tests as root
        cmd.append("--allow-root")
    log_path = tmp / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        # cwd is the tree, as on Binder: nbgrader's Validate reads nbgrader_config.py there.
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}/", token, log_path, proc)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"jupyter lab exited with code {proc.returncode} before it served "
                    f"anything; its log:\n{lab.log_tail()}")
            try:
                req = urllib.request.Request(lab.url + "api/status",
                                             headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"jupyter lab did not answer on {lab.url} within {SERVER_START_S} s; "
                    f"its log:\n{lab.log_tail()}")
            time.sleep(0.5)
        yield lab
    finally:
        _stop(proc)


@dataclass
class Outside:
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def lab_browser(lab: Lab, outside: Outside) -> Iterator:
    """Headless Debian Chromium with a fresh profile; only 127.0.0.1 may be reached."""
    from playwright.sync_api import sync_playwright

    profile = Path(lab.log_path.parent / "chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.set_default_timeout(UI_TIMEOUT_MS)
            host = urlparse(lab.url).netloc

            def on_route(route):
                parsed = urlparse(route.request.url)
                if parsed.scheme in ("data", "blob") or parsed.netloc == host:
                    route.continue_()
                else:
                    outside.requests.append(route.request.url)
                    route.abort()

            context.route("**/*", on_route)
            yield context
        finally:
            context.close()


def _stop_browser() -> None:
    """Kill the Chromium that this process's Playwright driver started.

    Playwright then fails every pending call at once ("target closed"); killing the
    driver itself instead can leave a call waiting for ever.
    """
    import psutil

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "run-driver" not in " ".join(child.cmdline()):
                continue
            for browser_proc in child.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    browser_proc.kill()


@contextlib.contextmanager
def watchdog(seconds: float, procs: list[subprocess.Popen]) -> Iterator[threading.Event]:
    """After ``seconds``, stop the server and the browser: every pending wait then fails."""
    fired = threading.Event()

    def fire():
        fired.set()
        for proc in procs:
            with contextlib.suppress(Exception):
                _stop(proc)
        _stop_browser()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


KERNEL_IDLE_JS = """(id) => {
  const panel = document.getElementById(id);
  const name = panel && panel.querySelector('.jp-KernelName');
  const bar = [...document.querySelectorAll('.jp-StatusBar-TextItem')].map(e => e.textContent);
  return !!name && !/No Kernel/.test(name.textContent)
    && bar.some(t => /\\| Idle$/.test(t.trim()) && !/No Kernel/.test(t));
}"""

RUN_STATE_JS = """(id) => {
  const panel = document.getElementById(id);
  if (!panel) return null;
  for (const out of panel.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
    if (/Traceback|\\w+Error\\b/.test(out.textContent)) return 'error: ' + out.textContent;
  }
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  if (!prompts.length) return null;
  return prompts.every(p => /\\[\\d+\\]/.test(p.textContent)) ? 'done' : null;
}"""


@dataclass
class Opened:
    page: object
    panel: object  # the notebook panel's Locator
    panel_id: str
    path: str


def open_in_lab(context, lab: Lab, path: str, workspace: str) -> Opened:
    """Open ``path`` by its URL in a fresh workspace; return its notebook panel."""
    page = context.new_page()
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{path}?token={lab.token}",
              wait_until="domcontentloaded")
    name = path.rsplit("/", 1)[-1]
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").filter(
        has=page.locator(".lm-TabBar-tabLabel", has_text=re.compile(f"^{re.escape(name)}$")))
    try:
        tab.wait_for(state="visible")
        panel_id = tab.get_attribute("data-id")
        panel = page.locator(f'[id="{panel_id}"]')
        panel.wait_for(state="visible")
        assert "jp-NotebookPanel" in (panel.get_attribute("class") or "")
    except Exception as exc:
        editors = page.locator(".jp-FileEditor").count()
        raise AssertionError(
            f"expected {path} to open as a notebook in JupyterLab; no notebook panel "
            f"appeared ({editors} text editor(s) open instead). Server log:\n"
            f"{lab.log_tail()}") from exc
    # The kernel named in the file's header starts by itself; until it is connected and
    # idle, "Run All Cells" does nothing. The status bar then reads "<kernel> | Idle".
    try:
        page.wait_for_function(KERNEL_IDLE_JS, arg=panel_id, polling=250)
    except Exception as exc:
        status = page.locator(".jp-StatusBar-Widget").inner_text()
        raise AssertionError(
            f"expected a kernel to start, connect and be idle for {path}; the status bar "
            f"reads {status!r}. Server log:\n{lab.log_tail()}") from exc
    return Opened(page, panel, panel_id, path)


def run_all(nb: Opened, lab: Lab) -> None:
    page = nb.page
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    try:
        state = page.wait_for_function(RUN_STATE_JS, arg=nb.panel_id, polling=500,
                                       timeout=180_000).json_value()
    except Exception as exc:
        prompts = nb.panel.locator(".jp-InputPrompt").all_inner_texts()
        raise AssertionError(
            f"expected every cell of {nb.path} to run within 180 s of Run All Cells; the "
            f"input prompts read {prompts}. Server log:\n{lab.log_tail()}") from exc
    assert state == "done", (
        f"expected every cell of {nb.path} to run in JupyterLab; a cell failed:\n"
        f"{state[:3000]}\nServer log:\n{lab.log_tail()}")


def check_chapter(context, lab: Lab) -> None:
    nb = open_in_lab(context, lab, CHAPTER, "chapter")
    page, panel = nb.page, nb.panel
    run_all(nb, lab)

    figure = panel.locator(".losslab-figure").first
    try:
        figure.locator(".losslab-plot path.ll-series").first.wait_for(state="attached")
    except Exception as exc:
        shown = panel.locator(".jp-OutputArea-output").count()
        raise AssertionError(
            f"expected a losslab widget with drawn curves (path.ll-series) in {CHAPTER} "
            f"after running it; found {panel.locator('.losslab-figure').count()} figure(s) "
            f"among {shown} outputs") from exc
    drawn = figure.locator(".losslab-plot path.ll-series").evaluate_all(
        "ps => ps.filter(p => (p.getAttribute('d') || '').length > 10).length")
    assert drawn > 0, f"expected curves drawn in {CHAPTER}'s widget, every path was empty"

    plot = figure.locator(".losslab-plot")
    before = plot.get_attribute("data-frame")
    handle = figure.locator(".ll-control input[type=range]").first
    assert handle.count() == 1, f"expected a slider in {CHAPTER}'s first widget, found none"
    handle.focus()
    # Right, unless the slider starts at its last value.
    at_end = handle.evaluate("n => n.value === n.max")
    page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
    try:
        page.wait_for_function(
            "([el, before]) => el.getAttribute('data-frame') !== before",
            arg=[plot.element_handle(), before], timeout=15_000)
    except Exception as exc:
        seen = handle.evaluate("n => [n.value, n.max, document.activeElement === n, "
                               "document.activeElement.className]")
        raise AssertionError(
            f"expected the plot's data-frame to change from {before!r} when the slider "
            f"moved {'left' if at_end else 'right'} in JupyterLab; it stayed "
            f"{plot.get_attribute('data-frame')!r} (slider value, max, focused, focus: "
            f"{seen})") from exc
    moved = plot.get_attribute("data-frame")
    control = moved.split(",").index(next(
        a for a, b in zip(moved.split(","), before.split(",")) if a != b))
    check_set_from_python(page, panel, plot, control, int(moved.split(",")[control]))
    page.close()


# Run in a new cell after the chapter: the chapter's first figure, read and set from Python.
FROM_PYTHON = """from ipywidgets import Widget
from losslab.engine.widgets import Figure
fig = next(w for w in list(Widget.widgets.values()) if isinstance(w, Figure))
print("read", [c.index for c in fig.controls])
fig.controls[{i}].index = {to}
print("set", fig.controls[{i}].shown)"""


def check_set_from_python(page, panel, plot, i: int, moved_to: int) -> None:
    """Python sees the slider the browser moved, and a value set in Python redraws the plot."""
    to = 0 if moved_to != 0 else 1
    panel.locator(".jp-Cell").last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(FROM_PYTHON.format(i=i, to=to))
    page.keyboard.press("Shift+Enter")
    out = panel.locator(".jp-Cell").nth(-2).locator(".jp-OutputArea-output")
    try:
        out.filter(has_text="set").first.wait_for(timeout=60_000)
    except Exception as exc:
        raise AssertionError(
            f"expected the new cell to print what Python reads of the figure's controls; "
            f"its output reads {out.all_inner_texts()!r}") from exc
    text = " ".join(out.all_inner_texts())
    read = re.search(r"read \[([\d, ]*)\]", text)
    assert read and int(read.group(1).split(",")[i]) == moved_to, (
        f"expected Python to read control {i} at {moved_to} after the slider moved; "
        f"the cell printed {text!r}")
    try:
        page.wait_for_function(
            "([el, i, to]) => el.getAttribute('data-frame').split(',')[i] === String(to)",
            arg=[plot.element_handle(), i, to], timeout=15_000)
    except Exception as exc:
        raise AssertionError(
            f"expected control {i} set to {to} from Python to redraw the plot; its data-frame "
            f"stayed {plot.get_attribute('data-frame')!r}") from exc
    slider = plot.locator("xpath=..").locator(f"[data-control='{i}']")
    assert slider.input_value() == str(to), "the slider did not move to the value set in Python"


def validate(context, lab: Lab, path: str, workspace: str) -> tuple[str, str]:
    """Press Validate on ``path``; return the verdict's class and the dialog's text."""
    nb = open_in_lab(context, lab, path, workspace)
    page = nb.page
    button = nb.panel.locator(".validate-button")
    try:
        button.wait_for(state="visible")
    except Exception as exc:
        raise AssertionError(
            f"expected nbgrader's Validate button in the toolbar of {path}; it is missing "
            f"(is nbgrader's JupyterLab extension enabled?)") from exc
    button.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible", timeout=180_000)
    title = dialog.locator(".jp-Dialog-header").inner_text()
    text = dialog.inner_text()
    verdicts = ("validation-success", "validation-failed", "validation-changed",
                "validation-passed")
    found = [v for v in verdicts if dialog.locator(f".{v}").count()]
    page.close()
    assert title.strip() == "Validation Results", (
        f"expected nbgrader's 'Validation Results' dialog for {path}, got {title!r}:\n{text}"
        f"\nServer log:\n{lab.log_tail()}")
    return (found[0] if found else "no verdict"), text


def test_chapter_and_assignment_live_in_jupyterlab(tmp_path):
    start = time.monotonic()
    outside = Outside()
    with jupyter_lab(tmp_path) as lab, watchdog(DEADLINE_S, [lab.proc]) as fired:
        try:
            with lab_browser(lab, outside) as context:
                check_chapter(context, lab)

                blank = f"exercises/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
                verdict, text = validate(context, lab, blank, "blank")
                assert verdict == "validation-failed", (
                    f"expected Validate to fail the blank release {blank}; "
                    f"verdict {verdict}:\n{text[:2000]}")
                assert "NotImplementedError" in text, (
                    f"expected the failing cells of {blank} to show NotImplementedError:\n"
                    f"{text[:2000]}")

                solved = f"exercises/{ASSIGNMENT}/{ASSIGNMENT}_solved.ipynb"
                verdict, text = validate(context, lab, solved, "solved")
                assert verdict == "validation-success", (
                    f"expected Validate to pass {solved} (the release with the solution's "
                    f"answers); verdict {verdict}:\n{text[:2000]}")
        except Exception:
            if fired.is_set():
                raise AssertionError(
                    f"the JupyterLab test ran past its {DEADLINE_S} s deadline and was "
                    f"stopped; server log:\n{lab.log_tail()}") from None
            raise
    assert not fired.is_set(), f"the JupyterLab test ran past its {DEADLINE_S} s deadline"
    # JupyterLab and the course's widgets need nothing from the internet.
    assert not outside.requests, (
        f"expected JupyterLab to request nothing outside 127.0.0.1; blocked {outside.requests}")
    print(f"JupyterLab test: {time.monotonic() - start:.1f} s")
