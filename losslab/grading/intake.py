"""Intake: find the submissions to grade, safely unpack LMS zips, choose each student's notebook.

A submission is a folder ``<submissions>/<student>/<assignment>/`` holding the student's
notebook, or a notebook in an LMS download (a zip of renamed files) that is unpacked here under
caps on members, sizes and compression. :func:`choose_notebook` accepts the names browsers give
a second download; :func:`check_notebook` says, in an instructor's words, why a file cannot be
graded. Nothing here runs student code.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .checks import ASSIGNMENTS
from .settings import (
    MAX_ARCHIVE_BYTES,
    MAX_ARCHIVE_MEMBERS,
    MAX_COMPRESSION_RATIO,
    MAX_NOTEBOOK_BYTES,
    MIN_BOMB_BYTES,
    GradingInputError,
)

# Canvas-style download names: <student>_[LATE_]<numbers>_<original name>.ipynb
DEFAULT_ZIP_REGEXP = (
    r"(?:.*/)?(?P<student_id>[A-Za-z0-9.-]+)_(?:LATE_)?(?:\d+_)*"
    r"(?P<file_id>[A-Za-z_]+)(?:-\d+)?\.ipynb$"
)
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Job:
    """One submission: a student's folder for one assignment."""

    student: str
    assignment: str
    folder: Path


def _listing(folder: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def find_submissions(folder: Path, assignment: str | None = None) -> list[Job]:
    """Submissions laid out as nbgrader's ``submitted/<student>/<assignment>/*.ipynb``."""
    if not folder.exists():
        raise GradingInputError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise GradingInputError(
            f"expected a folder of submissions (<student>/<assignment>/<notebook>.ipynb), "
            f"got a file: {folder}"
        )
    if assignment is not None and assignment not in ASSIGNMENTS:
        raise GradingInputError(
            f"unknown assignment {assignment!r}; expected one of {', '.join(ASSIGNMENTS)}"
        )
    wanted = (assignment,) if assignment else ASSIGNMENTS
    jobs = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        if student.name.startswith(".") or not STUDENT_ID.match(student.name):
            continue
        for name in wanted:
            if (student / name).is_dir():
                jobs.append(Job(student.name, name, student / name))
    if not jobs:
        looked_for = assignment or "one of " + ", ".join(ASSIGNMENTS)
        raise GradingInputError(
            f"found no submissions in {folder}: expected <student>/<assignment>/ folders with "
            f"<assignment> {looked_for}; the folder holds {_listing(folder)}"
        )
    return jobs


class ArchiveError(Exception):
    """One LMS download could not be used; the message says why (it fails that student only)."""


def _private_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: list[int]) -> bytes:
    """A member's bytes, counting what is really inflated (never the header's claims)."""
    if member.flag_bits & 0x1:
        raise ArchiveError(f"{member.filename!r} is encrypted")
    with archive.open(member) as handle:
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ArchiveError(f"{member.filename!r} is larger than "
                           f"{MAX_NOTEBOOK_BYTES >> 20} MiB uncompressed")
    if len(data) > MIN_BOMB_BYTES and len(data) > MAX_COMPRESSION_RATIO * max(member.compress_size,
                                                                          1):
        raise ArchiveError(f"{member.filename!r} is compressed more than "
                           f"{MAX_COMPRESSION_RATIO}:1 (a zip bomb?)")
    budget[0] -= len(data)
    if budget[0] < 0:
        raise ArchiveError(f"the archive unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return data


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ArchiveError(f"it holds {len(members)} files, more than {MAX_ARCHIVE_MEMBERS}")
    return members


def _student_notebook(data: bytes, assignment: str) -> bytes:
    """The notebook in one student's own zip: the member named ``<assignment>.ipynb``, else the
    only notebook. Member names are never used as paths, nor to say whose work it is."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ArchiveError("it is not a valid zip file") from error
    with archive:
        budget = [MAX_ARCHIVE_BYTES]
        notebooks = [m for m in _members(archive) if m.filename.endswith(".ipynb")
                     and not any(part.startswith((".", "__MACOSX"))
                                 for part in m.filename.replace("\\", "/").split("/"))]
        named = [m for m in notebooks if m.filename.replace("\\", "/").rsplit("/", 1)[-1]
                 == f"{assignment}.ipynb"]
        chosen = named or notebooks
        if len(chosen) != 1:
            raise ArchiveError(f"expected one notebook ({assignment}.ipynb) in the zip, found "
                               f"{len(notebooks)}")
        return _read_member(archive, chosen[0], budget)


def collect_zips(downloads: Path, assignment: str, course: Path,
                 regexp: str) -> tuple[Path, list[tuple[str, str]]]:
    """Turn an LMS download (zip files and/or notebooks) into ``course/submitted/``.

    Whose work a file is comes from the name the LMS gave it (``regexp``, group
    ``student_id``): a notebook or zip in ``downloads``, or a member of the LMS's own bulk zip.
    A student's own zip is opened one level deep and only its notebook is taken. Nothing is
    extracted with ``extractall``: files are written by this process, mode 0600, under names it
    makes. Returns the submitted folder and ``(student or file name, reason)`` for every
    download that could not be used; each of those fails alone.
    """
    if not downloads.is_dir():
        raise GradingInputError(f"expected a folder of LMS downloads, got {downloads}")
    archives = sorted(p for p in downloads.iterdir() if p.suffix in (".zip", ".ipynb"))
    if not archives:
        raise GradingInputError(
            f"expected .zip or .ipynb files in {downloads}; it holds {_listing(downloads)}"
        )
    try:
        pattern = re.compile(regexp)
    except re.error as error:
        raise GradingInputError(f"--zip-regexp {regexp!r} is not a regular expression: {error}")
    submitted = course / "submitted"
    submitted.mkdir(parents=True, exist_ok=True, mode=0o700)
    rejected: list[tuple[str, str]] = []
    found: dict[str, bytes] = {}

    def student_of(name: str) -> str | None:
        match = pattern.match(name[:-4] + ".ipynb" if name.endswith(".zip") else name)
        student = match.groupdict().get("student_id") if match else None
        return student if student and STUDENT_ID.match(student) else None

    def take(name: str, read) -> None:
        student = student_of(name)
        if student is None:
            rejected.append((f"?{name}", f"the file name {name!r} does not match {regexp!r}, "
                                         "so it is not known whose work it is"))
            return
        try:
            data = read()
            if name.endswith(".zip"):
                data = _student_notebook(data, assignment)
            found[student] = data
            rejected[:] = [(s, r) for s, r in rejected if s != student]
        except (ArchiveError, OSError, zipfile.BadZipFile, RuntimeError, EOFError,
                ValueError) as error:
            rejected.append((student, f"{name}: {error}"))

    for path in archives:
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            rejected.append((student_of(path.name) or f"?{path.name}",
                             f"{path.name} is larger than {MAX_ARCHIVE_BYTES >> 20} MiB"))
            continue
        if path.suffix == ".ipynb" or student_of(path.name) is not None:
            take(path.name, lambda path=path: _read_capped(path))
            continue
        # The LMS's own bulk download: its member names are the LMS's, one per student.
        try:
            with zipfile.ZipFile(path) as bulk:
                budget = [MAX_ARCHIVE_BYTES * 4]
                for member in _members(bulk):
                    name = member.filename.replace("\\", "/").rsplit("/", 1)[-1]
                    if name.endswith((".ipynb", ".zip")) and not name.startswith("."):
                        take(name, lambda m=member: _read_member(bulk, m, budget))
        except (ArchiveError, zipfile.BadZipFile, OSError) as error:
            rejected.append((f"?{path.name}", f"{path.name}: {error}"))
    for student, data in sorted(found.items()):
        _private_write(submitted / student / assignment / f"{assignment}.ipynb", data)
    return submitted, rejected


def _read_capped(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveError(f"it is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return data


# What browsers and Jupyter add to a second copy of a file: "focal_loss (1).ipynb",
# "focal_loss(2).ipynb", "focal_loss-1.ipynb", "focal_loss_1.ipynb", "focal_loss-Copy1.ipynb".
COPY_SUFFIX = r"(?: ?\(\d{1,3}\)|[-_]\d{1,3}|-[Cc]opy\d{0,3}| [Cc]opy(?: \d{1,3})?)"


def choose_notebook(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The notebook to grade in a student's folder, and a note (or, with no notebook, the
    reason): ``<assignment>.ipynb``; else the one copy of it under a browser's copy name;
    else the only notebook in the folder."""
    notebooks = sorted(p for p in folder.glob("*.ipynb")
                       if p.is_file() and not p.is_symlink() and not p.name.startswith("."))
    expected = f"{assignment}.ipynb"
    names = ", ".join(p.name for p in notebooks[:8]) + (", ..." if len(notebooks) > 8 else "")
    others = f"; also handed in, not graded: {names}" if len(notebooks) > 1 else ""
    exact = [p for p in notebooks if p.name == expected]
    if exact:
        rest = [p.name for p in notebooks if p.name != expected]
        return exact[0], (f"also handed in, not graded: {', '.join(rest[:8])}" if rest else "")
    if not notebooks:
        return None, f"no notebook in {folder} (expected {expected})"
    copies = [p for p in notebooks
              if re.fullmatch(re.escape(assignment) + COPY_SUFFIX + r"\.ipynb", p.name)]
    if len(copies) == 1:
        return copies[0], f"graded {copies[0].name} as {expected} (a copy's name){others}"
    if len(notebooks) == 1:
        return notebooks[0], (f"graded {notebooks[0].name}, the only notebook in the folder, "
                              f"as {expected}")
    return None, (f"expected {expected} (or one copy of it, such as '{assignment} (1).ipynb'); "
                  f"found {len(notebooks)} notebooks: {names}")


def check_notebook(data: bytes) -> str:
    """Empty when ``data`` is a notebook file nbgrader can read; else what is wrong with it,
    in words an instructor can act on."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the notebook is not UTF-8 text (byte {error.start} is not)"
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return (f"the notebook is not valid JSON at line {error.lineno}, column {error.colno} "
                f"({error.msg})")
    except RecursionError:
        return "the notebook is not valid JSON (it nests too deeply)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - whatever nbformat says about the file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"the file is not a Jupyter notebook nbformat can read ({first[:200]})"
    return ""
