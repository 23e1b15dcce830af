"""Cross-entropy at scale: bytes, time and memory as B and C grow; low precision; chunking.

Everything here measures or computes; nothing is typed in. Functions take a ``device``
so the same code runs on CUDA when the page is built on a GPU machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

CeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tensor_bytes(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype``: elements times element size."""
    return int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()


# --- the forms of cross-entropy compared -----------------------------------------------------

def ce_fused(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy``: one call, PyTorch picks the kernels."""
    return F.cross_entropy(logits, target)


def ce_log_softmax_gather(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Written out: ``log_softmax``, pick the target's entry, negate, average."""
    return -F.log_softmax(logits, dim=1).gather(1, target[:, None]).mean()


def ce_softmax_log(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Written out the fragile way: ``softmax``, then ``log``, then pick; two (B, C) tensors."""
    return -torch.log(F.softmax(logits, dim=1)).gather(1, target[:, None]).mean()


def chunked_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                          chunk_size: int = 16) -> torch.Tensor:
    """Mean cross-entropy computed ``chunk_size`` rows at a time, each chunk checkpointed.

    Equal to ``F.cross_entropy(logits, target)`` in value and gradient. Only one chunk's
    log-probabilities exist at a time: the backward pass recomputes them per chunk instead
    of keeping a (B, C) tensor alive between forward and backward.
    """
    total = logits.new_zeros(())
    # split, not indexing: its backward joins the chunks' gradients once, where each
    # indexed slice would scatter into a fresh zero tensor of the full (B, C) shape.
    for z, t in zip(logits.split(chunk_size), target.split(chunk_size)):
        total = total + checkpoint(_ce_sum, z, t, use_reentrant=False)
    return total / logits.shape[0]


def _ce_sum(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="sum")


VARIANTS: dict[str, CeFn] = {
    "F.cross_entropy": ce_fused,
    "log_softmax + gather": ce_log_softmax_gather,
    "softmax, log, gather": ce_softmax_log,
    "chunked, checkpointed": chunked_cross_entropy,
}


# --- measuring -------------------------------------------------------------------------------

def saved_for_backward(fn: CeFn, logits: torch.Tensor, target: torch.Tensor) -> int:
    """Bytes autograd keeps between forward and backward, beyond the logits themselves.

    Counts each storage once (several saved tensors may share one). Returns bytes.
    """
    seen: dict[int, int] = {}
    skip = {logits.untyped_storage().data_ptr(), target.untyped_storage().data_ptr()}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    z = logits.detach().requires_grad_(True)
    skip.add(z.untyped_storage().data_ptr())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(z, target)
    return sum(seen.values())


def peak_cuda_bytes(fn: CeFn, logits: torch.Tensor, target: torch.Tensor) -> int:
    """Peak CUDA memory allocated by a forward and backward, above what existed before."""
    z = logits.detach().requires_grad_(True)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn(z, target).backward()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def time_forward_backward(fn: CeFn, logits: torch.Tensor, target: torch.Tensor,
                          repeats: int = 3) -> float:
    """Median seconds of one forward and backward, after one untimed warm-up run."""
    cuda = logits.is_cuda
    times = []
    for i in range(repeats + 1):
        z = logits.detach().requires_grad_(True)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(z, target).backward()
        if cuda:
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def scale_table(batch_sizes, class_counts, device: torch.device | None = None,
                variants: dict[str, CeFn] | None = None, repeats: int = 3,
                seed: int = 0) -> list[dict]:
    """Time and memory of each cross-entropy variant over a grid of B and C on ``device``.

    Returns one dict per (B, C, variant): ``B``, ``C``, ``variant``, ``ms`` (median forward
    and backward), ``saved_MB`` (kept for backward beyond the logits), ``logits_MB`` and,
    on CUDA, ``peak_MB`` (peak extra memory of forward and backward).
    """
    device = device or default_device()
    variants = variants or VARIANTS
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for b in batch_sizes:
        for c in class_counts:
            logits = torch.randn(b, c, generator=gen).to(device)
            target = torch.randint(0, c, (b,), generator=gen).to(device)
            for name, fn in variants.items():
                row = {
                    "B": b, "C": c, "variant": name,
                    "ms": 1e3 * time_forward_backward(fn, logits, target, repeats),
                    "saved_MB": saved_for_backward(fn, logits, target) / 1e6,
                    "logits_MB": tensor_bytes((b, c), logits.dtype) / 1e6,
                }
                if device.type == "cuda":
                    row["peak_MB"] = peak_cuda_bytes(fn, logits, target) / 1e6
                rows.append(row)
            del logits, target
    return rows


def training_memory(batch_size: int, hidden: int = 1024, num_classes: int = 50_000,
                    dtype: torch.dtype = torch.float32) -> dict[str, int]:
    """Bytes of an output layer ``Linear(hidden, num_classes)`` trained with Adam and CE.

    Parameters, their gradients and Adam's two moment buffers do not depend on the batch;
    the logits, the saved log-probabilities and the logits' gradient are (B, C) each.
    """
    params = tensor_bytes((hidden * num_classes + num_classes,), dtype)
    per_batch = tensor_bytes((batch_size, num_classes), dtype)
    return {
        "parameters": params,
        "gradients": params,
        "Adam moments": 2 * params,
        "logits": per_batch,
        "log-probabilities": per_batch,
        "gradient of the logits": per_batch,
    }


# --- low precision ---------------------------------------------------------------------------

PRECISION_CLASSES = [10, 1000, 10_000]
PRECISION_MARGINS = torch.linspace(0.0, 16.0, 161, dtype=torch.float64)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def margin_ce(num_classes: int, dtype: torch.dtype):
    """CE and d CE / d m for logits [m, 0, ..., 0] (target 0) computed in ``dtype``.

    Returns two float64 arrays over ``PRECISION_MARGINS``.
    """
    m = PRECISION_MARGINS.to(dtype).requires_grad_(True)
    rest = torch.zeros(len(PRECISION_MARGINS), num_classes - 1, dtype=dtype)
    logits = torch.cat([m[:, None], rest], dim=1)
    loss = F.cross_entropy(logits, torch.zeros(len(m), dtype=torch.long), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), m)
    return loss.detach().double().numpy(), grad.double().numpy()
