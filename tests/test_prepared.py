"""Warm starts from a stored preparation (``seqstudio.data.snapshot``): the same windows, files and codec state as the
ordinary path, used only while nothing it depends on has changed."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import invoke
from seqstudio import api, data
from seqstudio.data import preparation, snapshot
from seqstudio.errors import DataError

OPTIONS = ["codec.transpose=3", "train.valid_fraction=0.25", "train.test_fraction=0.25"]


def prepare(folder: Path, options=(), splits=("train", "valid", "test")):
    spec = api.resolve_config(folder, "seqvae", None, None, None, [*OPTIONS, *options], {}, None)
    return data.prepare(spec, progress=False, splits=splits)


@pytest.fixture
def counted(monkeypatch):
    """How many times the ordinary path ran."""
    calls = []
    ordinary = preparation.prepare_fresh

    def counting(*args, **kwargs):
        calls.append(1)
        return ordinary(*args, **kwargs)

    monkeypatch.setattr(preparation, "prepare_fresh", counting)
    return calls


def same_preparation(a, b) -> None:
    files_a, sets_a, files_b, sets_b = a.files, a.windows, b.files, b.windows
    assert {s: list(v) for s, v in files_a.items()} == {s: list(v) for s, v in files_b.items()}
    assert files_a.by_folder == files_b.by_folder
    assert json.dumps(a.fitted.to_state(), sort_keys=True) == json.dumps(b.fitted.to_state(), sort_keys=True)
    assert a.fitted == b.fitted
    assert json.dumps(a.codec.state_dict(), sort_keys=True) == json.dumps(b.codec.state_dict(), sort_keys=True)
    assert sets_a.keys() == sets_b.keys()
    for split in sets_a:
        wa, wb = sets_a[split], sets_b[split]
        assert len(wa) == len(wb) > 0 and wa.pieces == wb.pieces and wa.max_length == wb.max_length
        xa, la = wa.gather(np.arange(len(wa)))
        xb, lb = wb.gather(np.arange(len(wb)))
        assert torch.equal(xa, xb) and torch.equal(la, lb)
        assert (wa.conditions is None) == (wb.conditions is None)
        if wa.conditions is not None:
            assert torch.equal(wa.conditions, wb.conditions)


def test_a_warm_start_loads_the_stored_preparation_and_it_equals_the_ordinary_one(chorale_copy, counted,
                                                                                 monkeypatch):
    first = prepare(chorale_copy)
    assert len(counted) == 1 and list(snapshot.folder().glob("*.json"))
    second = prepare(chorale_copy)
    assert len(counted) == 1, "the second start did not use the stored preparation"
    assert isinstance(second.files["train"], snapshot.PathList)
    same_preparation(first, second)
    monkeypatch.setenv("SEQSTUDIO_NO_PREPARED", "1")
    same_preparation(prepare(chorale_copy), second)  # and the ordinary path, computed again, agrees
    assert len(counted) == 2


def _edit(folder: Path) -> None:
    victim = sorted(folder.glob("*.mid"))[0]
    other = sorted(folder.glob("*.mid"))[1]
    victim.write_bytes(other.read_bytes())  # same name, other content


def _add(folder: Path) -> None:
    shutil.copy(sorted(folder.glob("*.mid"))[0], folder / "added.mid")


def _remove(folder: Path) -> None:
    sorted(folder.glob("*.mid"))[0].unlink()


def _touch(folder: Path) -> None:
    path = sorted(folder.glob("*.mid"))[0]
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _subfolder(folder: Path) -> None:
    (folder / "train").mkdir()  # an empty train/ folder changes how the folder is split


@pytest.mark.parametrize("change", [_edit, _add, _remove, _touch, _subfolder])
def test_any_change_to_the_folder_takes_the_ordinary_path(chorale_copy, counted, change, monkeypatch):
    prepare(chorale_copy)
    change(chorale_copy)
    if change is _subfolder:  # train/ holds nothing: the ordinary path's own error, not a stale answer
        with pytest.raises(DataError, match="holds no midi files"):
            prepare(chorale_copy)
        assert len(counted) == 2
        return
    after = prepare(chorale_copy)
    assert len(counted) == 2
    monkeypatch.setenv("SEQSTUDIO_NO_PREPARED", "1")
    same_preparation(after, prepare(chorale_copy))


def test_data_options_are_in_the_key_and_optimisation_options_are_not(chorale_copy, counted):
    prepare(chorale_copy)
    prepare(chorale_copy, ["train.lr=0.5", "train.batch_size=3", "train.max_steps=7"])
    assert len(counted) == 1
    prepare(chorale_copy, ["train.conditions=none"])
    prepare(chorale_copy, ["codec.steps_per_quarter=2"])
    prepare(chorale_copy, splits=("train",))
    assert len(counted) == 4


def test_a_shard_written_to_since_is_not_trusted(chorale_copy, counted):
    first = prepare(chorale_copy)
    shard = first.windows["train"].sources[0].bin_path
    shard.write_bytes(shard.read_bytes())  # the same bytes, but a new write: its times change
    second = prepare(chorale_copy)
    assert len(counted) == 2
    same_preparation(first, second)


def test_the_messages_of_the_preparation_are_said_again(chorale_copy, counted, caplog):
    (chorale_copy / "broken.mid").write_bytes(b"MThd not really")
    with caplog.at_level(logging.INFO, logger="seqstudio"):
        prepare(chorale_copy)
        first = [r.getMessage() for r in caplog.records if "broken.mid" in r.getMessage()]
        caplog.clear()
        prepare(chorale_copy)
        second = [r.getMessage() for r in caplog.records if "broken.mid" in r.getMessage()]
    assert len(counted) == 1
    assert first and second == first


def test_a_folder_with_a_link_is_prepared_the_ordinary_way(chorale_copy, counted, tmp_path):
    outside = tmp_path / "outside.mid"
    shutil.copy(sorted(chorale_copy.glob("*.mid"))[0], outside)
    (chorale_copy / "link.mid").symlink_to(outside)
    assert snapshot.fingerprint(chorale_copy) is None
    prepare(chorale_copy)
    prepare(chorale_copy)
    assert len(counted) == 2


def test_cache_clear_removes_the_stored_preparations_and_info_counts_them(chorale_copy):
    prepare(chorale_copy)
    stored = list(snapshot.folder().iterdir())
    assert any(p.suffix == ".json" for p in stored) and any(p.suffix == ".npz" for p in stored)
    keep = snapshot.folder() / "notes.txt"  # not ours: never removed
    keep.write_text("mine")
    info = json.loads(invoke("cache", "info", "--json").output)
    assert info["prepared"]["runs"] >= 1 and info["prepared"]["bytes"] > 0
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output
    assert [p.name for p in snapshot.folder().iterdir()] == ["notes.txt"]


def test_path_list_behaves_like_the_list_of_paths():
    names = ["/a/x.mid", "/a/y.mid"]
    paths = snapshot.PathList(names)
    assert len(paths) == 2 and paths[1] == Path("/a/y.mid") and list(paths) == [Path(n) for n in names]
    assert paths == [Path(n) for n in names] and Path("/a/x.mid") in paths
    assert paths + [Path("/b")] == [Path("/a/x.mid"), Path("/a/y.mid"), Path("/b")]
