"""Grading for the course assignments: isolated checks, nbgrader preprocessors, a parallel grader.

This subpackage stands on its own: it imports nothing else from ``losslab`` and never imports
matplotlib or widgets, so it runs headless inside graders and kernels alike.
"""
