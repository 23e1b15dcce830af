"""Grading for the course assignments, laid out as its flow.

A submission goes through these modules in order (``python -m losslab.grading grade``,
:mod:`.__main__`, drives them):

1. :mod:`.intake`: find the submissions (folders, LMS zips), choose each student's notebook;
2. :mod:`.batch`: hand them to a pool of :mod:`.worker` processes, watch for stalls, retry once,
   write the log; a worker autogrades one submission with nbgrader's steps, in this order:
3. :mod:`.kernel`: restore the cells a student deleted and run the notebook in a limited kernel,
   inside :mod:`.sandbox` (bubblewrap, seccomp and resource limits around all student code);
4. :mod:`.probes`: the only grading code the sandbox sees; it calls the student's functions
   and records what they return;
5. :mod:`.judge` with :mod:`.checks` (``checks/expect`` holds what several checks share):
   decide each graded test cell from those records, in a process the student's code never ran
   in, and write the verdict into the cell;
6. :mod:`.gradebook`: seed the gradebook, merge each worker's grades, export the CSV;
7. :mod:`.feedback`: render the feedback pages without hidden tests, and inert.

Beside the flow: :mod:`.settings` owns every limit, time and ``LOSSLAB_*`` variable (and
nbgrader's course settings), :mod:`.processes` the process plumbing (child environments,
deadlines, kills, a worker's progress reports), :mod:`.cells` what the grader reads of a
notebook's cells, and :mod:`.support` is what the assignments' notebooks import.

This subpackage stands on its own: it imports nothing else from ``losslab`` and never imports
matplotlib or widgets, so it runs headless inside graders and kernels alike.
"""
