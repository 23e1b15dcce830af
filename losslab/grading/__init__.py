"""Grading for the course assignments, laid out as its flow.

A submission goes through these modules in order:

1. :mod:`.intake`: find the submissions (folders, LMS zips), choose each student's notebook;
2. :mod:`.batch`: hand them to a pool of :mod:`.worker` processes, watch for stalls, retry once,
   write the log; a worker autogrades one submission with nbgrader, through the
   :mod:`.preprocessors` (the student's notebook runs in a kernel inside the sandbox);
3. :mod:`.sandbox`: bubblewrap, seccomp and resource limits around all student code;
4. :mod:`.probes`: the only grading code the sandbox sees; it calls the student's functions
   and records what they return;
5. :mod:`.judge` with :mod:`.checks`: decide each graded test cell from those records, in a
   process the student's code never ran in;
6. :mod:`.gradebook`: seed the gradebook, merge each worker's grades, export the CSV;
7. :mod:`.feedback`: render the feedback pages inert.

Beside the flow: :mod:`.settings` owns every limit, time and ``LOSSLAB_*`` variable (and
nbgrader's course settings), :mod:`.processes` the process plumbing (child environments,
deadlines, kills), and :mod:`.support` is what the assignments' notebooks import.

This subpackage stands on its own: it imports nothing else from ``losslab`` and never imports
matplotlib or widgets, so it runs headless inside graders and kernels alike.
"""
