"""DDP under torchrun: two CPU processes with the gloo backend train one run; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow  # two torchrun processes: the suite's longest test (13 s on an idle 2-core machine); make test-all
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_gloo_training(chorales, tmp_path):
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "SEQSTUDIO_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "seqstudio", "train", str(chorales), "--run-dir", str(run_dir), "--max-steps", "4",
           "--device", "cpu", "--seed", "0", "--quiet", "--batch-size", "4",
           "--set", "backend.encoder_size=16", "--set", "backend.decoder_size=16",
           "--set", "backend.latent_size=4", "--set", "train.valid_every=2", "--set", "train.samples=1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    valid_steps = [r["step"] for r in records if r["split"] == "valid"]
    assert valid_steps == [2, 4]  # written once (rank 0), not once per process
    state = torch.load(run_dir / "last.pt", weights_only=True)["state"]
    assert state["step"] == 4
    assert len(list((run_dir / "samples").glob("*.mid"))) == 1
