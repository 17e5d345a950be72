"""Every user mistake gets one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from conftest import TINY, invoke


def assert_clean_error(result, *fragments):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_folder(tmp_path):
    assert_clean_error(invoke("train", tmp_path / "nope", "--domain", "midi"), "does not exist")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_clean_error(invoke("train", tmp_path / "empty", "--domain", "midi"), "empty")


def test_an_empty_folder_is_said_to_be_empty_not_unreadable(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # folders alone hold nothing to train on
    result = invoke("train", tmp_path / "empty")
    assert_clean_error(result, f"the folder {tmp_path / 'empty'} is empty")
    assert "no installed domain" not in result.output


def test_folder_without_readable_files(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not music")
    assert_clean_error(invoke("train", folder, "--domain", "midi"), "no midi files")


def test_folder_of_only_corrupt_midi(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (folder / "zero.mid").write_bytes(b"")
    assert_clean_error(invoke("train", folder, "--max-steps", 1, *TINY), "could be read")


def test_corrupt_and_zero_length_files_are_skipped_with_a_warning(chorale_copy, tmp_path):
    (chorale_copy / "broken.mid").write_bytes(b"MThd this is not midi at all")
    (chorale_copy / "empty.mid").write_bytes(b"")
    # Put them in the training split for sure by using fixed subfolders.
    data = tmp_path / "splitdata"
    (data / "train").mkdir(parents=True)
    (data / "valid").mkdir()
    files = sorted(chorale_copy.glob("bwv*.mid"))
    for f in files[:6]:
        (data / "train" / f.name).write_bytes(f.read_bytes())
    for f in files[6:]:
        (data / "valid" / f.name).write_bytes(f.read_bytes())
    for name in ("broken.mid", "empty.mid"):
        (data / "train" / name).write_bytes((chorale_copy / name).read_bytes())
    result = invoke("train", data, "--run-dir", tmp_path / "run", "--max-steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert "broken.mid" in result.stderr and "empty.mid" in result.stderr
    assert "warning" in result.stderr


def test_unknown_backend_lists_the_valid_ones(chorales):
    assert_clean_error(invoke("train", chorales, "--backend", "transformerxl"), "unknown backend", "seqvae")


def test_unknown_domain_lists_the_valid_ones(chorales):
    assert_clean_error(invoke("train", chorales, "--domain", "video"), "unknown domain", "midi")


def test_unknown_codec_lists_the_valid_ones(chorales):
    assert_clean_error(invoke("train", chorales, "--codec", "wave"), "pianoroll", "events")


def test_unknown_recipe_lists_the_valid_ones(tmp_path):
    assert_clean_error(invoke("data", "build", "nope", tmp_path / "x"), "unknown data recipe", "bach-chorales")


def test_malformed_yaml_names_the_line(chorales, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("backend:\n  latent_size: 4\n  decoder_size: [1, 2\ntrain:\n  lr: 1\n")
    assert_clean_error(invoke("train", chorales, "--config", cfg), "bad.yaml", "line")


def test_unknown_yaml_key_names_key_and_line(chorales, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  lr: 0.01\nbackend:\n  latnet_size: 4\n")
    assert_clean_error(invoke("train", chorales, "--backend", "seqvae", "--config", cfg), "latnet_size", "line 4",
                       "latent_size")


def test_unknown_yaml_section(chorales, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("optimiser:\n  lr: 0.01\n")
    assert_clean_error(invoke("train", chorales, "--config", cfg), "optimiser", "line 1")


@pytest.mark.parametrize("override, fragments", [
    ("backend.latnet_size=3", ("latnet_size", "latent_size")),
    ("backend.latent_size=big", ("backend.latent_size", "int")),
    ("train.lr=fast", ("train.lr", "float")),
    ("codec.onsets=maybe", ("codec.onsets", "bool")),
    ("model.size=3", ("must start with",)),
    ("backend.latent_size", ("SECTION.KEY=VALUE",)),
])
def test_bad_overrides(chorales, override, fragments):
    assert_clean_error(invoke("train", chorales, "--backend", "seqvae", "--codec", "pianoroll", "--set", override),
                       *fragments)


def test_not_a_run_directory(tmp_path):
    (tmp_path / "some").mkdir()
    assert_clean_error(invoke("generate", tmp_path / "some", "-o", tmp_path / "o"), "not a seqstudio run directory")
    assert_clean_error(invoke("evaluate", tmp_path / "missing"), "not a directory")


def test_existing_run_directory_is_not_overwritten(trained_run, chorales):
    assert_clean_error(invoke("train", chorales, "--run-dir", trained_run, "--max-steps", 1), "already exists",
                       "--resume")


def test_resume_without_run_dir(chorales):
    assert_clean_error(invoke("train", "--resume"), "--run-dir")


def test_damaged_checkpoint_is_reported(trained_run, tmp_path):
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(trained_run, broken)
    (broken / "best.pt").write_bytes(b"not a checkpoint")
    assert_clean_error(invoke("generate", broken, "-o", tmp_path / "o"), "cannot load", "best.pt")


def test_cuda_requested_without_gpu(chorales, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert_clean_error(invoke("train", chorales, "--device", "cuda", "--run-dir", tmp_path / "r", *TINY), "cuda")


def test_resume_on_other_data_is_refused(trained_run, tmp_path):
    assert_clean_error(invoke("train", tmp_path, "--resume", "--run-dir", trained_run), "its own data",
                       "omit DATA_DIR")


def test_bad_train_values_are_refused_before_any_file_is_read(chorales, tmp_path, monkeypatch):
    from seqstudio.data import preparation

    monkeypatch.setattr(preparation, "split_files", lambda *a, **k: pytest.fail("data read before the options were checked"))
    assert_clean_error(invoke("train", chorales, "--set", "train.precision=fp16"), "unknown precision", "bf16")
    assert_clean_error(invoke("train", chorales, "--set", "train.lr_warmup_steps=-2"), "lr_warmup_steps must be >= 0")


def _screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: a carriage return goes back to the line's start, later characters
    overwrite earlier ones (how a progress bar redraws, and how it erases what was printed onto its line)."""
    lines, line, col = [], [], 0
    for ch in text:
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    lines.append("".join(line).rstrip())
    return lines


def test_skipped_file_warnings_stand_on_their_own_lines_above_the_progress_bar(chorale_copy, tmp_path):
    (chorale_copy / "broken.mid").write_bytes(b"MThd this is not midi at all")
    args = [a for a in TINY if a != "--quiet"]
    result = invoke("train", chorale_copy, "--run-dir", tmp_path / "run", "--max-steps", 1, *args,
                    "--set", "train.workers=1")
    assert result.exit_code == 0, result.output
    assert "encoding" in result.stderr  # the bar was drawn
    shown = _screen(result.stderr)
    warned = [line for line in shown if "broken.mid" in line]
    assert warned and all(line.startswith("warning:") for line in warned), shown
