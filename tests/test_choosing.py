"""choose_loss and the gallery of mistakes: right losses for right shapes, symptoms as run."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from losslab.losses import beyond, choosing


def test_guide_and_choose_loss_cover_the_same_tasks():
    for task in choosing.GUIDE:
        choice = choosing.choose_loss(task)
        assert isinstance(choice.loss, nn.Module)
        assert choice.reason == choosing.GUIDE[task].reason


def test_choose_loss_configures_the_options():
    binary = choosing.choose_loss("binary", positive_rate=0.2).loss
    assert isinstance(binary, nn.BCEWithLogitsLoss)
    assert binary.pos_weight.item() == pytest.approx(4.0)
    multi = choosing.choose_loss("multi-label", positive_rate=torch.tensor([0.5, 0.1])).loss
    torch.testing.assert_close(multi.pos_weight, torch.tensor([1.0, 9.0]))
    seq = choosing.choose_loss("sequence with padding", ignore_index=0).loss
    assert isinstance(seq, nn.CrossEntropyLoss) and seq.ignore_index == 0
    assert choosing.choose_loss("regression with outliers", delta=2.0).loss.delta == 2.0
    distil = choosing.choose_loss("distillation", temperature=3.0).loss
    assert isinstance(distil, beyond.DistillationLoss) and distil.temperature == 3.0


def test_choose_loss_refuses_unknown_tasks_and_bad_options():
    with pytest.raises(ValueError, match="unknown task 'ranking'.*binary"):
        choosing.choose_loss("ranking")
    with pytest.raises(ValueError, match="positive_rate"):
        choosing.choose_loss("binary", positive_rate=0.0)
    with pytest.raises(ValueError, match=r"class_weight must have shape \(3,\)"):
        choosing.choose_loss("multi-class", num_classes=3, class_weight=torch.ones(4))


def test_distillation_loss_module_mixes_soft_and_hard_terms():
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    loss = beyond.DistillationLoss(temperature=2.0, weight=0.3)
    soft = beyond.distillation_loss(s, t, 2.0)
    hard = nn.functional.cross_entropy(s, y)
    torch.testing.assert_close(loss(s, t, y), 0.3 * soft + 0.7 * hard)
    torch.testing.assert_close(loss(s, t), soft)


def test_each_mistake_shows_the_symptom_the_chapter_describes():
    symptoms = {m.name: m.run() for m in choosing.MISTAKES}
    assert "Long" in symptoms["float class indices to CrossEntropyLoss"]
    assert "ValueError" in symptoms["output (N, 1) against target (N,)"]
    assert "1.4612" in symptoms["softmax before CrossEntropyLoss"]
    assert "between 0 and 1" in symptoms["logits into BCELoss"]
    assert "loss 100 (true value 40) and gradient 0 (true value 1)" in symptoms[
        "sigmoid then BCELoss"]
    assert "RuntimeError" in symptoms["one-hot long targets to CrossEntropyLoss"]
    assert "5 of 8 positions are padding" in symptoms["forgetting ignore_index for padding"]


def test_tables_escape_their_cells():
    from losslab.site import tables
    out = tables.html_table(["a"], [["<b>x</b>"]], code_columns=[0]).data
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<code>" in out


def test_the_guide_routes_contrastive_segmentation_and_preference_tasks_to_their_chapters():
    from pathlib import Path

    import yaml

    from losslab.losses import contrastive, dense, preference

    root = Path(__file__).resolve().parent.parent
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    routes = {"contrastive pairs": ("chapters/contrastive", contrastive.InfoNCELoss),
              "segmentation": ("chapters/dense", dense.CEDiceLoss),
              "preference pairs": ("chapters/preference", preference.DPOLoss)}
    for task, (chapter, module) in routes.items():
        choice = choosing.choose_loss(task)
        assert choice.chapter == chapter and chapter in listed
        assert isinstance(choice.loss, module)
    # each runs on the shapes its row names
    q, k = torch.randn(8, 16), torch.randn(8, 16)
    assert choosing.choose_loss("contrastive pairs").loss(q, k).shape == ()
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    target[:, 0] = 255
    seg = choosing.choose_loss("segmentation", ignore_index=255,
                               class_weight=torch.tensor([0.5, 1.0, 2.0])).loss
    assert torch.isfinite(seg(logits, target))
    torch.testing.assert_close(seg.weight, torch.tensor([0.5, 1.0, 2.0]))
    logps = [torch.randn(4) for _ in range(4)]
    assert choosing.choose_loss("preference pairs").loss(*logps).shape == ()
    with pytest.raises(ValueError, match=r"class_weight must have shape \(3,\)"):
        choosing.choose_loss("segmentation", num_classes=3, class_weight=torch.ones(2))
