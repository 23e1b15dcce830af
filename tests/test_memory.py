"""Every chapter and every assignment solution runs headless, within Binder's 1 GB.

Each notebook runs top to bottom in a fresh kernel through nbclient, with no front end:
a failing cell, or a widget waiting for a front end, fails it. ``bench/memory.py`` does
the measuring: the kernel's ``VmHWM`` plus the sampled peak of any process it starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import memory  # noqa: E402

NOTEBOOKS = memory.notebooks()


def test_there_are_chapters_and_solutions_to_measure():
    kinds = {p.relative_to(ROOT).parts[0] for p in NOTEBOOKS}
    assert kinds == {"chapters", "solutions"}, (
        f"expected notebooks under chapters/ and solutions/, found them under {sorted(kinds)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_runs_headless_with_kernel_peak_memory_under_binders_1_gb(path):
    peak = memory.measure(path)
    print()
    print(memory.table([peak]))
    assert peak.kernel_pid != os.getpid()
    # Python, ipykernel and torch take well over 50 MB: less means the wrong process.
    assert peak.kernel_hwm > 50e6, (
        f"expected the kernel's peak resident memory to be at least 50 MB, read "
        f"{peak.kernel_hwm / 1e6:.1f} MB from /proc/{peak.kernel_pid}/status")
    assert peak.total < memory.LIMIT_BYTES, (
        f"expected {peak.notebook} to run within {memory.LIMIT_BYTES / 1e9:.0f} GB (Binder's "
        f"guarantee); its kernel peaked at {peak.kernel_hwm / 1e6:.0f} MB and the processes "
        f"it started at {peak.children_peak / 1e6:.0f} MB. The largest rise: {peak.peak_cell}")
