"""Run student code as a user who cannot write the course's files, when the grader can.

When the grader runs as root (a grading container, typically), kernels and sandboxes switch to
a fresh unprivileged user id before running student code, so that code cannot modify the
repository, the virtualenv, the gradebook, or another student's files. As an ordinary user
that is not possible; :func:`fingerprint` lets the grader at least notice changed grading code.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import stat
import sys
import sysconfig
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _open_to_others(path: Path) -> bool:
    """Whether any user can reach ``path`` (every folder on the way searchable) and read it."""
    path = path.resolve()
    for folder in path.parents:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    mode = path.stat().st_mode
    wanted = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else 0)
    return mode & wanted == wanted


@functools.cache
def can_switch_users() -> bool:
    """Root, and Python, its libraries and the course readable by an unprivileged user."""
    if os.geteuid() != 0 or os.environ.get("LOSSLAB_KEEP_USER") == "1":
        return False
    needed = [Path(sys.executable), Path(sysconfig.get_paths()["stdlib"]),
              Path(sysconfig.get_paths()["purelib"]), PACKAGE]
    return all(_open_to_others(path) for path in needed)


def unprivileged_ids() -> tuple[int, int] | None:
    """A fresh (uid, gid) pair to run student code as, or None when we cannot switch users."""
    if not can_switch_users():
        return None
    number = 61000 + secrets.randbelow(20000)
    return number, number


def give_to(path: Path, ids: tuple[int, int] | None) -> None:
    """Hand ``path`` (and everything below it) to the unprivileged user."""
    if ids is None:
        return
    os.chown(path, *ids)
    if path.is_dir():
        for child in path.rglob("*"):
            os.chown(child, *ids, follow_symlinks=False)


def become(ids: tuple[int, int] | None) -> None:
    """Switch the current process (a child about to exec) to ``ids``."""
    if ids is None:
        return
    os.setgroups([])
    os.setgid(ids[1])
    os.setuid(ids[0])


def fingerprint() -> str:
    """A hash of the grading code, to notice if anything changes it during a run."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
