# Two commands: `make lab` sets everything up and runs the answer key; `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: lab test data setup

lab: setup data  ## venv + requirements + data, then execute solution.ipynb headless, writing its outputs back
	@echo "lab: running solution.ipynb headless (about 4 min on 2 cores), one line per code cell:"
	@$(BIN)/python tools/run_notebook.py solution.ipynb

test: setup  ## unit tests, then nbval re-executes the notebooks
	$(BIN)/python -m pytest

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

data:  ## Fashion-MNIST from Debian's package when apt is here; otherwise Keras downloads it on first use
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "data: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else echo "data: no Debian package here; Keras will download Fashion-MNIST on first use (or set DAE_DATA_DIR)"; fi

.PHONY: student
student: setup  ## index.ipynb (the blank student notebook, executed) and index_files/ from the executed solution.ipynb
	$(BIN)/python tools/make_student.py
