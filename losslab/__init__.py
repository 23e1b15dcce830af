"""Shared code for the Loss Functions, Live course, in layers (arrows point down only).

- ``losslab.figures``: one module per chapter, named like the chapter's file
  (``chapters/binary.md`` -> ``losslab.figures.binary``), holding that chapter's widgets and
  tables. Built on the layers below.
- ``losslab.site``: the site's plumbing: the build (``python -m losslab.site.build``), the
  JavaScript assets it serves, the Sphinx extension, and computed HTML tables.
- ``losslab.engine``: the widget engine: the ``figure``/``Panel``/``Series`` description,
  the compact encoding of curve grids, the static matplotlib snapshot, and the anywidget
  front end with its CSS (``engine/static``). Knows nothing of any chapter.
- ``losslab.losses``: the loss math: formulas, analytic gradients, autograd curves, fits and
  measurements. Tensors in, tensors or arrays out; no widgets, no matplotlib.
- ``losslab.grading``: the grader. It stands alone: nothing in the course imports it, and it
  imports none of the layers above.

The contract is checked by import-linter (``[tool.importlinter]`` in ``pyproject.toml``) as
part of ``make test``.
"""

__version__ = "0.1.0"
