"""The reference table: it covers exactly torch.nn's losses, and every example agrees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.nn as nn
import yaml

from losslab.figures import reference
from losslab.losses import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_the_catalog_covers_exactly_the_losses_torch_ships():
    # The definition: the names ending in "Loss", plus the adaptive softmax (whose
    # name already ends in "Loss" in torch 2.13, so the set has 23 members, not 24).
    ships = set(n for n in dir(nn) if n.endswith("Loss")) | {"AdaptiveLogSoftmaxWithLoss"}
    assert sorted(catalog.CATALOG) == sorted(ships), (
        f"missing from the catalog: {sorted(set(ships) - set(catalog.CATALOG))}; "
        f"not in torch.nn: {sorted(set(catalog.CATALOG) - set(ships))}")
    assert len(catalog.CATALOG) == 23
    assert catalog.torch_losses() == sorted(ships)


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_each_example_agrees_three_ways(name):
    entry = catalog.CATALOG[name]
    values = entry.example()
    assert set(values) == {"module", "functional", "formula"}
    value, gap = catalog.run_example(entry)
    assert gap <= 1e-10 and value > 0, (name, value, gap)


def test_a_wrong_formula_stops_the_table():
    entry = catalog.CATALOG["MultiMarginLoss"]

    def off_by_the_class_count():
        values = entry.example()
        return {**values, "formula": values["formula"] * 4}

    broken = catalog.Entry(**{**entry.__dict__, "example": off_by_the_class_count})
    with pytest.raises(AssertionError, match="MultiMarginLoss: module, functional and formula"):
        catalog.run_example(broken)


def test_every_row_points_to_a_chapter_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    for entry in catalog.CATALOG.values():
        assert entry.chapter in listed, f"{entry.name} points to {entry.chapter}, not in _toc.yml"
        assert (ROOT / f"{entry.chapter}.md").is_file()
    assert "chapters/reference" in listed
    assert catalog.CATALOG["LinearCrossEntropyLoss"].chapter == "chapters/scale"


def test_the_rendered_table_links_each_loss_to_its_chapter():
    out = reference.reference_table().data
    assert out.count("<tr>") == 24  # the header and one row per loss
    for entry in catalog.CATALOG.values():
        page = entry.chapter.split("/")[-1]
        assert f'<a href="{page}.html">{reference.chapter_title(entry.chapter)}</a>' in out
        assert f"<code>nn.{entry.name}</code>" in out


def test_the_built_reference_page_shows_every_row():
    page = ROOT / "_build" / "html" / "chapters" / "reference.html"
    assert page.is_file(), "run `make book` first"
    text = page.read_text()
    for name in catalog.CATALOG:
        assert f"nn.{name}</code>" in text, f"{name} is missing from the built reference page"
    assert "the catalog covers exactly these: True" in text


def test_the_beyond_table_names_real_functions_and_chapters_in_the_toc():
    import importlib

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    out = reference.beyond_table().data
    assert out.count("<tr>") == len(reference.BEYOND) + 1
    for name, function, _, _, chapter in reference.BEYOND:
        module, attr = function.split(".")
        assert callable(getattr(importlib.import_module(f"losslab.losses.{module}"), attr)), name
        assert chapter in listed, f"{name} points to {chapter}, not in _toc.yml"
        assert f'<a href="{chapter.split("/")[-1]}.html">' in out
