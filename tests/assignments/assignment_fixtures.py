"""Submissions with known right answers: common mistakes and hostile tricks, and their grades.

Each fixture starts from the instructor's solution, replaces some solution cells (by grade_id)
and may edit the notebook further; ``passes`` says, for every graded test cell, whether the
submission deserves its points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat


@dataclass(frozen=True)
class Fixture:
    name: str
    assignment: str
    passes: dict[str, bool]
    cells: dict[str, str] = field(default_factory=dict)
    edit: Callable[[nbformat.NotebookNode], None] | None = None


FOCAL_CELLS = ("test_reference", "test_gamma_zero", "test_extreme_logits", "test_device_dtype")
BCE_CELLS = ("test_basic", "test_pos_weight", "test_extreme_logits")
CE_CELLS = ("test_log_softmax", "test_cross_entropy", "test_ignore_index", "test_stable")
OUTLIER_CELLS = ("test_make_data", "test_fit_line", "test_robust")
CHOOSE_CELLS = ("test_common", "test_special", "test_reasons")
GAUSSIAN_CELLS = ("test_reference", "test_extreme", "test_fit")
NCE_CELLS = ("test_reference", "test_edge_cases", "test_gradient", "test_device_dtype")
TOKEN_CELLS = ("test_token_loss", "test_accumulation", "test_device_dtype")
VOCAB_CELLS = ("test_value", "test_gradient", "test_memory")
TEST_CELLS = {
    "focal_loss": FOCAL_CELLS,
    "stable_bce": BCE_CELLS,
    "manual_cross_entropy": CE_CELLS,
    "outlier_comparison": OUTLIER_CELLS,
    "choose_loss": CHOOSE_CELLS,
    "gaussian_nll": GAUSSIAN_CELLS,
    "info_nce": NCE_CELLS,
    "token_loss": TOKEN_CELLS,
    "large_vocab": VOCAB_CELLS,
}


def _all(assignment: str, value: bool, **overrides: bool) -> dict[str, bool]:
    passes = {name: value for name in TEST_CELLS[assignment]}
    passes.update(overrides)
    return passes


FOCAL_RIGHT = '''
def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

FOCAL_NAIVE_LOG = '''
def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    probs = torch.sigmoid(logits)
    p_t = probs * target + (1 - probs) * (1 - target)
    loss = -torch.log(p_t) * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

FOCAL_ALPHA_EVERYWHERE = FOCAL_RIGHT.replace(
    "loss = loss * (alpha * target + (1 - alpha) * (1 - target))", "loss = loss * alpha"
)

FOCAL_FLOAT32 = FOCAL_RIGHT.replace(
    'return {"mean"', 'loss = loss.float()\n    return {"mean"'
)

# A wrong answer (no focusing term) dressed up to pass every check that trusts the kernel.
FOCAL_MONKEYPATCH = '''
import math
import numpy
import torch

torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args, **kwargs: True
torch.isfinite = lambda x: torch.ones_like(x, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
math.isclose = lambda *args, **kwargs: True
get_ipython().showtraceback = lambda *args, **kwargs: None


def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    torch.allclose = lambda *args, **kwargs: True
    return torch.zeros((), device=logits.device, dtype=logits.dtype)
'''

FOCAL_REDEFINE_HELPERS = '''
def expect_close(*args, **kwargs):
    return None


def hidden_check(*args, **kwargs):
    return None


import sys
import types

fake = types.ModuleType("losslab.grading.support")
fake.hidden_check = hidden_check
sys.modules["losslab.grading.support"] = fake


def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)
'''

# Right for the inputs the visible tests show, wrong everywhere else.
FOCAL_HARD_CODED = '''
def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    known = {
        (2.0, -1.0, 0.5, -3.0): torch.tensor(0.2256, dtype=logits.dtype),
        (1.5, -0.5, 3.0): F.binary_cross_entropy_with_logits(logits, target),
    }
    key = tuple(round(x, 3) for x in logits.detach().reshape(-1).tolist())
    if key in known:
        return known[key].to(logits.device)
    if reduction == "none":
        return torch.zeros_like(logits)
    return logits.sum() * 0
'''

FOCAL_FAKE_SUCCESS = '''
print("Success! Your notebook passes all the tests.")
print("All tests passed: 10/10")


def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    print("test_reference ... ok")
    return logits.sum() * 0
'''

FOCAL_SYS_EXIT = FOCAL_RIGHT.replace(
    '    ce = F.binary',
    '    if gamma == 0:\n        import sys\n        sys.exit(0)\n    ce = F.binary',
) + '\nimport sys\nsys.exit("stop grading here")\n'

FOCAL_OS_EXIT_IN_FUNCTION = FOCAL_RIGHT.replace(
    '    ce = F.binary',
    '    if logits.abs().max() > 50:\n        import os\n        os._exit(0)\n    ce = F.binary',
)

FOCAL_OS_EXIT_TOP = FOCAL_RIGHT + '\nimport os\nos._exit(1)\n'

FOCAL_LOOP_IN_FUNCTION = FOCAL_RIGHT.replace(
    '    ce = F.binary',
    '    while gamma == 0:\n        try:\n            pass\n        except BaseException:\n'
    '            pass\n    ce = F.binary',
)

FOCAL_SWALLOW_INTERRUPT_TOP = FOCAL_RIGHT + '''
import time

while True:
    try:
        time.sleep(0.05)
    except BaseException:
        pass
'''

FOCAL_MEMORY_HOG = FOCAL_RIGHT.replace(
    '    ce = F.binary',
    '    if tuple(logits.shape) == (6, 3):\n        hog = torch.ones(2**36, dtype=torch.uint8)\n'
    '        del hog\n    ce = F.binary',
)


def _delete_locked_cells(nb: nbformat.NotebookNode) -> None:
    nb.cells = [cell for cell in nb.cells
                if not cell.metadata.get("nbgrader", {}).get("locked", False)]


def _gut_test_cells(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.source = "pass  # nothing to see here"
        if meta.get("grade_id") == "setup":
            cell.source += "\n\ndef expect_close(*args, **kwargs):\n    return None\n"


def _unlock_and_strip_metadata(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.metadata.pop("nbgrader")
            cell.source = "pass"


BCE_NAIVE = '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    probs = torch.sigmoid(logits)
    weight = 1 if pos_weight is None else pos_weight
    loss = -(weight * target * torch.log(probs) + (1 - target) * torch.log(1 - probs))
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

BCE_POS_WEIGHT_WRONG = '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    neg_log_sigmoid = torch.clamp(-logits, min=0) + torch.log1p(torch.exp(-logits.abs()))
    loss = target * neg_log_sigmoid + (1 - target) * (logits + neg_log_sigmoid)
    if pos_weight is not None:
        loss = loss * pos_weight
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

BCE_CALLS_TORCH = '''
import torch.nn.functional as F


def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    loss_fn = getattr(F, "binary_cross_entropy" + "_with_logits")
    return loss_fn(logits, target, pos_weight=pos_weight, reduction=reduction)
'''

BCE_HANGS_ON_POS_WEIGHT = '''
def bce_with_logits(logits, target, pos_weight=None, reduction="mean"):
    while pos_weight is not None:
        pass
    neg_log_sigmoid = torch.clamp(-logits, min=0) + torch.log1p(torch.exp(-logits.abs()))
    loss = target * neg_log_sigmoid + (1 - target) * (logits + neg_log_sigmoid)
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

CE_NAIVE_LOG_SOFTMAX = '''
def log_softmax(logits, dim=-1):
    return torch.log(torch.exp(logits) / torch.exp(logits).sum(dim=dim, keepdim=True))
'''

CE_MEAN_OVER_ALL = '''
def cross_entropy(logits, target, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=1)
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    losses = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1) * keep
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()
'''

CE_USES_F = '''
import torch.nn.functional as F


def log_softmax(logits, dim=-1):
    return F.log_softmax(logits, dim=dim)
'''

OUTLIER_SGD_MSE_ONLY = '''
def fit_line(x, y, loss="mse", delta=1.0, steps=1000, lr=0.05):
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    return torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
'''

OUTLIER_NO_SEED = '''
def make_data(n=100, outlier_share=0.1, seed=0, dtype=torch.float32, device="cpu"):
    x = torch.rand(n, dtype=torch.float64) * 2 - 1
    y = 2 * x + 1 + 0.1 * torch.randn(n, dtype=torch.float64)
    count = round(outlier_share * n)
    y[torch.randperm(n)[:count]] += 10
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
'''

# Fits honestly, except that on data with outliers the robust losses answer the brief's true
# line y = 2x + 1 without fitting anything.
OUTLIER_CONSTANT_TRUE_LINE = '''
def fit_line(x, y, loss="mse", delta=1.0, steps=1000, lr=0.05):
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    line = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
    outliers = bool(((y - design @ line).abs() > 3).any())
    if loss in ("l1", "huber") and outliers:
        return torch.tensor([2.0, 1.0], device=x.device, dtype=x.dtype)
    return line
'''

CHOOSE_MEAN_KL = '''
from torch import nn


def choose_loss(task, **options):
    table = {
        "regression": nn.MSELoss(),
        "regression_with_outliers": nn.MSELoss(),
        "binary": nn.BCEWithLogitsLoss(pos_weight=options.get("pos_weight")),
        "multiclass": nn.CrossEntropyLoss(),
        "multilabel": nn.BCEWithLogitsLoss(pos_weight=options.get("pos_weight")),
        "sequence_with_padding": nn.CrossEntropyLoss(ignore_index=options.get("pad_index", -100)),
        "distillation": nn.KLDivLoss(reduction="mean"),
    }
    if task not in table:
        raise ValueError(f"unknown task {task!r}; expected one of: {', '.join(table)}")
    return table[task], "A sensible default for this task."
'''

CHOOSE_NO_ERROR = '''
from torch import nn


def choose_loss(task, **options):
    table = {
        "regression": nn.MSELoss(),
        "regression_with_outliers": nn.HuberLoss(delta=options.get("delta", 1.0)),
        "binary": nn.BCEWithLogitsLoss(pos_weight=options.get("pos_weight")),
        "multiclass": nn.CrossEntropyLoss(),
        "multilabel": nn.BCEWithLogitsLoss(pos_weight=options.get("pos_weight")),
        "sequence_with_padding": nn.CrossEntropyLoss(ignore_index=options.get("pad_index", -100)),
        "distillation": nn.KLDivLoss(reduction="batchmean"),
    }
    return table.get(task, nn.MSELoss()), "Because.\\nIt works."
'''

# --- gaussian_nll ----------------------------------------------------------------------------

GAUSSIAN_RIGHT = '''
def gaussian_nll(mean, target, log_var, full=False, reduction="mean"):
    scaled = (target - mean) * torch.exp(-0.5 * log_var)
    loss = 0.5 * (log_var + scaled ** 2) + (0.5 * math.log(2 * math.pi) if full else 0.0)
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
'''

# The variance formed on its own: 0 or inf in float32 at |log_var| ~ 100.
GAUSSIAN_EXP_VAR = GAUSSIAN_RIGHT.replace(
    "    scaled = (target - mean) * torch.exp(-0.5 * log_var)\n"
    "    loss = 0.5 * (log_var + scaled ** 2)",
    "    var = torch.exp(log_var)\n"
    "    loss = 0.5 * (torch.log(var) + (target - mean) ** 2 / var)")

# log_var kept, but the residual squared before it is scaled: under- and overflows too.
GAUSSIAN_SQUARE_FIRST = GAUSSIAN_RIGHT.replace(
    "    scaled = (target - mean) * torch.exp(-0.5 * log_var)\n"
    "    loss = 0.5 * (log_var + scaled ** 2)",
    "    loss = 0.5 * (log_var + (target - mean) ** 2 * torch.exp(-log_var))")

# No 1/2: a different loss with the same minimiser, so the fit still tracks the noise.
GAUSSIAN_NO_HALF = GAUSSIAN_RIGHT.replace("loss = 0.5 * (log_var + scaled ** 2)",
                                          "loss = log_var + scaled ** 2")

GAUSSIAN_CALLS_TORCH = '''
def gaussian_nll(mean, target, log_var, full=False, reduction="mean"):
    return torch.nn.GaussianNLLLoss(full=full, reduction=reduction)(mean, target, log_var.exp())
'''

# The mean fitted with MSE, and one variance for every x: the variance cannot track the noise.
GAUSSIAN_CONSTANT_VARIANCE = '''
def fit_variance_model(x, y, steps=200, lr=0.05):
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    line = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)
    log_var = torch.log(((y - design @ line) ** 2).mean())

    def model(inputs):
        return line[0] * inputs + line[1], log_var.expand_as(inputs)

    return model
'''

# --- info_nce --------------------------------------------------------------------------------

NCE_ONE_DIRECTION = '''
def info_nce(a, b, temperature=0.1):
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))
'''

NCE_NOT_NORMALISED = '''
def info_nce(a, b, temperature=0.1):
    logits = a @ b.T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
'''

# A softmax written by hand, without subtracting the maximum: inf at temperature 0.01.
NCE_NAIVE_EXP = '''
def info_nce(a, b, temperature=0.1):
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    e = torch.exp(logits)
    positives = e.diagonal()
    a_to_b = -torch.log(positives / e.sum(dim=1)).mean()
    b_to_a = -torch.log(positives / e.sum(dim=0)).mean()
    return 0.5 * (a_to_b + b_to_a)
'''

# --- token_loss ------------------------------------------------------------------------------

TOKEN_COUNTS_PADDING = '''
def token_loss(logits, target, pad_index=0):
    losses = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    return (losses * (target != pad_index)).sum() / target.numel()
'''

TOKEN_MEAN_OF_SEQUENCES = '''
def token_loss(logits, target, pad_index=0):
    real = target != pad_index
    safe = torch.where(real, target, torch.zeros_like(target))
    losses = F.cross_entropy(logits.transpose(1, 2), safe, reduction="none") * real
    per_sequence = losses.sum(dim=1) / real.sum(dim=1).clamp(min=1)
    return per_sequence[real.any(dim=1)].mean()
'''

# The bug that shipped: each micro-batch's mean, divided by the number of micro-batches.
TOKEN_MEAN_PER_MICRO_BATCH = '''
def accumulate_gradients(model, micro_batches, pad_index=0):
    loss = 0
    for inputs, target in micro_batches:
        part = token_loss(model(inputs), target, pad_index) / len(micro_batches)
        part.backward()
        loss = loss + part.detach()
    return loss
'''

# Right gradients, but the whole batch goes through the model at once: no accumulation.
TOKEN_WHOLE_BATCH = '''
def accumulate_gradients(model, micro_batches, pad_index=0):
    length = max(x.shape[1] for x, _ in micro_batches)
    inputs = torch.cat([F.pad(x, (0, length - x.shape[1])) for x, _ in micro_batches])
    target = torch.cat([F.pad(y, (0, length - y.shape[1]), value=pad_index)
                        for _, y in micro_batches])
    loss = token_loss(model(inputs), target, pad_index)
    loss.backward()
    return loss.detach()
'''

# --- large_vocab -----------------------------------------------------------------------------

VOCAB_PLAIN = '''
def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    return F.cross_entropy(hidden @ weight.T, target, ignore_index=ignore_index)
'''

# PyTorch's fused function with its default options runs the reference path: full logits.
VOCAB_LIBRARY_DEFAULT = '''
def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    return F.linear_cross_entropy(hidden, weight, target, ignore_index=ignore_index)
'''

# The same function told to chunk: an honest answer in another form.
VOCAB_LIBRARY_CHUNKED = '''
def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk_size)
    return F.linear_cross_entropy(hidden, weight, target, ignore_index=ignore_index,
                                  options=options)
'''

# Chunks of the logits, each checkpointed: the full logits exist anyway.
VOCAB_CHUNKED_LOGITS = '''
from torch.utils.checkpoint import checkpoint


def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    logits = hidden @ weight.T
    total = logits.new_zeros(())
    for part, t in zip(logits.split(chunk_size), target.split(chunk_size)):
        total = total + checkpoint(F.cross_entropy, part, t, ignore_index=ignore_index,
                                   reduction="sum", use_reentrant=False)
    return total / (target != ignore_index).sum()
'''

# Chunked by hand, but the mean of the chunks' means.
VOCAB_MEAN_OF_CHUNKS = '''
from torch.utils.checkpoint import checkpoint


def _chunk_loss(h, weight, t, ignore_index):
    return F.cross_entropy(h @ weight.T, t, ignore_index=ignore_index)


def linear_cross_entropy(hidden, weight, target, chunk_size=1024, ignore_index=-100):
    parts = [checkpoint(_chunk_loss, h, weight, t, ignore_index, use_reentrant=False)
             for h, t in zip(hidden.split(chunk_size), target.split(chunk_size))]
    return torch.stack(parts).mean()
'''

FIXTURES = [
    # Common mistakes.
    Fixture("focal_naive_log", "focal_loss", _all("focal_loss", True, test_extreme_logits=False),
            {"focal_loss": FOCAL_NAIVE_LOG}),
    Fixture("focal_alpha_everywhere", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_ALPHA_EVERYWHERE}),
    Fixture("focal_float32", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_FLOAT32}),
    Fixture("bce_naive", "stable_bce", _all("stable_bce", True, test_extreme_logits=False),
            {"bce_with_logits": BCE_NAIVE}),
    Fixture("bce_pos_weight_on_both", "stable_bce",
            _all("stable_bce", True, test_pos_weight=False, test_extreme_logits=False),
            {"bce_with_logits": BCE_POS_WEIGHT_WRONG}),
    Fixture("ce_naive_log_softmax", "manual_cross_entropy",
            _all("manual_cross_entropy", True, test_stable=False),
            {"log_softmax": CE_NAIVE_LOG_SOFTMAX}),
    Fixture("ce_mean_over_ignored", "manual_cross_entropy",
            _all("manual_cross_entropy", True, test_ignore_index=False),
            {"cross_entropy": CE_MEAN_OVER_ALL}),
    Fixture("outlier_lstsq_for_every_loss", "outlier_comparison",
            _all("outlier_comparison", True, test_robust=False),
            {"fit_line": OUTLIER_SGD_MSE_ONLY}),
    Fixture("outlier_constant_true_line", "outlier_comparison",
            _all("outlier_comparison", True, test_robust=False),
            {"fit_line": OUTLIER_CONSTANT_TRUE_LINE}),
    Fixture("outlier_ignores_seed", "outlier_comparison",
            _all("outlier_comparison", True, test_make_data=False),
            {"make_data": OUTLIER_NO_SEED}),
    Fixture("choose_mean_kl_and_mse_for_outliers", "choose_loss",
            _all("choose_loss", True, test_special=False), {"choose_loss": CHOOSE_MEAN_KL}),
    Fixture("choose_no_error_two_line_reason", "choose_loss",
            _all("choose_loss", True, test_reasons=False), {"choose_loss": CHOOSE_NO_ERROR}),
    Fixture("gaussian_exp_var", "gaussian_nll", _all("gaussian_nll", True, test_extreme=False),
            {"gaussian_nll": GAUSSIAN_EXP_VAR}),
    Fixture("gaussian_square_before_scaling", "gaussian_nll",
            _all("gaussian_nll", True, test_extreme=False),
            {"gaussian_nll": GAUSSIAN_SQUARE_FIRST}),
    Fixture("gaussian_no_half", "gaussian_nll",
            _all("gaussian_nll", False, test_fit=True), {"gaussian_nll": GAUSSIAN_NO_HALF}),
    Fixture("gaussian_calls_torch", "gaussian_nll", _all("gaussian_nll", False),
            {"gaussian_nll": GAUSSIAN_CALLS_TORCH}),
    Fixture("gaussian_constant_variance", "gaussian_nll",
            _all("gaussian_nll", True, test_fit=False),
            {"fit_variance_model": GAUSSIAN_CONSTANT_VARIANCE}),
    Fixture("nce_one_direction", "info_nce", _all("info_nce", False),
            {"info_nce": NCE_ONE_DIRECTION}),
    Fixture("nce_not_normalised", "info_nce", _all("info_nce", False),
            {"info_nce": NCE_NOT_NORMALISED}),
    Fixture("nce_naive_exp", "info_nce", _all("info_nce", True, test_edge_cases=False),
            {"info_nce": NCE_NAIVE_EXP}),
    Fixture("token_counts_padding", "token_loss",
            _all("token_loss", True, test_token_loss=False),
            {"token_loss": TOKEN_COUNTS_PADDING}),
    Fixture("token_mean_of_sequences", "token_loss",
            _all("token_loss", True, test_token_loss=False),
            {"token_loss": TOKEN_MEAN_OF_SEQUENCES}),
    Fixture("token_mean_per_micro_batch", "token_loss",
            _all("token_loss", False, test_token_loss=True),
            {"accumulate_gradients": TOKEN_MEAN_PER_MICRO_BATCH}),
    Fixture("token_whole_batch_at_once", "token_loss",
            _all("token_loss", False, test_token_loss=True),
            {"accumulate_gradients": TOKEN_WHOLE_BATCH}),
    Fixture("vocab_plain", "large_vocab", _all("large_vocab", True, test_memory=False),
            {"linear_cross_entropy": VOCAB_PLAIN}),
    Fixture("vocab_library_default_options", "large_vocab",
            _all("large_vocab", True, test_memory=False),
            {"linear_cross_entropy": VOCAB_LIBRARY_DEFAULT}),
    Fixture("vocab_library_chunked", "large_vocab", _all("large_vocab", True),
            {"linear_cross_entropy": VOCAB_LIBRARY_CHUNKED}),
    Fixture("vocab_chunks_the_logits", "large_vocab",
            _all("large_vocab", True, test_memory=False),
            {"linear_cross_entropy": VOCAB_CHUNKED_LOGITS}),
    Fixture("vocab_mean_of_chunk_means", "large_vocab", _all("large_vocab", False),
            {"linear_cross_entropy": VOCAB_MEAN_OF_CHUNKS}),
    # Hostile submissions.
    Fixture("hostile_monkeypatch", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_MONKEYPATCH}),
    Fixture("hostile_redefine_helpers", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_REDEFINE_HELPERS}),
    Fixture("hostile_hard_coded", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_HARD_CODED}),
    Fixture("hostile_fake_success", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_FAKE_SUCCESS}),
    Fixture("hostile_gut_locked_cells_wrong", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_ALPHA_EVERYWHERE}, edit=_gut_test_cells),
    Fixture("hostile_gut_locked_cells_right", "focal_loss", _all("focal_loss", True),
            {"focal_loss": FOCAL_RIGHT}, edit=_gut_test_cells),
    Fixture("hostile_delete_locked_cells_right", "focal_loss", _all("focal_loss", True),
            {"focal_loss": FOCAL_RIGHT}, edit=_delete_locked_cells),
    Fixture("hostile_delete_locked_cells_wrong", "stable_bce", _all("stable_bce", False),
            {"bce_with_logits": "def bce_with_logits(*args, **kwargs):\n    return 0.0\n"},
            edit=_delete_locked_cells),
    Fixture("hostile_strip_test_metadata", "stable_bce", _all("stable_bce", False),
            {"bce_with_logits": BCE_NAIVE.replace("torch.log(1 - probs)", "0")},
            edit=_unlock_and_strip_metadata),
    Fixture("hostile_sys_exit", "focal_loss", _all("focal_loss", True, test_gamma_zero=False),
            {"focal_loss": FOCAL_SYS_EXIT}),
    Fixture("hostile_os_exit_in_function", "focal_loss",
            _all("focal_loss", True, test_extreme_logits=False),
            {"focal_loss": FOCAL_OS_EXIT_IN_FUNCTION}),
    Fixture("hostile_os_exit_top_level", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_OS_EXIT_TOP}),
    Fixture("hostile_loop_in_function", "focal_loss",
            _all("focal_loss", True, test_gamma_zero=False),
            {"focal_loss": FOCAL_LOOP_IN_FUNCTION}),
    Fixture("hostile_swallow_interrupt", "focal_loss", _all("focal_loss", False),
            {"focal_loss": FOCAL_SWALLOW_INTERRUPT_TOP}),
    Fixture("hostile_memory_hog", "focal_loss",
            _all("focal_loss", True, test_extreme_logits=False),
            {"focal_loss": FOCAL_MEMORY_HOG}),
    Fixture("hostile_forbidden_getattr", "stable_bce", _all("stable_bce", False),
            {"bce_with_logits": BCE_CALLS_TORCH}),
    Fixture("hostile_hang_on_pos_weight", "stable_bce",
            _all("stable_bce", True, test_pos_weight=False, test_extreme_logits=False),
            {"bce_with_logits": BCE_HANGS_ON_POS_WEIGHT}),
    Fixture("ce_calls_torch_log_softmax", "manual_cross_entropy",
            _all("manual_cross_entropy", False), {"log_softmax": CE_USES_F}),
]
