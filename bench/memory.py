"""Peak memory of the kernel running each chapter and each assignment solution.

Run with ``make bench`` (or ``python bench/memory.py``). Every ``chapters/*.md`` (read
by jupytext) and every ``solutions/*/*.ipynb`` runs top to bottom in a fresh ipykernel
through nbclient, from its own folder, as it does in JupyterLab. Before the kernel stops,
its peak resident memory is read from the kernel's own ``/proc/<pid>/status``
(``VmHWM``, the high-water mark the Linux kernel keeps, so no short peak is missed);
processes the kernel starts are sampled every 50 ms and their largest combined resident
memory is added. Binder guarantees 1 GB to a session, so every notebook must stay under
``LIMIT_BYTES``; the script prints a table and exits with 1 when one does not.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 1_000_000_000  # Binder's guaranteed memory: 1 GB
CELL_TIMEOUT_S = 600


@dataclass
class Peak:
    """What one notebook's kernel used."""

    notebook: str
    cells: int
    seconds: float
    kernel_pid: int
    kernel_hwm: int  # bytes: VmHWM of the kernel process
    children_peak: int  # bytes: largest sampled sum of the RSS of its child processes
    peak_cell: str  # the code cell that raised the kernel's high-water mark the most

    @property
    def total(self) -> int:
        return self.kernel_hwm + self.children_peak


def notebooks() -> list[Path]:
    """Every chapter and every assignment solution, in a stable order."""
    return sorted((ROOT / "chapters").glob("*.md")) + sorted(
        (ROOT / "solutions").glob("*/*.ipynb"))


def read(path: Path) -> nbformat.NotebookNode:
    return jupytext.read(path) if path.suffix == ".md" else nbformat.read(path, as_version=4)


def vm_hwm(pid: int) -> int:
    """The peak resident set size of process ``pid`` in bytes (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", f"expected VmHWM in kB in /proc/{pid}/status, got {line!r}"
            return int(value) * 1024
    raise RuntimeError(f"no VmHWM line in /proc/{pid}/status")


class ChildSampler(threading.Thread):
    """Samples the combined RSS of a process's descendants until stopped."""

    def __init__(self, pid: int, every_s: float = 0.05):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = 0
            try:
                for child in self.proc.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.every_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


def measure(path: Path) -> Peak:
    """Run ``path`` in a fresh kernel; return its peak memory. A failing cell raises."""
    nb = read(path)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    with client.setup_kernel():
        process = getattr(client.km.provisioner, "process", None)
        assert process is not None and process.poll() is None, (
            f"expected a live local kernel process for {path.name}, got {process!r}")
        pid = process.pid
        sampler = ChildSampler(pid)
        sampler.start()
        rises = []
        try:
            # Read while the kernel still runs: at shutdown /proc/<pid> goes away.
            hwm = vm_hwm(pid)
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    after = vm_hwm(pid)
                    rises.append((after - hwm, index, cell.source))
                    hwm = after
        finally:
            children = sampler.stop()
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
    rise, index, source = max(rises) if rises else (0, -1, "")
    first_line = source.strip().splitlines()[0] if source.strip() else ""
    peak_cell = f"cell {index} (+{rise / 1e6:.0f} MB): {first_line[:60]}"
    return Peak(str(path.relative_to(ROOT)), code_cells, time.perf_counter() - start, pid,
                hwm, children, peak_cell)


def mb(n: int) -> str:
    return f"{n / 1e6:8.1f}"


def table(peaks: list[Peak]) -> str:
    width = max(len(p.notebook) for p in peaks)
    head = f"{'notebook':{width}} {'cells':>5} {'secs':>6} {'kernel MB':>9} {'child MB':>8} " \
           f"{'total MB':>8} {'<1 GB':>5}  biggest rise"
    rows = [head, "-" * len(head)]
    for p in peaks:
        rows.append(f"{p.notebook:{width}} {p.cells:5d} {p.seconds:6.1f} {mb(p.kernel_hwm):>9} "
                    f"{mb(p.children_peak):>8} {mb(p.total):>8} "
                    f"{'yes' if p.total < LIMIT_BYTES else 'NO':>5}  {p.peak_cell}")
    return "\n".join(rows)


def main() -> int:
    print(f"Peak resident memory of the kernel per notebook (limit {LIMIT_BYTES / 1e9:.0f} GB, "
          "what Binder guarantees); kernel MB is VmHWM, child MB the sampled peak of the "
          "processes it started.", flush=True)
    peaks = []
    for path in notebooks():
        peaks.append(measure(path))
        print(f"  ran {peaks[-1].notebook} in {peaks[-1].seconds:.1f} s", flush=True)
    print(table(peaks))
    over = [p.notebook for p in peaks if p.total >= LIMIT_BYTES]
    if over:
        print(f"over the limit: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
