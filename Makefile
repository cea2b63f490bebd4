# Set-up and entry points. `make demo` and `make test` each create .venv on first use (CPU torch from the local
# wheel first, so pip never pulls a multi-GB CUDA build), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-quick space benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/hf-vqvae demo --output_dir demo_outputs

test: $(VENV)/.installed
	$(BIN)/pytest -q

space: $(VENV)/.installed
	cd space && ../$(BIN)/python app.py --host 127.0.0.1 --port 7860

test-quick: $(VENV)/.installed
	$(BIN)/pytest -q -m "not slow"

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/benchmark_vqvae_training.py
	$(BIN)/python benchmarks/benchmark_prior_sampling.py
	$(BIN)/python benchmarks/benchmark_pixelcnn_sampling.py

clean:
	rm -rf $(VENV) demo_outputs
