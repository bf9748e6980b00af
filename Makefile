# `make demo` and `make test` set up everything on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= runs/demo-ppo-hopper
DEMO_STEPS ?= 1000000

.PHONY: demo test test-fast bench venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,fast]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl $(BIN)/policysearch train ppo --env Hopper-v5 --total-steps $(DEMO_STEPS) --seed 0 \
		--num-envs 8 --run-dir $(DEMO_DIR) --overwrite
	@echo "run folder: $(DEMO_DIR) (config.json, metrics.csv, tb/, checkpoints/, learning_curve.png, policy.mp4)"
	@echo "to use the policysearch command and the installed python in this shell: source $(VENV)/bin/activate"

# one pytest worker per core (1.5 per core was measured: no faster, 22:36 against 22:50, the CPU time being
# the limit), each test file on one worker (a file's tests share fixtures and run folders); the tests'
# many short runs (a CLI command each) share JAX's persistent compilation cache, keyed by the program,
# every compile in it (JAX keeps only those over 1 s by default: a warm `train ppo --total-steps 2048`
# took 8.7 s so and 5.4 s with every compile kept, 2026-12-03)
TEST_WORKERS ?= auto
TEST_ENV := MUJOCO_GL=egl JAX_COMPILATION_CACHE_DIR=$(CURDIR)/.pytest_cache/jax JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
# the longest files first (a file runs on one worker; started last, one of them alone would be the tail)
LONG_TESTS := tests/test_readme.py tests/test_gps.py tests/test_mujoco_ilqr.py
test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 $(LONG_TESTS) tests

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/ppo_vs_sb3.py

clean:
	rm -rf $(VENV) runs .pytest_cache
