"""The submission's notebook runs: nbgrader's steps that restore it and run it in the sandbox.

- :class:`RestoreMissingCells` puts back read-only and graded cells a student deleted;
- :class:`LimitedKernelManager` starts each kernel inside bubblewrap (:mod:`.sandbox`) and
  closes everything of it when the notebook has run;
- :class:`RobustExecute` runs the notebook in that kernel, skips the graded test cells (the
  judge decides them, :class:`.judge.JudgeTestCells`), stops at the first cell that does not
  finish, and survives a kernel that dies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Integer, default

from . import processes, sandbox
from .cells import is_test_cell
from .processes import beat
from .settings import (
    CPU_SECONDS,
    KERNEL_MEMORY_MB,
    KERNEL_MESSAGE_MB,
    KERNEL_SEND_SECONDS,
    MAX_OUTPUT_BYTES,
    REAP_SECONDS,
    STUDENT_SLACK_SECONDS,
    Limits,
)


class LimitedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run inside bubblewrap (see :mod:`.sandbox`).

    The kernel talks to nbclient over ZeroMQ ``ipc`` sockets (there is no network inside) in
    a bounded tmpfs of the sandbox (``sandbox.KERNEL_RUN``), which the host reaches through
    ``/proc/PID/root`` and which goes away with the sandbox; the kernel can write no host
    folder, and reads its connection file from a read-only bind. Its stdout and stderr go to
    /dev/null, never to the grading worker's streams.

    Every ZeroMQ socket of the kernel (the manager's control socket and the client's channels)
    comes from one of two contexts this manager creates, whose sockets start with a linger of 0
    (jupyter_client then bounds its own to at most 1 s): a message queued for a kernel that is
    gone (it exited, removed its socket files, or left a detached child holding them) never
    keeps ``term()`` waiting. :meth:`release` stops the client's channels, closes every socket
    with zero linger, destroys both contexts, kills what is left of the kernel and removes its
    folder: nothing is left to the garbage collector, which would otherwise finalize a context
    while its sockets are still open and block in ``term()`` for ever, inside whatever code of
    a later submission happened to allocate.
    """

    memory_mb = Integer(KERNEL_MEMORY_MB, help="Limit on the kernel's memory, in MiB.").tag(
        config=True
    )
    cpu_seconds = Integer(CPU_SECONDS, help="Limit on the kernel's CPU time, in seconds.").tag(
        config=True
    )
    max_message_mb = Integer(
        KERNEL_MESSAGE_MB, help="Largest message the kernel may send, in MiB."
    ).tag(config=True)
    send_timeout_s = Integer(
        KERNEL_SEND_SECONDS,
        help="Seconds a message to the kernel may wait for a reader before it fails.",
    ).tag(config=True)

    def _socket_defaults(self, context: zmq.Context) -> zmq.Context:
        """Options every socket made from ``context`` starts with."""
        # Closing a socket drops what it could not deliver: term() never waits on a kernel.
        context.setsockopt(zmq.LINGER, 0)
        # A message larger than this closes the connection instead of filling our memory.
        context.setsockopt(zmq.MAXMSGSIZE, self.max_message_mb * 1024 * 1024)
        # A send to a kernel that cut or removed its sockets has no peer and would block
        # for ever; after this long it raises zmq.Again instead.
        context.setsockopt(zmq.SNDTIMEO, self.send_timeout_s * 1000)
        return context

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return self._socket_defaults(zmq.asyncio.Context())

    def client(self, **kwargs):
        """A client whose channels use a context of this manager's (linger 0, closed by
        :meth:`release`) instead of one it would leave to the garbage collector."""
        if "context" not in kwargs:
            context = self._socket_defaults(zmq.asyncio.Context())
            self._client_contexts = [*getattr(self, "_client_contexts", []), context]
            kwargs["context"] = context
        client = super().client(**kwargs)
        self._clients = [*getattr(self, "_clients", []), client]
        return client

    def release(self) -> None:
        """Kill what is left of the kernel and close every socket, context and folder of it.

        Safe to call more than once, and after nbclient's own cleanup."""
        process = getattr(getattr(self, "provisioner", None), "process", None)
        if (process is not None and process.poll() is None
                and not processes.kill_group(process, wait=REAP_SECONDS)):
            self.log.warning("the kernel process %s did not end after SIGKILL", process.pid)
        for client in getattr(self, "_clients", []):
            # Joins the heartbeat thread before its socket is closed under it.
            try:
                client.stop_channels()
            except Exception as error:  # noqa: BLE001 - the contexts below close them anyway
                self.log.warning("stopping a kernel client's channels failed: %r", error)
        self._clients = []
        socket = getattr(self, "_control_socket", None)
        if socket is not None and not socket.closed:
            socket.close(linger=0)
        self._control_socket = None
        for context in [*getattr(self, "_client_contexts", []), self.context]:
            if not context.closed:
                context.destroy(linger=0)
        self._client_contexts = []
        sockets = getattr(self, "_sockets", None)
        if sockets:
            shutil.rmtree(sockets, ignore_errors=True)

    async def _async_pre_start_kernel(self, **kw):
        sandbox.require()
        unsafe = sandbox.mode() == sandbox.UNSAFE
        # Without the sandbox the kernel's sockets are files in this folder, and a socket's path
        # holds at most 107 bytes: the folder goes straight under /tmp, not under a worker's
        # (longer) temporary folder. In the sandbox they are on its own tmpfs.
        self._sockets = tempfile.mkdtemp(prefix="losslab-kernel-",
                                         dir="/tmp" if unsafe and os.path.isdir("/tmp") else None)
        self.transport = "ipc"
        self.ip = os.path.join(self._sockets, "k")
        if not unsafe:
            self.ip = f"{sandbox.KERNEL_RUN}/k"
        self.connection_file = os.path.join(self._sockets, "kernel.json")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_request_shutdown(self, restart: bool = False) -> None:
        try:
            await super()._async_request_shutdown(restart=restart)
        except zmq.Again:
            # Nothing takes the request (the kernel closed or deleted its control socket):
            # the shutdown goes on, and the process is killed after the usual wait.
            self.log.warning("the kernel did not take the shutdown request; it will be killed")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        limits = Limits(memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds)
        if sandbox.mode() == sandbox.UNSAFE:
            kw["env"] = processes.unsafe_student_env(kw.get("env"))
        else:
            launch = sandbox.command(
                list(kernel_cmd), ro_binds=[(self.connection_file, self.connection_file)],
                limits=limits, scratch=(sandbox.KERNEL_RUN,))
            if launch.ids is not None:
                # The kernel's (unprivileged) host user reads its connection file.
                os.chown(self.connection_file, *launch.ids)
            kernel_cmd = launch.argv
            kw["env"] = processes.bwrap_env()
            kw["cwd"] = "/"
        kw["preexec_fn"] = sandbox.preexec(limits)
        await super()._async_launch_kernel(kernel_cmd, **self._quiet(kw))
        if sandbox.mode() != sandbox.UNSAFE:
            # The connection file is written; from now on this side (the manager and every
            # client it makes) connects to the sockets inside the sandbox.
            root = sandbox.sandbox_root(self.provisioner.process.pid)
            self.ip = f"{root}{sandbox.KERNEL_RUN}/k"

    @staticmethod
    def _quiet(kw: dict) -> dict:
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = subprocess.DEVNULL
        return kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        sockets = getattr(self, "_sockets", None)
        if sockets and not restart:
            shutil.rmtree(sockets, ignore_errors=True)


class RobustExecute(Execute):
    """Execute that never lets one submission stop the grading run."""

    skip_test_cells = Bool(
        True, help="Do not run graded test cells in the kernel (JudgeTestCells decides them)."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._stopped: str | None = None
        self._managers: list = []

    def create_kernel_manager(self):
        manager = super().create_kernel_manager()
        self._managers.append(manager)
        return manager

    max_output_bytes = Integer(
        MAX_OUTPUT_BYTES, help="Output kept per cell; the rest is dropped with a note."
    ).tag(config=True)

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_output_bytes`` of output per cell, whatever the kernel prints."""
        size = len(json.dumps(msg.get("content", {}), default=str))
        before = self._output_bytes.get(cell_index, 0)
        used = before + size
        self._output_bytes[cell_index] = used
        room = self.max_output_bytes - before
        if used > self.max_output_bytes and msg["msg_type"] == "stream" and room > 0:
            # Keep the start of a long print, then the note.
            content = dict(msg["content"], text=str(msg["content"].get("text", ""))[:room])
            super().output(outs, dict(msg, content=content), display_id, cell_index)
        if used > self.max_output_bytes:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(NotebookNode(
                    output_type="stream", name="stderr",
                    text=f"[output truncated: this cell printed more than "
                         f"{self.max_output_bytes // 1024} KiB]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()
        # Starting the kernel: bounded by nbclient's startup timeout.
        beat("student", self.startup_timeout + STUDENT_SLACK_SECONDS)
        try:
            return super().preprocess(nb, resources, km=km)
        except DeadKernelError:
            self._note_stop(nb, "The Python kernel died (the code may have called os._exit or "
                                "used too much memory); later cells were not run.")
        except Exception as error:  # noqa: BLE001 - grading goes on whatever the notebook does
            self._note_stop(nb, f"Running the notebook stopped: {type(error).__name__}; "
                                "later cells were not run.")
        finally:
            # Whatever nbclient managed to clean up, nothing of this kernel outlives it.
            for manager in self._managers:
                release = getattr(manager, "release", None)
                if release is not None:
                    release()
            self._managers = []
            beat("grader")
        return nb, resources

    def _note_stop(self, nb, text: str) -> None:
        self.log.warning(text)
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.get("execution_count") is None:
                if not is_test_cell(cell):
                    cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
                    break

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self.skip_test_cells and is_test_cell(cell):
            return cell, resources
        if self._stopped:
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=self._stopped)]
            return cell, resources
        # A cell's limit, then the interrupt's; past that the worker itself is stuck.
        beat("student", 2 * (self.timeout or 0) + STUDENT_SLACK_SECONDS)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        finally:
            beat("grader")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "CellTimeoutError":
                # A kernel that ignores the interrupt would make every later cell wait too.
                self._stopped = (f"Not run: an earlier cell did not finish within "
                                 f"{self.timeout} seconds.")
        return cell, resources


class RestoreMissingCells(NbGraderPreprocessor):
    """Put back the read-only and graded cells a student deleted, at their place in the source.

    Runs before nbgrader's OverwriteCells (whose own ``add_missing_cells`` fails when the cell
    before a deleted test cell is a read-only markdown cell).
    """

    def preprocess(self, nb, resources):
        gradebook = Gradebook(resources["nbgrader"]["db_url"])
        with gradebook:
            source_nb = gradebook.find_notebook(
                resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"]
            )
            graded = {cell.name: cell for cell in source_nb.grade_cells}
            solutions = {cell.name for cell in source_nb.solution_cells}
            present = {
                cell.metadata["nbgrader"]["grade_id"]
                for cell in nb.cells
                if "nbgrader" in cell.metadata and "grade_id" in cell.metadata["nbgrader"]
            }
            previous = None
            for source_cell in source_nb.source_cells:
                name = source_cell.name
                if name not in present and (source_cell.locked or name in graded):
                    if name in graded:
                        cell = OverwriteCells().missing_cell_transform(
                            source_cell, graded[name].max_score, is_solution=name in solutions
                        )
                    else:
                        cell = self._locked_cell(source_cell)
                    nb.cells.insert(self._index_after(nb, previous), cell)
                    present.add(name)
                    self.log.warning("Put back the deleted cell %s", name)
                previous = name
        return nb, resources

    @staticmethod
    def _index_after(nb, grade_id: str | None) -> int:
        if grade_id is None:
            return 0
        for index, cell in enumerate(nb.cells):
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                return index + 1
        return len(nb.cells)

    @staticmethod
    def _locked_cell(source_cell) -> NotebookNode:
        metadata = {
            "deletable": False,
            "editable": False,
            "nbgrader": {
                "grade": False, "solution": False, "locked": True, "task": False,
                "grade_id": source_cell.name, "schema_version": 3,
                "checksum": source_cell.checksum,
            },
        }
        cell = NotebookNode(cell_type=source_cell.cell_type, metadata=metadata,
                            source=source_cell.source)
        if source_cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        return cell
