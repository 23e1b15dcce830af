"""A kernel that no longer reads its control channel cannot hang the grading worker.

Seen in a red-team batch: a submission that wrote garbage into its kernel's sockets left the
worker blocked for good in ZeroMQ's ``send`` of the shutdown request (a DEALER socket with no
connected peer blocks), until the grader's 900 s limit on the whole submission. The grading
kernel manager gives every send a timeout and, when the request cannot be delivered, kills
the kernel after the usual wait. This test makes the no-peer state on purpose.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time

import pytest
import zmq
from assignment_helpers import ROOT, grading_env

from losslab.grading.kernel import LimitedKernelManager

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is needed to start a grading kernel")


async def _shut_down_with_no_peer_on_control() -> tuple[float, int | None]:
    km = LimitedKernelManager(kernel_name="python3", send_timeout_s=2)
    await km.start_kernel()
    process = km.provisioner.process
    try:
        assert process.poll() is None, "expected the grading kernel to be running"
        # An unconnected DEALER has no peer, as after the kernel cut its side: a plain send
        # on it blocks for ever.
        km._control_socket = km.context.socket(zmq.DEALER)
        start = time.monotonic()
        await km.shutdown_kernel(now=False)
        return time.monotonic() - start, process.poll()
    finally:
        if process.poll() is None:
            process.kill()


def test_shutdown_of_a_kernel_whose_control_channel_has_no_peer_ends_and_kills_it():
    took, exit_code = asyncio.run(_shut_down_with_no_peer_on_control())
    assert took < 20, f"expected the shutdown to give up on the request and end; took {took:.0f} s"
    assert exit_code is not None, "expected the kernel process to be killed"


UNSAFE_KERNEL = """
import asyncio, os
from losslab.grading.kernel import LimitedKernelManager

async def main():
    km = LimitedKernelManager(kernel_name="python3")
    await km.start_kernel()
    try:
        client = km.client()
        client.start_channels()
        await client.wait_for_ready(timeout=120)
        print("READY", km.ip)
        client.stop_channels()
    finally:
        await km.shutdown_kernel(now=True)
        km.release()

asyncio.run(main())
"""


def test_a_kernel_without_the_sandbox_starts_under_a_long_temporary_folder(tmp_path):
    """Without the sandbox a kernel's sockets are files, whose paths hold at most 107 bytes;
    a worker's temporary folder (TMPDIR) inside a long one must not push them past it."""
    deep = tmp_path / ("t" * 40) / "losslab-grade-abcdefgh" / "worker-abcdefgh"
    deep.mkdir(parents=True)
    run = subprocess.run([sys.executable, "-c", UNSAFE_KERNEL], cwd=ROOT,
                         env=grading_env(TMPDIR=str(deep), LOSSLAB_ISOLATION="none"),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "READY" in run.stdout, run.stderr[-2000:]
    ip = run.stdout.split("READY", 1)[1].strip()
    assert len(ip) + len("-10") <= 107, ip
