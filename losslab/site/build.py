"""Build the book: ``python -m losslab.site.build`` (what ``make book`` runs).

Runs Jupyter Book 1 with warnings as errors, so a warning or a failing cell fails the
build; chapters are executed through the cache, so an unchanged chapter is not re-run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package_digest() -> str:
    """A digest of the shared package's sources: chapters import it, so it is an input."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "losslab").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".js", ".css"}:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def invalidate_stale_cache(build_dir: Path) -> bool:
    """Drop the execution cache when ``losslab`` changed since it was filled.

    Jupyter Book caches a chapter by its own text; a chapter whose text is unchanged but
    whose shared code changed must run again. Returns True when the cache was dropped.
    """
    stamp = build_dir / ".losslab-digest"
    digest = package_digest()
    stale = stamp.is_file() and stamp.read_text() != digest
    if stale or not stamp.is_file():
        # Both caches go: the executed notebooks, and Sphinx's record of which pages are
        # up to date (or it would keep the pages made with the old package).
        shutil.rmtree(build_dir / ".jupyter_cache", ignore_errors=True)
        shutil.rmtree(build_dir / ".doctrees", ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return stale


def sync_static(source: Path, static: Path) -> int:
    """Make the site's copies of ``source`` files equal to them; return how many changed.

    Sphinx keeps a static file that already exists in the output, and copies none when no
    page is out of date, so a changed widget or style file would not reach the site.
    """
    changed = 0
    for src in source.rglob("*"):
        if not src.is_file() or src.name.startswith("."):
            continue
        dst = static / src.relative_to(source)
        if dst.is_file() and dst.stat().st_size == src.stat().st_size \
                and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        changed += 1
    return changed


def build(source: Path = ROOT, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    """Build the book in ``source``; return the finished process (output captured)."""
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(source),
        "--warningiserror", "--nitpick", "--keep-going", *(extra or []),
    ]
    return subprocess.run(cmd, cwd=source, text=True, capture_output=True)


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    if invalidate_stale_cache(ROOT / "_build"):
        print("losslab changed: chapters will run again")
    proc = build(ROOT, argv)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode == 0:
        synced = sync_static(ROOT / "site_assets", ROOT / "_build" / "html" / "_static")
        if synced:
            print(f"refreshed {synced} static files the build had kept from before")
    took = time.perf_counter() - start
    status = "built" if proc.returncode == 0 else "FAILED"
    print(f"book {status} in {took:.1f} s: {ROOT / '_build' / 'html'}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
