# Two commands for a fresh machine with Python 3.11 and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's dependencies change; the stamp makes repeat runs instant.
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip

# torch and torchvision are pinned as a pair: they must match to import together (see pyproject.toml).
# pip byte-compiles the ~18k files of the stack one at a time (75 s of a 2.5-minute install on 2 cores);
# compileall does it on every core (30 s). A few files are for newer Pythons and fail to compile (pip skips
# them too), hence the leading `-`.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -qq --no-compile torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -qq --no-compile -e '.[test]'
	-$(BIN)/python -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null
	touch $(STAMP)

install: $(STAMP)

# The main job: the smoke sweep end to end (Ray Tune + MLflow, synthetic data, about a minute on 2 cores),
# then its report. Runs land in ./mlruns.db; the last lines say how to browse them.
demo: $(STAMP)
	$(BIN)/resnet-sweep run sweeps/smoke.yaml
	$(BIN)/resnet-sweep report smoke
	@echo "start MLflow's UI with $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db and open the links above"

# Two pytest-xdist workers: the end-to-end tests mostly wait on Ray and MLflow processes, so two at a time finish
# the suite in about 2/3 of the time on 2 cores; the loopback-cluster tests share one worker (xdist_group).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) .pytest_cache
