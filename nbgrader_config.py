"""nbgrader settings for the course (run nbgrader from the repository root).

The settings live in ``losslab/grading/settings.py`` so that the parallel grader
(``make grade``) uses exactly the same ones: student kernels and sandboxes run inside bubblewrap
(``LOSSLAB_ISOLATION=none`` turns that off, unsafely), and ``LOSSLAB_SOURCE`` names a private
folder of instructor sources instead of the public ``solutions/``.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Kernels started by nbgrader (validate, autograde) import losslab.grading from here.
os.environ["PYTHONPATH"] = os.pathsep.join(
    part for part in (str(ROOT), os.environ.get("PYTHONPATH", "")) if part
)

from losslab.grading.settings import configure  # noqa: E402

configure(get_config())  # noqa: F821 - provided by nbgrader when it loads this file
