"""Build the book: ``python -m losslab.build`` (what ``make book`` runs).

Runs Jupyter Book 1 with warnings as errors, so a warning or a failing cell fails the
build; chapters are executed through the cache, so an unchanged chapter is not re-run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(source: Path = ROOT, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    """Build the book in ``source``; return the finished process (output captured)."""
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(source),
        "--warningiserror", "--nitpick", "--keep-going", *(extra or []),
    ]
    return subprocess.run(cmd, cwd=source, text=True, capture_output=True)


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    proc = build(ROOT, argv)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    took = time.perf_counter() - start
    status = "built" if proc.returncode == 0 else "FAILED"
    print(f"book {status} in {took:.1f} s: {ROOT / '_build' / 'html'}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
