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


def _workers(launcher: subprocess.Popen) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes (read from /proc: children and their RANK variable)."""
    found = {}
    with open(f"/proc/{launcher.pid}/task/{launcher.pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if b"RANK" in env:
            found[int(env[b"RANK"])] = pid
    return found


@pytest.mark.slow  # two torchrun processes, then a resume: make test-all
@pytest.mark.skipif(not torch.distributed.is_available() or not os.path.isdir("/proc"),
                    reason="needs torch.distributed and /proc (to find torchrun's workers)")
def test_a_signal_to_one_process_stops_both_at_the_same_step_and_the_run_resumes(chorales, tmp_path):
    import signal
    import time

    run_dir = tmp_path / "ddp"
    env = {**os.environ, "SEQSTUDIO_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    common = ["--device", "cpu", "--quiet", "--set", "train.valid_every=5", "--set", "train.samples=0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "seqstudio", "train", str(chorales), "--run-dir", str(run_dir), "--max-steps", "100000",
           "--seed", "0", "--batch-size", "4", "--set", "backend.encoder_size=16",
           "--set", "backend.decoder_size=16", "--set", "backend.latent_size=4", *common]
    launcher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "last.pt").exists():  # training is under way: a checkpoint was written
            assert launcher.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.5)
        workers = _workers(launcher)
        assert sorted(workers) == [0, 1]
        os.kill(workers[1], signal.SIGTERM)  # only rank 1, not the writer, is signalled
        output, _ = launcher.communicate(timeout=240)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0  # an interrupted run is not a success
    assert "stopped by SIGTERM" in output and "Traceback" not in output.split("stopped by SIGTERM")[0][-2000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (stop,) = [r for r in records if r["split"] == "stop"]
    assert stop["reason"] == "SIGTERM"
    state = torch.load(run_dir / "last.pt", weights_only=True)["state"]
    assert state["step"] == stop["step"] and state["stopped_because"] == "SIGTERM"
    resumed = subprocess.run([sys.executable, "-m", "seqstudio", "train", "--resume", "--run-dir", str(run_dir),
                              "--max-steps", str(stop["step"] + 3), *common], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["step"] == stop["step"] + 3
