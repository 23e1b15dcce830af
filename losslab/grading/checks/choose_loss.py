"""Checks for the choose_loss assignment."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..probes.choose_loss import PROBES
from . import Check, CheckFailed
from .expect import expect_close, expect_error, python_result

TASKS = ("regression", "regression_with_outliers", "binary", "multiclass", "multilabel",
         "sequence_with_padding", "distillation")
EXPECTED = {
    "regression": ("MSELoss",),
    "regression_with_outliers": ("HuberLoss", "SmoothL1Loss", "L1Loss"),
    "binary": ("BCEWithLogitsLoss",),
    "multiclass": ("CrossEntropyLoss",),
    "multilabel": ("BCEWithLogitsLoss",),
    "sequence_with_padding": ("CrossEntropyLoss",),
    "distillation": ("KLDivLoss",),
}


def _randn(gen, *shape, scale=1.0):
    return torch.randn(shape, generator=gen) * scale


def _case(gen, task, options=None):
    options = dict(options or {})
    if task in ("regression", "regression_with_outliers"):
        pred = _randn(gen, 16, scale=3.0)
        target = _randn(gen, 16, scale=3.0)
    elif task in ("binary", "multilabel"):
        shape = (12,) if task == "binary" else (6, 4)
        pred = _randn(gen, *shape, scale=2.0)
        target = (torch.rand(shape, generator=gen) < 0.5).float()
    elif task == "multiclass":
        pred = _randn(gen, 10, 5, scale=2.0)
        target = torch.randint(0, 5, (10,), generator=gen)
    elif task == "sequence_with_padding":
        pad = options.get("pad_index", -100)
        pred = _randn(gen, 3, 6, 8, scale=2.0)
        target = torch.randint(0, 6, (3, 8), generator=gen)
        target[:, 5:] = pad
        target[0, 3:] = pad
    else:
        pred = torch.log_softmax(_randn(gen, 5, 7, scale=2.0), dim=1)
        target = torch.softmax(_randn(gen, 5, 7, scale=2.0), dim=1)
    return {"task": task, "options": options, "input": pred, "target": target}


def reference(name, case):
    options, x, t = case["options"], case["input"].double(), case["target"]
    t = t.double() if t.is_floating_point() else t
    if name == "MSELoss":
        return F.mse_loss(x, t)
    if name == "HuberLoss":
        return F.huber_loss(x, t, delta=options.get("delta", 1.0))
    if name == "SmoothL1Loss":
        return F.smooth_l1_loss(x, t, beta=options.get("delta", 1.0))
    if name == "L1Loss":
        return F.l1_loss(x, t)
    if name == "BCEWithLogitsLoss":
        pos_weight = options.get("pos_weight")
        pos_weight = None if pos_weight is None else pos_weight.double()
        return F.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight)
    if name == "CrossEntropyLoss":
        return F.cross_entropy(x, t, ignore_index=options.get("pad_index", -100))
    if name == "KLDivLoss":
        return F.kl_div(x, t, reduction="batchmean")
    raise KeyError(name)


def _judge(inputs, outputs):
    visible = inputs.get("visible", 0)
    for i, case in enumerate(inputs["cases"]):
        what = f"choose_loss({case['task']!r}" + "".join(
            f", {k}={'<tensor>' if isinstance(v, torch.Tensor) else repr(v)}"
            for k, v in case["options"].items()) + ")"
        out = outputs[str(i)]
        if "error" in out:
            raise CheckFailed(f"{what}: {out['error']}")
        allowed = EXPECTED[case["task"]]
        # A subclass of the asked-for loss (the student's own `class Huber(nn.HuberLoss)`)
        # is that loss.
        classes = [name for name in out.get("classes") or [out["class"]] if name in allowed]
        if not classes or not out["module"]:
            raise CheckFailed(f"{what}: expected a torch.nn loss module ({' or '.join(allowed)}),"
                              f" got {out['class']}")
        expected = reference(classes[0], case).float()
        expect_close(out["value"], expected, f"{what} applied to a batch",
                     device=outputs["__device__"], hidden=i >= visible)


def _common_inputs(gen):
    cases = [_case(gen, "regression"), _case(gen, "binary"),
             _case(gen, "multiclass"), _case(gen, "multilabel")]
    return {"cases": cases, "visible": 0}


def _special_inputs(gen):
    delta = round(float(torch.rand((), generator=gen)) * 2 + 0.5, 2)
    pad = int(torch.randint(6, 50, (), generator=gen))
    cases = [
        _case(gen, "regression_with_outliers", {"delta": delta}),
        _case(gen, "regression_with_outliers"),
        _case(gen, "sequence_with_padding", {"pad_index": pad}),
        _case(gen, "sequence_with_padding", {"pad_index": 0}),
        _case(gen, "distillation"),
        _case(gen, "binary", {"pos_weight": torch.tensor([2.5])}),
        _case(gen, "multilabel", {"pos_weight": torch.rand(4, generator=gen) * 3 + 0.5}),
    ]
    return {"cases": cases, "visible": 0}


def _reason_inputs(gen):
    return {"tasks": list(TASKS), "unknown": "clustering"}


def _judge_reasons(inputs, outputs):
    for task in inputs["tasks"]:
        what = f"the reason choose_loss({task!r}) gives"
        reason = python_result(outputs[task], what)
        if not isinstance(reason, str) or not reason.strip() or "\n" in reason.strip():
            raise CheckFailed(f"{what}: expected a non-empty one-line string, got {reason!r}")
    what = f"choose_loss({inputs['unknown']!r})"
    message = expect_error(outputs["unknown"], what, "ValueError")
    # The message may take several lines; the tasks may be anywhere in it.
    if not all(task in message for task in TASKS):
        raise CheckFailed(f"{what}: the ValueError should list the tasks it knows, got "
                          f"{message!r}")


CHECKS = [
    Check("choose_loss", "common", "the usual tasks get the usual losses", _common_inputs,
          PROBES["common"], _judge),
    Check("choose_loss", "special", "outliers, padding, pos_weight and distillation",
          _special_inputs, PROBES["special"], _judge),
    Check("choose_loss", "reasons", "one-line reasons and a clear error for unknown tasks",
          _reason_inputs, PROBES["reasons"], _judge_reasons),
]
