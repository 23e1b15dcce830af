"""The loss math of the course: tensors in, tensors or float64 arrays out.

One module per family of losses (``regression``, ``classification``, ``beyond``), plus the
autograd curve helpers every figure uses (``curves``), line fitting (``fitting``), the cost
of cross-entropy at scale (``scale``) and the decision guide with its gallery of mistakes
(``choosing``). Nothing here draws: no widgets, no matplotlib.
"""
