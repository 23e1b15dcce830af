# Assignments: `make release` regenerates exercises/ from solutions/ with nbgrader;
# `make grade` autogrades a folder of submissions on every core (see README, "For instructors").
ASSIGNMENTS := focal_loss manual_cross_entropy outlier_comparison stable_bce choose_loss \
  gaussian_nll info_nce token_loss large_vocab
# nbgrader runs helper programs (alembic) from the virtualenv.
NBGRADER_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONPATH="$(CURDIR)"
# make grade SUBMISSIONS=submitted            nbgrader layout: <student>/<assignment>/<name>.ipynb
# make grade ZIPS=downloads                   LMS zip downloads, collected with nbgrader zip_collect
# make grade ... ASSIGNMENT=focal_loss JOBS=4 GRADE_OUT=graded SOURCE=path/to/private/sources
# Student code runs only inside bubblewrap; UNSAFE_NO_ISOLATION=1 grades without it (never
# for credit: see the README, "Why the grades can be trusted").
SUBMISSIONS ?=
ZIPS ?=
ASSIGNMENT ?=
JOBS ?= 0
GRADE_OUT ?= graded
SOURCE ?=
UNSAFE_NO_ISOLATION ?=

.PHONY: release grade

release: $(VENV_STAMP)
	$(NBGRADER_ENV) $(PY) -m losslab.grading release $(ASSIGNMENTS)

grade: $(VENV_STAMP)
	@if [ -z "$(SUBMISSIONS)$(ZIPS)" ]; then \
	  echo "make grade: say where the submissions are:" >&2; \
	  echo "  make grade SUBMISSIONS=path/to/submitted   (nbgrader layout <student>/<assignment>/*.ipynb)" >&2; \
	  echo "  make grade ZIPS=path/to/lms-downloads      (zip files or notebooks from an LMS)" >&2; \
	  exit 2; fi
	$(NBGRADER_ENV) $(PY) -m losslab.grading grade \
	  $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") $(if $(ZIPS),--zips "$(ZIPS)") \
	  $(if $(ASSIGNMENT),--assignment "$(ASSIGNMENT)") --jobs $(JOBS) --out "$(GRADE_OUT)" \
	  $(if $(SOURCE),--source "$(SOURCE)") $(if $(UNSAFE_NO_ISOLATION),--unsafe-no-isolation)
