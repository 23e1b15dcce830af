"""Cross-entropy at scale: bytes, time and memory as B and C grow; low precision; chunking.

Everything here measures or computes; nothing is typed in. Functions take a ``device``
so the same code runs on CUDA when the page is built on a GPU machine.
"""

from __future__ import annotations

import contextlib
import os
import sys
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
                          min_run_time: float = 0.2) -> dict[str, float]:
    """Time one forward and backward with ``torch.utils.benchmark``: see ``benchmark_ms``."""
    def step():
        fn(logits.detach().requires_grad_(True), target).backward()
    return benchmark_ms(step, min_run_time)


def scale_table(batch_sizes, class_counts, device: torch.device | None = None,
                variants: dict[str, CeFn] | None = None, min_run_time: float = 0.2,
                seed: int = 0, timed: bool = True) -> list[dict]:
    """Time and memory of each cross-entropy variant over a grid of B and C on ``device``.

    Returns one dict per (B, C, variant): ``B``, ``C``, ``variant``, ``ms`` (median forward
    and backward, ``torch.utils.benchmark``), ``iqr_ms`` and ``runs`` (these three only when
    ``timed``), ``saved_MB`` (kept for backward beyond the logits), ``logits_MB`` and,
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
                    "saved_MB": saved_for_backward(fn, logits, target) / 1e6,
                    "logits_MB": tensor_bytes((b, c), logits.dtype) / 1e6,
                }
                if timed:
                    timing = time_forward_backward(fn, logits, target, min_run_time)
                    row.update(ms=timing["median_ms"], iqr_ms=timing["iqr_ms"],
                               runs=timing["runs"])
                if device.type == "cuda":
                    row["peak_MB"] = peak_cuda_bytes(fn, logits, target) / 1e6
                rows.append(row)
            del logits, target
    return rows


def training_memory(batch_size: int, hidden: int = 1024, num_classes: int = 50_000,
                    dtype: torch.dtype = torch.float32) -> dict[str, int]:
    """Bytes of an output layer ``Linear(hidden, num_classes)`` trained with Adam and CE.

    Parameters, their gradients and Adam's two moment buffers do not depend on the batch.
    At the end of the loss's backward pass four (B, C) tensors are alive, as the scale
    chapter measures with the profiler: the logits, the log-probabilities saved for
    backward, the gradient of the log-probabilities (``nll_loss_backward``) and the
    gradient of the logits (``_log_softmax_backward_data``).
    """
    params = tensor_bytes((hidden * num_classes + num_classes,), dtype)
    per_batch = tensor_bytes((batch_size, num_classes), dtype)
    return {
        "parameters": params,
        "gradients": params,
        "Adam moments": 2 * params,
        "logits": per_batch,
        "log-probabilities": per_batch,
        "gradient of the log-probabilities": per_batch,
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
    m = PRECISION_MARGINS.to(dtype).detach().clone().requires_grad_(True)
    rest = torch.zeros(len(PRECISION_MARGINS), num_classes - 1, dtype=dtype)
    logits = torch.cat([m[:, None], rest], dim=1)
    loss = F.cross_entropy(logits, torch.zeros(len(m), dtype=torch.long), reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), m)
    return loss.detach().double().numpy(), grad.double().numpy()


# --- measured peaks and timings with spread --------------------------------------------------

def profiled_peak_bytes(step: Callable[[], object], min_bytes: int = 1_000_000,
                        largest: bool = False) -> tuple[int, dict[str, int]]:
    """Peak CPU memory allocated while ``step()`` runs, from ``torch.profiler``.

    The profiler attributes every allocation and free to the operator that made it. Each
    operator's allocations are counted from its start and its frees from its end, and the
    running total's maximum is returned with the bytes each operator allocated
    (``{name: bytes}``, operators that allocated at least ``min_bytes``; with
    ``largest=True``, each operator's largest single allocation instead of its total).
    Memory that existed before ``step`` (its inputs) is not counted.
    """
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_logs(), profile(activities=[ProfilerActivity.CPU],
                                       profile_memory=True) as prof:
        step()
    changes = []
    allocated: dict[str, int] = {}
    for event in prof.events():
        delta = event.self_cpu_memory_usage
        if delta > 0:
            changes.append((event.time_range.start, delta))
            if delta >= min_bytes:
                before = allocated.get(event.name, 0)
                allocated[event.name] = max(before, delta) if largest else before + delta
        elif delta < 0:
            changes.append((event.time_range.end, delta))
    total = peak = 0
    for _, delta in sorted(changes, key=lambda c: (c[0], -c[1])):
        total += delta
        peak = max(peak, total)
    return peak, allocated


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def return_large_blocks_to_the_os(threshold: int = 1 << 20) -> bool:
    """Have glibc serve every block of ``threshold`` bytes or more with its own mmap, for good.

    glibc raises its mmap threshold each time it frees a large mmapped block; after that,
    freed (B, C) tensors stay inside the heap, and a page that measures many sizes grows by
    hundreds of MB it never gives back. Fixing the threshold returns each large tensor's
    pages to the system when it is freed. It changes no allocation the profiler counts.
    Returns False where the allocator is not glibc's (nothing is changed then).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


@contextlib.contextmanager
def _quiet_native_logs():
    """Send file descriptors 1 and 2 to /dev/null: the profiler's native logger prints a line
    at each start and stop, straight to the descriptors, which would land in the page."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def benchmark_ms(step: Callable[[], object], min_run_time: float = 0.3) -> dict[str, float]:
    """Time ``step()`` with ``torch.utils.benchmark`` (warm-up, blocks of runs, CUDA-synced).

    Returns ``median_ms``, ``iqr_ms`` (interquartile range of the per-block times) and
    ``runs`` (how many times ``step`` ran).
    """
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    timer.timeit(1)  # warm-up, outside the measurement
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return {"median_ms": 1e3 * m.median, "iqr_ms": 1e3 * m.iqr,
            "runs": m.number_per_run * len(m.times)}


# --- the output layer and the loss together --------------------------------------------------

def linear_ce_unfused(hidden: torch.Tensor, weight: torch.Tensor,
                      target: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(F.linear(hidden, weight), target)``: the full (B, C) logits exist."""
    return F.cross_entropy(F.linear(hidden, weight), target)


def linear_ce_hand_chunked(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                           chunk_size: int = 128) -> torch.Tensor:
    """Linear layer and cross-entropy ``chunk_size`` rows at a time, each chunk checkpointed.

    ``hidden``: (B, H); ``weight``: (C, H); ``target``: (B,) long. Only one chunk's logits
    exist at a time, in the forward pass and again when the backward recomputes them.
    Returns the mean loss, equal to ``linear_ce_unfused`` in value and gradients.
    """
    total = hidden.new_zeros(())
    for h, t in zip(hidden.split(chunk_size), target.split(chunk_size)):
        total = total + checkpoint(_linear_ce_sum, h, weight, t, use_reentrant=False)
    return total / hidden.shape[0]


def _linear_ce_sum(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor):
    return F.cross_entropy(F.linear(hidden, weight), target, reduction="sum")


def linear_ce_library(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                      batch_chunk_size: int | None = None) -> torch.Tensor:
    """``F.linear_cross_entropy``: its reference path, or its chunked path when
    ``batch_chunk_size`` is given (``nn.LinearCrossEntropyOptions(batch_chunk_size=...)``).
    """
    options = None
    if batch_chunk_size is not None:
        options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=batch_chunk_size)
    return F.linear_cross_entropy(hidden, weight, target, options=options)


def linear_ce_comparison(batch: int = 512, hidden: int = 64, num_classes: int = 10_000,
                         chunk_size: int = 128, min_run_time: float = 0.3,
                         seed: int = 0) -> list[dict]:
    """Loss, gradients, measured peak memory and time of the four output-layer forms.

    Returns one dict per form: ``form``, ``loss``, ``max_grad_diff`` (largest difference of
    the weight's gradient from the unfused form's), ``peak_MB`` (``profiled_peak_bytes``
    of forward and backward), ``median_ms``, ``iqr_ms`` and ``runs``.
    """
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, hidden, generator=gen)
    w = torch.randn(num_classes, hidden, generator=gen) * 0.05
    t = torch.randint(0, num_classes, (batch,), generator=gen)
    forms = {
        "F.cross_entropy(F.linear(...))": linear_ce_unfused,
        "hand-chunked, checkpointed": lambda a, b, c: linear_ce_hand_chunked(a, b, c, chunk_size),
        "F.linear_cross_entropy (options=None)": linear_ce_library,
        f"F.linear_cross_entropy (batch_chunk_size={chunk_size})":
            lambda a, b, c: linear_ce_library(a, b, c, chunk_size),
    }
    rows, reference = [], None
    for name, fn in forms.items():
        def step(fn=fn):
            weight = w.detach().requires_grad_(True)
            loss = fn(h, weight, t)
            loss.backward()
            return loss, weight.grad
        loss, grad = step()
        if reference is None:
            reference = grad
        peak, _ = profiled_peak_bytes(step)
        rows.append({"form": name, "loss": loss.item(),
                     "max_grad_diff": (grad - reference).abs().max().item(),
                     "peak_MB": peak / 1e6, **benchmark_ms(step, min_run_time)})
    return rows


def linear_ce_run(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                  options=None, **kwargs) -> dict:
    """One forward and backward of ``F.linear_cross_entropy``, watched by the profiler.

    ``hidden``: (B, H); ``weight``: (C, H); ``target``: (B,) indices or (B, C) probabilities;
    ``options`` and ``kwargs`` go to ``F.linear_cross_entropy``. Returns ``peak`` (bytes,
    ``profiled_peak_bytes``), ``largest`` (the largest single allocation of one operator,
    bytes), ``logits_bytes`` (one full (B, C) tensor of the weight's dtype), ``built_logits``
    (whether some allocation was as large as the full logits) and ``warnings`` (messages).
    """
    import warnings

    def step():
        w = weight.detach().requires_grad_(True)
        F.linear_cross_entropy(hidden, w, target, options=options, **kwargs).backward()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peak, by_op = profiled_peak_bytes(step, min_bytes=0, largest=True)
    logits_bytes = tensor_bytes((hidden.shape[0], weight.shape[0]), weight.dtype)
    largest = max(by_op.values(), default=0)
    return {"peak": peak, "largest": largest, "logits_bytes": logits_bytes,
            "built_logits": largest >= logits_bytes,
            "warnings": [str(w.message) for w in caught]}
