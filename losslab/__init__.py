"""Shared code for the Loss Functions, Live course.

Layers, each testable without the one above it:

- ``losslab.losses`` and ``losslab.fitting``: loss math with torch (tensors in, arrays out);
- ``losslab.encoding``: compact curve grids for the browser;
- ``losslab.plots``: static matplotlib plots (take an ``Axes``, return artists);
- ``losslab.widgets``: live widgets (wiring and rendering only).
"""

__version__ = "0.1.0"
