# Two commands on a fresh machine with Python 3.11+:  make demo   and   make test
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch
BIN := $(VENV)/bin
DEMO_DIR ?= demo
DEMO_MINUTES ?= 4
# The MIDI defaults (note tokens, rnn: the pair the sample judge ranked best at equal CPU time), with the batch and
# learning rate that got furthest in a few CPU minutes, sampled at the temperature the judge preferred: BENCHMARKS.md,
# issue 25.
DEMO_SETTINGS ?= --backend rnn --codec notes --batch-size 16 --lr 2e-3 --set codec.transpose=3 \
	--set train.valid_every=100
DEMO_SAMPLING ?= --temperature 0.9

.PHONY: install demo test test-all clean bench models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip

# torch first, from TORCH_SPEC, so the later installs find it satisfied and pull no other build.
PLUGINS := plugins/midi plugins/strokes plugins/text plugins/models

# The MIDI plugin's synthesizer (plugins/midi/seqstudio_midi/audio.py), with --no-deps: its one dependency,
# PyAudio, is for live playback only (unused) and builds from source against PortAudio's headers.
SYNTH_SPEC := tinysoundfont>=0.3.7,<0.4

$(VENV)/.installed: $(BIN)/python pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test,studio]" $(addprefix -e ,$(PLUGINS))
	$(BIN)/pip install --quiet --no-deps "$(SYNTH_SPEC)"
	touch $@

install: $(VENV)/.installed

$(DEMO_DIR)/data/.built: | $(VENV)/.installed
	rm -rf $(DEMO_DIR)/data
	@echo "building the Bach chorales from music21's corpus (about 2 minutes on 2 cores, once)"
	$(BIN)/seqstudio data build bach-chorales $(DEMO_DIR)/data
	touch $@

demo: install $(DEMO_DIR)/data/.built
	rm -rf $(DEMO_DIR)/run $(DEMO_DIR)/samples
	$(BIN)/seqstudio train $(DEMO_DIR)/data --run-dir $(DEMO_DIR)/run \
		--max-minutes $(DEMO_MINUTES) --seed 0 $(DEMO_SETTINGS)
	$(BIN)/seqstudio generate $(DEMO_DIR)/run -n 8 -o $(DEMO_DIR)/samples --seed 0 --audio $(DEMO_SAMPLING)
	$(BIN)/seqstudio evaluate $(DEMO_DIR)/run --split test
	$(BIN)/seqstudio report $(DEMO_DIR)/run --samples $(DEMO_DIR)/samples -o $(DEMO_DIR)/report --quiet
	@echo "demo done: MIDI files, piano-roll pictures and WAV files are in $(DEMO_DIR)/samples;" \
		"the run's page is $(DEMO_DIR)/report/index.html (open it in a browser)"

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

bench: install
	OMP_NUM_THREADS=1 $(BIN)/python bench/vrnn_throughput.py

# Train every shipped model (plugins/models) again from its card's commands, in MODELS_WORK, and compare the new
# runs' test likelihood with the cards' (bench/models.py). Hours of CPU: the cards say each one's minutes.
# MODELS=bach-chorales picks some; MODELS_UPDATE=--update replaces the shipped weights by the new ones.
MODELS_WORK ?= models-work
MODELS ?=
MODELS_UPDATE ?=
models: install
	OMP_NUM_THREADS=1 $(BIN)/python bench/models.py retrain $(MODELS) --work $(MODELS_WORK) $(MODELS_UPDATE)

clean:
	rm -rf $(VENV) .venv-default $(DEMO_DIR) runs .pytest_cache $(MODELS_WORK)
