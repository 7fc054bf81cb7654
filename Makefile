# Two commands: `make lab` sets everything up and runs the answer key; `make test` passes the tests.
# BACKEND=jax or BACKEND=torch runs either on that Keras backend instead of TensorFlow (the default):
# it installs requirements-$(BACKEND).txt into the same venv and exports KERAS_BACKEND to what make starts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS := tensorflow jax torch
BACKEND ?= tensorflow
ifeq ($(filter $(BACKEND),$(BACKENDS)),)
$(error BACKEND=$(BACKEND): use one of $(BACKENDS))
endif
REQUIREMENTS := $(if $(filter tensorflow,$(BACKEND)),requirements.txt,requirements-$(BACKEND).txt)
# nbval compares outputs stored from a TensorFlow run; on another backend the notebooks must run and their asserts hold.
NBVAL_MODE := $(if $(filter tensorflow,$(BACKEND)),,--nbval-lax)
# The end-to-end grading runs and other tests of backend-independent code that cost minutes (tests marked heavy:
# tests/conftest.py, tests/test_spec.py, tests/test_grade_bounds.py) do not depend on the backend: only the default runs them.
HEAVY := $(if $(filter tensorflow,$(BACKEND)),,-m "not heavy")
# ANSWER_KEY=core (what `make ci` asks for on JAX): the answer key up to "Level up" only, by a test instead of nbval
# (its level-up cells train for minutes; levelup.py's functions have unit tests on every backend).
ANSWER_KEY ?= whole
NOTEBOOKS := $(if $(filter core,$(ANSWER_KEY)),--deselect=solution.ipynb)
export DAE_ANSWER_KEY := $(ANSWER_KEY)
# Test files run in parallel, whole files at a time (nbval needs a notebook's cells in one kernel, in order; a
# module's fixtures run once): one process per core, at most 4; on the default backend, whose run holds the heavy
# grading tests (they spend part of their time waiting on kernels and sandboxes), one more: on 2 cores the
# TensorFlow stage took 13:56 with 3 against 14:43 with 2, where the JAX and PyTorch stages, CPU-bound, took longer
# with 3 (3:02 against 2:38, 1:49 against 1:29; docs/benchmarks.md). Serial: make test PYTEST_JOBS=0.
PYTEST_JOBS ?= $(if $(filter tensorflow,$(BACKEND)),$(shell echo $$(( $$(nproc) + 1 ))),auto)
PARALLEL := -n $(PYTEST_JOBS) --maxprocesses 4 --dist loadfile --no-loadscope-reorder
# PyTorch's OpenMP threads wait for work by spinning: with test processes sharing the cores, one thread each
# (docs/benchmarks.md, "Compile settings and threads per backend": 4.8 s an epoch against 7-15 s for two
# on a busy 2-core machine). TensorFlow's thread pools too, one thread each. And glibc's malloc keeps what the tests
# free (no mmap for large blocks, no trimming), so each new data-set-sized array does not page-fault fresh zeroed
# memory: test_corpus.py and test_spec.py side by side took 127 s against 176 s (docs/benchmarks.md, "Test
# processes"). Only the test processes and the notebooks nbval runs get these; the grader's kernels do not
# (grading/sandbox.py kernel_env), so a student's memory limit means what it says.
TEST_THREADS := $(if $(filter torch,$(BACKEND)),OMP_NUM_THREADS=1)$(if $(filter tensorflow,$(BACKEND)),TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1)
TEST_MALLOC := GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=8589934592:glibc.malloc.top_pad=268435456
TEST_ENV := $(TEST_THREADS) $(TEST_MALLOC)
export KERAS_BACKEND := $(BACKEND)
# numpy asks Linux for huge pages for every array of 4 MiB and more; on a 2-core VM faulting them in cost more
# system time than the tests' own work (docs/benchmarks.md, "Huge pages"): off for everything make runs.
export NUMPY_MADVISE_HUGEPAGE ?= 0
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: lab lint test unit test-all ci data sandbox setup student handout

lab: setup data sandbox  ## venv + requirements + data, then execute solution.ipynb headless, writing its outputs back
	@echo "lab: running solution.ipynb headless (about 4 min on 2 cores), one line per code cell:"
	@$(BIN)/python tools/run_notebook.py solution.ipynb

lint: setup  ## ruff: the code is formatted and passes the linter (ruff.toml)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: setup lint  ## the linter, unit tests, then nbval re-executes the notebooks
	$(TEST_ENV) $(BIN)/python -m pytest $(PARALLEL) $(NBVAL_MODE) $(HEAVY) $(NOTEBOOKS)

unit: setup  ## the unit tests alone (no notebooks)
	$(TEST_ENV) $(BIN)/python -m pytest $(PARALLEL) tests $(HEAVY)

ci:  ## what CI runs: everything on TensorFlow; on JAX the unit tests, index.ipynb and the answer key's core lab; the unit tests on PyTorch
	$(MAKE) test BACKEND=tensorflow
	$(MAKE) test BACKEND=jax ANSWER_KEY=core
	$(MAKE) unit BACKEND=torch

test-all:  ## `make test` on every backend, one after another (the full matrix)
	$(foreach backend,$(BACKENDS),$(MAKE) test BACKEND=$(backend) &&) true

setup: $(VENV)/.installed-$(BACKEND)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs (parallel downloads, bytecode compiled on both cores: 71 s against pip's 170 s for requirements.txt in a
# new venv, docs/benchmarks.md); PyTorch goes through pip, which takes a CPU wheel configured locally (pip's
# find-links), where uv would fetch PyPI's multi-GB CUDA build. INSTALLER=pip installs everything with pip, for
# machines where pip's own settings (an index or a proxy in pip.conf) must apply: uv does not read them.
INSTALLER ?= uv
UV := uv==0.13.9
USE_PIP := $(or $(filter torch,$(BACKEND)),$(filter pip,$(INSTALLER)))
INSTALL := $(if $(USE_PIP),$(BIN)/python -m pip install --quiet,$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode)

$(VENV)/.installed-$(BACKEND): $(REQUIREMENTS) requirements.txt | $(BIN)/python
	$(if $(USE_PIP),,$(BIN)/python -m pip install --quiet $(UV))
	$(INSTALL) -r $(REQUIREMENTS)
	touch $@

# apt-get install, updating the package lists first only when it fails without (a fresh machine has none; `make lab`
# and CI then update them once, not once per target: 10 s each here).
apt_install = apt-get install -y -qq $(1) 2>/dev/null || (apt-get update -qq && apt-get install -y -qq $(1))

data:  ## Fashion-MNIST from Debian's package when apt is here; otherwise Keras downloads it on first use
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "data: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		$(call apt_install,dataset-fashion-mnist); \
	else echo "data: no Debian package here; Keras will download Fashion-MNIST on first use (or set DAE_DATA_DIR)"; fi

# The grader's sandbox (grading/sandbox.py) runs these programs; each is command:Debian package. useradd is root's
# (in /usr/sbin), for the sandbox users.
SANDBOX_TOOLS := bwrap:bubblewrap setpriv:util-linux prlimit:util-linux unshare:util-linux mount:mount useradd:passwd
sandbox:  ## the grader's sandbox tools (bubblewrap, util-linux, passwd) from Debian's packages when root with apt; else what to install
	@missing="$$(for pair in $(SANDBOX_TOOLS); do PATH="$$PATH:/usr/sbin:/sbin" command -v $${pair%%:*} >/dev/null \
		|| echo $${pair#*:}; done | sort -u | xargs)"; \
	if [ -z "$$missing" ]; then echo "sandbox: bubblewrap, setpriv, prlimit, unshare, mount and useradd are installed"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "sandbox: installing $$missing"; $(call apt_install,$$missing); \
	else echo "sandbox: the grader's sandbox needs Debian's $$missing: install them (sudo apt-get install $$missing)." \
		"Without bubblewrap tools/grade.py refuses to grade unless given --unsandboxed."; fi

student: setup  ## index.ipynb (the blank student notebook, executed) and index_files/ from the executed solution.ipynb
	$(BIN)/python tools/make_student.py

handout: setup  ## dist/handout/ and dist/dae-lab-handout.zip: what students get (index.ipynb, its modules, their guide), no answer key
	$(BIN)/python tools/make_handout.py
