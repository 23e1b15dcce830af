"""The probe side of the checks: code that runs next to the student's code.

This package is what the sandbox sees of the course: :mod:`.runner` (the sandbox's main
program), :mod:`.probing` (calls the student's functions and packs what they return),
:mod:`.tracing` (records the PyTorch operators a call executes) and one module per assignment
with its probes. None of it holds a reference implementation, an expected value or a hidden
test; those stay in :mod:`losslab.grading.checks`, in the grader's process. Modules here import
only the standard library, torch, numpy, IPython's input transformer and each other, so they
work when bound alone into the sandbox as the package ``losslab_probes``.
"""
