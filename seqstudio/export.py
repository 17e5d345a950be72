"""One on-disk format for models that leave their run directory: the Hugging Face Hub layout.

``seqstudio export RUN DIR`` writes, and every command that takes a RUN reads::

    config.json          {"format": "seqstudio-run", "version": 1, "run": <config.yaml's specification>,
                          "spec": <the FeatureSpec>, "dtype": "float32" | "float16", "state": <training counters>,
                          "recipe": <the data recipe, when known>, "recogniser": true | false}
    model.safetensors    the backend's weights, nothing else (safetensors: a JSON header and raw tensor bytes)
    codec.json           the codec's learned state, exactly as the run directory holds it
    MODEL.md             the model card (what it learned from, the command that trained it, its figures)
    recogniser.json      (handwriting from text only) the recogniser that reads lines back into text, with
    recogniser.safetensors  its weights: `evaluate --samples` measures the character error rate with it

Why this layout: any Hub client uploads and downloads it, other tools read ``model.safetensors`` without seqstudio,
and safetensors cannot hold code, so loading a folder from elsewhere never unpickles anything (a ``.bin``, ``.pt``
or ``.pkl`` beside the weights is refused, not ignored). Nothing here uses the network.

Loading (``materialize``) checks every file first and refuses a damaged or changed folder with one ``RunDirError``
naming the file; then it writes an ordinary run directory (``config.yaml``, ``codec.json``, ``spec.json``,
``best.pt``, ``MODEL.md``) under the cache, ``$SEQSTUDIO_CACHE/models/NAME-KEY`` with KEY the digest of the
folder's files, so ``generate``, ``evaluate``, ``report``, ``info`` and the studio use it as any other run and the
folder itself is never written to (a model installed as package data may be read-only). An unchanged folder is
materialized once. Exporting that run again gives the same bytes (``tests/test_models.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import runcheck
from .errors import ConfigError, PluginError, RunDirError, SeqStudioError

FORMAT = "seqstudio-run"
VERSION = 1
CONFIG, WEIGHTS, CODEC, CARD = "config.json", "model.safetensors", "codec.json", "MODEL.md"
REQUIRED = (CONFIG, WEIGHTS, CODEC, CARD)
RECOGNISER_CONFIG, RECOGNISER_WEIGHTS = "recogniser.json", "recogniser.safetensors"
# Files that hold (or usually hold) pickles: a folder carrying one is refused, whatever it is named for.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz")
MAX_WEIGHTS_BYTES = 2 << 30
DTYPES = ("float32", "float16")
MATERIALIZED = ".materialized"  # the stamp that says a cached run directory was written completely


def is_exported(path: Path) -> bool:
    """Whether ``path`` looks like an exported model folder (it may still be refused when loaded)."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG).exists() and not (path / "config.yaml").exists()


# -- writing ----------------------------------------------------------------------------------------------------------
def _canonical_json(value: Any) -> bytes:
    """One byte sequence per value (sorted keys, fixed indentation): what makes an export round-trip bit for bit."""
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _tensor_bytes(weights: dict, dtype: str) -> bytes:
    import torch
    from safetensors.torch import save

    target = torch.float16 if dtype == "float16" else torch.float32
    tensors = {}
    for name in sorted(weights):
        value = weights[name].detach().cpu()
        if value.is_floating_point():
            value = value.to(target)
        tensors[name] = value.contiguous()
    return save(tensors, metadata={"format": "pt"})


def _json_safe_state(state: dict) -> dict:
    """The checkpoint's training counters that JSON holds (numbers, strings, flags): steps, time, best score."""
    return {k: v for k, v in (state or {}).items() if isinstance(v, (int, float, str, bool)) or v is None}


def _recipe_of(spec) -> str | None:
    from .safe_yaml import load

    info = Path(spec.data.get("path", "")) / "seqstudio.yaml"
    try:
        values = load(info.read_text(), str(info), ConfigError) if info.is_file() else {}
    except (OSError, SeqStudioError, ValueError):
        return None
    recipe = values.get("recipe") if isinstance(values, dict) else None
    return recipe if isinstance(recipe, str) else None


def default_card(run, recipe: str | None) -> str:
    """A card for a run that has none: what it is, what it learned from, how far it trained."""
    state = run.checkpoint.get("state", {})
    spec = run.spec
    lines = [f"# {run.path.name}: {spec.domain} / {spec.codec_name} / {spec.backend_name}", "",
             f"Exported from the run directory `{run.path}` by `seqstudio export`; it carries no card of its own.", "",
             f"- data: `{spec.data.get('path')}`" + (f" (recipe `{recipe}`)" if recipe else ""),
             f"- training: {state.get('step', '?')} steps"
             + (f", {state['elapsed'] / 60:.1f} minutes ({spec.train.budget_clock} clock)"
                if isinstance(state.get("elapsed"), (int, float)) else "")]
    return "\n".join(lines) + "\n"


def export_run(run_dir: str | Path, dest: str | Path, *, dtype: str | None = None, which: str = "best") -> Path:
    """Write the run in ``run_dir`` (checked as ``load`` checks it) into ``dest`` in the Hub layout; returns ``dest``.

    ``dtype="float16"`` halves the weights' size (shipped models: their cards say the figures hold). The default
    is float32, or for a model loaded from such a folder the dtype it came in, so exporting it again gives the
    same bytes."""
    import torch

    from .rundir import load_run

    origin = exported_from(Path(run_dir))
    dtype = dtype or origin.get("dtype") or "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    run_dir, dest = Path(run_dir), Path(dest)
    run = load_run(run_dir, which=which)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SeqStudioError(f"{dest} exists and is not an empty folder; export writes a new folder")
    recipe = origin.get("recipe") or _recipe_of(run.spec)
    recogniser = run_dir / "recogniser" / "recogniser.pt"
    config = {"format": FORMAT, "version": VERSION, "library": "seqstudio", "dtype": dtype,
              "run": run.spec.to_dict(), "spec": run.codec.spec.to_dict(),
              "state": _json_safe_state(run.checkpoint.get("state", {})), "recipe": recipe,
              "recogniser": recogniser.is_file()}
    files = {CONFIG: _canonical_json(config),
             WEIGHTS: _tensor_bytes(run.checkpoint["model"], dtype),
             CODEC: _canonical_json(runcheck.read_json(run_dir / CODEC, dict))}
    card = run_dir / CARD
    files[CARD] = card.read_bytes() if card.is_file() and not card.is_symlink() else default_card(
        run, recipe).encode()
    if recogniser.is_file():
        runcheck.refuse_link(recogniser)
        weights = torch.load(recogniser, map_location="cpu", weights_only=True)
        files[RECOGNISER_WEIGHTS] = _tensor_bytes(dict(weights), dtype)
        files[RECOGNISER_CONFIG] = _canonical_json(runcheck.read_json(recogniser.with_suffix(".json"), dict))
    from .atomic import atomic_write

    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write(dest / name, lambda tmp, data=data: tmp.write_bytes(data))
    return dest


# -- reading ----------------------------------------------------------------------------------------------------------
def _read_weights(path: Path) -> dict:
    """A safetensors file's tensors, checked: a pickle (or anything else) named ``.safetensors`` is refused
    before any of it is interpreted, and every floating-point weight must be finite."""
    import torch
    from safetensors.torch import load

    runcheck.refuse_link(path)
    st = runcheck.regular_file(path)
    if st.st_size == 0 or st.st_size > MAX_WEIGHTS_BYTES:
        raise RunDirError(f"{path} is {st.st_size} bytes: not the weights of a seqstudio model")
    data = path.read_bytes()
    try:
        weights = load(data)
    except Exception as exc:  # safetensors' own error type varies by version; all mean "not this format"
        hint = " (it is a pickle: seqstudio never loads those)" if data[:2] in (b"\x80\x02", b"\x80\x04", b"PK") else ""
        raise RunDirError(f"{path} is not a safetensors file{hint} ({runcheck.first_line(exc)})") from None
    for name, value in weights.items():
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            raise RunDirError(f"{path}: weight {name!r} holds NaN or infinite values")
    return weights


def _check_files(folder: Path) -> None:
    if not folder.is_dir():
        raise RunDirError(f"{folder} is not a folder")
    for entry in sorted(folder.iterdir()):
        runcheck.refuse_link(entry)
        if entry.suffix.lower() in PICKLE_SUFFIXES:
            raise RunDirError(f"{entry} may hold a pickle, which could run code when loaded; a seqstudio model "
                              f"folder holds only JSON, Markdown and safetensors files: remove it")
    missing = [name for name in REQUIRED if not (folder / name).exists()]
    if missing:
        raise RunDirError(f"{folder} is not a complete model folder: {', '.join(missing)} missing "
                          f"(`seqstudio export RUN DIR` writes {', '.join(REQUIRED)})")


def _read_config(folder: Path):
    from .runspec import RunSpec

    where = folder / CONFIG
    config = runcheck.read_json(where, dict)
    if config.get("format") != FORMAT:
        raise RunDirError(f"{where} is not a seqstudio model's configuration (format {config.get('format')!r}, "
                          f"expected {FORMAT!r})")
    if config.get("version") != VERSION:
        raise RunDirError(f"{where} is version {config.get('version')!r} of the format; this seqstudio reads "
                          f"version {VERSION}")
    if config.get("dtype") not in DTYPES or not isinstance(config.get("run"), dict):
        raise RunDirError(f"{where} is damaged: 'dtype' must be one of {', '.join(DTYPES)} and 'run' a mapping")
    if not isinstance(config.get("state", {}), dict) or not isinstance(config.get("spec"), list):
        raise RunDirError(f"{where} is damaged: 'spec' must be a list and 'state' a mapping")
    try:
        spec = RunSpec.from_dict(config["run"], where=str(where))
    except (ConfigError, PluginError) as exc:
        raise RunDirError(f"{where}: {exc}") from None
    return config, spec


def _check_shapes(spec, feature_spec, fitted, weights: dict, where: Path) -> None:
    """The backend ``config.json`` describes, built without memory, must have exactly the weights' names and
    shapes: a changed option (a hidden size) or swapped weights are refused before anything is allocated."""
    import torch

    try:
        with torch.device("meta"):
            model = spec.make_backend(feature_spec, fitted.conditions, fitted.text)
    except SeqStudioError as exc:
        raise RunDirError(f"{where.parent / CONFIG}: {exc}") from None
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in weights.items()}
    if shapes != saved:
        diff = sorted(set(shapes) ^ set(saved)) or [k for k in sorted(shapes) if shapes[k] != saved[k]]
        name = diff[0]
        detail = (f"{saved[name]} where the model has {shapes[name]}" if name in shapes and name in saved
                  else "missing" if name in shapes else "not a weight of this model")
        raise RunDirError(f"{where} does not fit the model that {where.parent / CONFIG} describes: weight {name!r} "
                          f"is {detail}")


def folder_key(folder: Path) -> str:
    """The digest of the folder's files (names and bytes): a changed file gives another materialized run."""
    digest = hashlib.sha256()
    for entry in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        digest.update(entry.name.encode() + b"\0")
        with entry.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def materialized_root() -> Path:
    from .cache import cache_dir

    return cache_dir() / "models"


def check_folder(folder: str | Path) -> dict:
    """Every check ``materialize`` makes, without writing: returns what it read (``config``, ``spec``,
    ``codec``, ``feature_spec``, ``weights``, ``recogniser``)."""
    from .rundir import load_fitted
    from .spec import FeatureSpec

    folder = Path(folder)
    _check_files(folder)
    config, spec = _read_config(folder)
    codec, fitted = load_fitted(folder, spec)  # names folder/codec.json in its errors
    try:
        feature_spec = FeatureSpec.from_dict(config["spec"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{folder / CONFIG} is damaged: 'spec' is not a list of feature parts "
                          f"({runcheck.first_line(exc)})") from None
    if feature_spec != codec.spec:
        raise RunDirError(f"{folder / CONFIG} says {feature_spec} but {folder / CODEC} gives codec "
                          f"{codec.name!r} {codec.spec}: the folder was changed")
    weights = _read_weights(folder / WEIGHTS)
    _check_shapes(spec, feature_spec, fitted, weights, folder / WEIGHTS)
    recogniser = None
    if config.get("recogniser"):
        for name in (RECOGNISER_CONFIG, RECOGNISER_WEIGHTS):
            if not (folder / name).exists():
                raise RunDirError(f"{folder / CONFIG} says the model has a recogniser but {name} is missing")
        recogniser = (runcheck.read_json(folder / RECOGNISER_CONFIG, dict), _read_weights(folder / RECOGNISER_WEIGHTS))
    return {"config": config, "spec": spec, "codec": codec, "feature_spec": feature_spec, "weights": weights,
            "recogniser": recogniser}


def _safe_name(name: str) -> str:
    """The folder's name as the materialized run's (the studio and `info` show it), or "model"."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "", name)[:64].lstrip(".")
    return cleaned or "model"


def materialize(folder: str | Path) -> Path:
    """The run directory for an exported model folder (checked first; written once per folder content)."""
    folder = Path(folder)
    _check_files(folder)
    target = materialized_root() / f"{_safe_name(folder.resolve().name)}-{folder_key(folder)[:16]}"
    if (target / MATERIALIZED).is_file() and not target.is_symlink():
        return target
    found = check_folder(folder)
    root = materialized_root()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=root))
    try:
        _write_run(stage, folder, found)
        if target.exists():  # an incomplete earlier attempt (no stamp): replaced
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(stage, target)
        except OSError:
            if not (target / MATERIALIZED).is_file():  # another process won the race with the same content
                raise
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return target


def _write_run(stage: Path, folder: Path, found: dict) -> None:
    import torch
    import yaml

    def as_float32(weights: dict) -> dict:
        return {k: (v.float() if v.is_floating_point() else v) for k, v in sorted(weights.items())}

    config = found["config"]
    (stage / "config.yaml").write_text(yaml.safe_dump(found["spec"].to_dict(), sort_keys=False))
    (stage / CODEC).write_bytes((folder / CODEC).read_bytes())
    (stage / "spec.json").write_text(json.dumps(found["feature_spec"].to_dict()))
    torch.save({"model": as_float32(found["weights"]), "state": dict(config.get("state") or {})}, stage / "best.pt")
    (stage / CARD).write_bytes((folder / CARD).read_bytes())
    (stage / "exported.json").write_text(json.dumps({"from": str(folder.resolve()), "dtype": config["dtype"],
                                                     "recipe": config.get("recipe")}))
    if found["recogniser"] is not None:
        recogniser_config, weights = found["recogniser"]
        (stage / "recogniser").mkdir()
        (stage / "recogniser" / "recogniser.json").write_bytes((folder / RECOGNISER_CONFIG).read_bytes())
        torch.save(as_float32(weights), stage / "recogniser" / "recogniser.pt")
    (stage / MATERIALIZED).write_text("")


def model_name(run_dir: Path) -> str | None:
    """The name of the model folder a run directory was unpacked from (what ``info`` and the studio show), else None."""
    origin = exported_from(run_dir).get("from")
    return Path(origin).name if isinstance(origin, str) else None


def exported_from(run_dir: Path) -> dict:
    """For a materialized run: the folder it came from, its dtype and recipe (empty for any other run)."""
    where = Path(run_dir) / "exported.json"
    try:
        return json.loads(where.read_text()) if where.is_file() and not where.is_symlink() else {}
    except (OSError, ValueError):
        return {}
