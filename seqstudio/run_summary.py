"""What a run directory is, read from its ``config.yaml`` and ``codec.json`` alone (``seqstudio info``).

``api.run_info`` rebuilds the codec, which imports the domain plugin and torch (2-3 s, 15 s on a busy machine)
to print a few names and counts; this reads the same figures from the two files as they were written
(``data.Fitted.to_state``), so ``info`` answers in a fraction of a second. It returns what ``api.run_info`` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import runcheck
from .errors import RunDirError
from .export import model_name

CONDITIONS_KEY = "_conditions"  # conditions.STATE_KEY
TEXT_KEY = "_text"  # text_condition.STATE_KEY
DECODING_KEY = "_decoding"  # data.fitted.DECODING_KEY


def _conditions(stored: Any, where: Path) -> dict | None:
    if stored is None:
        return None
    try:
        return {"mode": str(stored.get("mode", "embedding")), "dropout": float(stored.get("dropout", 0.1)),
                "size": int(stored.get("size", 16)),
                "attributes": {str(a["name"]): dict(zip(map(str, a["values"]),
                                                        map(int, a.get("counts", [1] * len(a["values"])))))
                               for a in stored["attributes"]},
                "notes": {str(k): {str(a): int(b) for a, b in v.items()} for k, v in stored.get("notes", {}).items()}}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{where}: not a description of conditions ({exc})") from None


def _text(stored: Any, where: Path) -> dict | None:
    if stored is None:
        return None
    try:
        return {"attribute": str(stored["attribute"]), "alphabet": str(stored["alphabet"]),
                "counts": [int(c) for c in stored.get("counts", [])], "mixtures": int(stored.get("mixtures", 10)),
                "chars_per_step": float(stored.get("chars_per_step", 0.05)),
                "max_chars": int(stored.get("max_chars", 0)), "examples": [str(e) for e in stored.get("examples", [])]}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{where}: not a description of a text condition ({exc})") from None


def summary(run_dir: str | Path) -> dict[str, Any]:
    """A run's domain, codec, backend, conditions (values with their training counts), text and decoding
    defaults; RunDirError for a folder that is not a run directory or whose files do not say these."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory (expected a run directory written by `seqstudio train`)")
    if not ((path / "config.yaml").exists() and (path / "codec.json").exists()):
        raise RunDirError(f"{path} is not a seqstudio run directory (no config.yaml/codec.json)")
    config = runcheck.read_yaml_mapping(path / "config.yaml")
    try:
        names = str(config["domain"]), str(config["codec"]["name"]), str(config["backend"]["name"])
    except (KeyError, TypeError) as exc:
        raise RunDirError(f"{path / 'config.yaml'} is not a run configuration (no {exc})") from None
    where = path / "codec.json"
    state = runcheck.read_json(where, dict)
    decoding = state.get(DECODING_KEY) or {}
    if not isinstance(decoding, dict):
        raise RunDirError(f"{where}: the decoding defaults are not a mapping")
    return {"run_dir": str(run_dir), "model": model_name(path),
            "domain": names[0], "codec": names[1], "backend": names[2],
            "conditions": _conditions(state.get(CONDITIONS_KEY), where), "text": _text(state.get(TEXT_KEY), where),
            "decoding": decoding}


def checkpoint_note(run_dir: str | Path, which: str, state: dict) -> str:
    """Which step ``generate`` or ``evaluate`` uses, and whether the run is still going: a run that is still
    training (or was stopped before its end) has a ``last.pt`` whose state gives no reason for stopping."""
    step = int(state.get("step", 0))
    last = Path(run_dir) / "last.pt"
    last_state = state
    if which != "last" and last.exists():
        try:
            last_state = runcheck.load_checkpoint(last).get("state", {})
        except RunDirError:  # a damaged last.pt says nothing about the best one in use
            last_state = {}
    last_step = int(last_state.get("step", step))
    if last_state.get("stopped_because"):
        return f"using {which}.pt (step {step} of {last_step}; training finished: {last_state['stopped_because']})"
    return (f"using {which}.pt from step {step}: the run is still training, or stopped before its end "
            f"(last.pt is at step {last_step}); generate again later for a later checkpoint")
