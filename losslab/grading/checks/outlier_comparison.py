"""Checks for the outlier_comparison assignment."""

from __future__ import annotations

import torch

from ..probes.outlier_comparison import PROBES
from . import Check, CheckFailed
from .expect import expect_close, tensor_result


def line_data(gen, n, outlier_share, w=2.0, b=1.0, dtype=torch.float32):
    """Data generated here, in the grader, with the recipe the brief describes."""
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
    y = w * x + b + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    count = round(outlier_share * n)
    index = torch.randperm(n, generator=gen)[:count]
    y[index] += 8 + 4 * torch.rand(count, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def _make_data_inputs(gen):
    cases = [{"n": 100, "outlier_share": 0.1, "seed": 0, "dtype": "float32"}]
    for dtype in ("float32", "float64"):
        n = int(torch.randint(40, 300, (), generator=gen))
        share = round(float(torch.rand((), generator=gen)) * 0.3 + 0.05, 3)
        seed = int(torch.randint(1, 10_000, (), generator=gen))
        cases.append({"n": n, "outlier_share": share, "seed": seed, "dtype": dtype})
    return {"cases": cases}


def _pair(out, what, device, dtype):
    if "error" in out:
        raise CheckFailed(f"{what}: {out['error']}")
    if out.get("kind") != "sequence" or len(out["items"]) != 2:
        raise CheckFailed(f"{what}: expected a pair (x, y) of tensors")
    return [tensor_result(item, f"{what}, {name}", device=device, dtype=dtype)
            for item, name in zip(out["items"], ("x", "y"))]


def _judge_make_data(inputs, outputs):
    device = outputs["__device__"]
    for i, case in enumerate(inputs["cases"]):
        dtype = getattr(torch, case["dtype"])
        what = (f"make_data(n={case['n']}, outlier_share={case['outlier_share']}, "
                f"seed={case['seed']}, dtype=torch.{case['dtype']})")
        x, y = _pair(outputs[f"a{i}"], what, device, dtype)
        x2, y2 = _pair(outputs[f"b{i}"], what + " called twice", device, dtype)
        x3, y3 = _pair(outputs[f"c{i}"], what + " with another seed", device, dtype)
        for name, value in (("x", x), ("y", y)):
            if tuple(value.shape) != (case["n"],):
                raise CheckFailed(f"{what}: expected {name} of shape ({case['n']},), "
                                  f"got {tuple(value.shape)}")
        if not (torch.equal(x, x2) and torch.equal(y, y2)):
            raise CheckFailed(f"{what}: the same seed should give the same data")
        if torch.equal(x, x3) and torch.equal(y, y3):
            raise CheckFailed(f"{what}: another seed should give other data")
        if not bool(((x >= -1) & (x <= 1)).all()):
            raise CheckFailed(f"{what}: x should lie in [-1, 1]")
        residual = (y.double() - (2 * x.double() + 1)).abs()
        expected = round(case["outlier_share"] * case["n"])
        outliers = int((residual > 5).sum())
        if outliers != expected:
            raise CheckFailed(f"{what}: expected {expected} outliers (points 8 to 12 above the "
                              f"line), found {outliers}")
        if bool((residual[residual <= 5] > 0.6).any()):
            raise CheckFailed(f"{what}: the points that are not outliers should lie within the "
                              "noise (standard deviation 0.1) of y = 2x + 1")


def _fit_inputs(gen):
    cases = [{"x": torch.linspace(-1, 1, 50), "loss": "mse"}]
    cases[0]["y"] = 2 * cases[0]["x"] + 1
    for loss in ("mse", "l1", "huber"):
        w = float(torch.rand((), generator=gen)) * 6 - 3
        b = float(torch.rand((), generator=gen)) * 4 - 2
        x, y = line_data(gen, 80, 0.0, w=w, b=b, dtype=torch.float64)
        cases.append({"x": x, "y": y, "loss": loss})
    return {"cases": cases}


def _least_squares(x, y):
    design = torch.stack([x.double(), torch.ones_like(x, dtype=torch.float64)], dim=1)
    return torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)


def _judge_fit(inputs, outputs):
    for i, case in enumerate(inputs["cases"]):
        what = f"fit_line(x, y, loss={case['loss']!r}) on {len(case['x'])} points on a line"
        expected = _least_squares(case["x"], case["y"]).to(case["x"].dtype)
        expect_close(outputs[str(i)], expected, what, device=outputs["__device__"],
                     hidden=i > 0, rtol=0.0, atol=0.05)


def _robust_inputs(gen):
    # Each case draws its own true line: an answer that returns the brief's y = 2x + 1
    # without fitting anything lands nowhere near these.
    cases = []
    for share in (0.1, 0.15, 0.2):
        w = float(torch.rand((), generator=gen)) * 4 - 2
        w = w + (1.0 if w >= 0 else -1.0)
        b = float(torch.rand((), generator=gen)) * 4 - 2
        x, y = line_data(gen, 120, share, w=w, b=b)
        cases.append({"x": x, "y": y})
    return {"cases": cases}


def _inlier_line(x, y):
    """The line through the points that were not lifted (found here, from the data alone, so
    the inputs the sandbox sees do not carry the answer): outliers sit 8 to 12 above the line,
    the noise is 0.1, so dropping residuals above 4 and refitting settles in a few rounds."""
    keep = torch.ones_like(x, dtype=torch.bool)
    for _ in range(5):
        line = _least_squares(x[keep], y[keep])
        keep = (y.double() - (line[0] * x.double() + line[1])) <= 4
    return _least_squares(x[keep], y[keep])


def _judge_robust(inputs, outputs):
    for i, case in enumerate(inputs["cases"]):
        truth = _inlier_line(case["x"], case["y"])
        distance = {}
        for loss in ("mse", "l1", "huber"):
            what = f"fit_line(x, y, loss={loss!r}) on data with outliers"
            fit = tensor_result(outputs[f"{loss}{i}"], what, device=outputs["__device__"],
                                dtype=torch.float32)
            if tuple(fit.shape) != (2,) or not bool(torch.isfinite(fit).all()):
                raise CheckFailed(f"{what}: expected a finite tensor [w, b] of shape (2,)")
            distance[loss] = float((fit.double() - truth).abs().sum())
        for loss in ("l1", "huber"):
            if not distance[loss] < distance["mse"]:
                raise CheckFailed(f"on data with outliers drawn around another line, the {loss} "
                                  "fit should land nearer that line than the MSE fit")
            if distance[loss] > 0.5:
                raise CheckFailed(f"on data with outliers drawn around another line, the {loss} "
                                  "fit is far from that line: does it fit the data it is given?")


CHECKS = [
    Check("outlier_comparison", "make_data", "make_data builds the seeded data",
          _make_data_inputs, PROBES["make_data"], _judge_make_data),
    Check("outlier_comparison", "fit_line", "fit_line recovers a line from clean data",
          _fit_inputs, PROBES["fit_line"], _judge_fit),
    Check("outlier_comparison", "robust", "robust fits beat MSE under outliers",
          _robust_inputs, PROBES["robust"], _judge_robust),
]
