"""Probes for large_vocab: call ``linear_cross_entropy``, and measure its peak memory.

On the CPU the peak comes from ``torch.profiler``'s memory records (``profile_memory=True``):
the profiler logs every allocation and free of the CPU allocator with its time and size, also
those made outside any operator (a tensor freed by Python, or inside an
``autograd.Function``); the running total's maximum is the peak beyond what existed before.
These are the records ``torch.profiler``'s own memory timeline is built from. On a GPU the
peak comes from the CUDA allocator's counters.

The profiler is imported and started once when this module is, before any student code runs.
"""

from __future__ import annotations

import torch
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

FUNCTION = "linear_cross_entropy"
FORBIDDEN_OPS: tuple[str, ...] = ()


def probe_value(p, inputs):
    return {str(i): p.call(FUNCTION, p.tensor(case["hidden"]), p.tensor(case["weight"]),
                           p.tensor(case["target"]), chunk_size=case["chunk_size"],
                           ignore_index=case["ignore_index"])
            for i, case in enumerate(inputs["cases"])}


def _forward_backward(p, case, out, i):
    hidden = p.tensor(case["hidden"], requires_grad=True)
    weight = p.tensor(case["weight"], requires_grad=True)
    value, error = p.call_raw(FUNCTION, hidden, weight, p.tensor(case["target"]),
                              chunk_size=case["chunk_size"], ignore_index=case["ignore_index"])
    out[str(i)] = error or p.pack(value)
    out[f"grad_hidden{i}"] = error or p.backward(value, hidden)
    out[f"grad_weight{i}"] = error or (p.pack(weight.grad) if weight.grad is not None else
                                       {"error": "no gradient reached the weight"})


def probe_gradient(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        _forward_backward(p, case, out, i)
    return out


def _cpu_peak(step):
    """Peak bytes allocated while ``step()`` runs beyond what existed before it, and the bytes
    allocated in all (which tells a measurement that saw nothing from a small peak)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    changes = []
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        pending.extend(event.children)
        if event.tag == _EventType.Allocation:
            changes.append((event.start_time_ns, int(event.extra_fields.alloc_size)))
    total = peak = allocated = 0
    for _, size in sorted(changes):
        total += size
        peak = max(peak, total)
        allocated += max(size, 0)
    return peak, allocated


def _cuda_peak(step):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    allocated_before = torch.cuda.memory_stats().get("allocated_bytes.all.allocated", 0)
    step()
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_stats().get("allocated_bytes.all.allocated", 0)
    return torch.cuda.max_memory_allocated() - before, allocated - allocated_before


def probe_memory(p, inputs):
    out = {}
    for i, case in enumerate(inputs["cases"]):
        measure = _cuda_peak if p.device == "cuda" else _cpu_peak
        try:
            peak, allocated = measure(lambda case=case, i=i: _forward_backward(p, case, out, i))
        except BaseException as error:  # noqa: BLE001 - the measurement itself failed
            out[f"memory{i}"] = {"error": f"measuring memory raised {type(error).__name__}"}
            continue
        out[f"memory{i}"] = {"peak": int(peak), "allocated": int(allocated)}
    return out


def _warm_up() -> None:
    """Start and stop the profiler once, when the sandbox starts: its first session sets up
    the profiling library (about a second of CPU), which the memory check's time limit should
    not count."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True):
        torch.zeros(1)


# Only in the grader's sandbox, where this package is bound as ``losslab_probes``: Validate
# has no such limit, and the grader's own process never probes.
if __package__ == "losslab_probes":
    _warm_up()

PROBES = {"value": probe_value, "gradient": probe_gradient, "memory": probe_memory}
