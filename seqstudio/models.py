"""Trained models that install with seqstudio, and the name -> run resolution every RUN argument goes through.

A models distribution registers one entry point in the ``seqstudio.models`` group, pointing at a package whose
folder holds one subfolder per model, each in the exported layout (``seqstudio.export``: ``config.json``,
``model.safetensors``, ``codec.json``, ``MODEL.md``); the subfolder's name is the model's name. seqstudio's
own models (``plugins/models``, the ``seqstudio-models`` distribution) are found exactly as a third party's
are. The package is located without being imported (``importlib.util.find_spec``), so listing models runs no
plugin code; a package that cannot be found is a warning, never fatal to the other models.

``resolve(arg)`` turns what a user typed where a RUN is accepted into a run directory: a run directory as it
is, an exported folder or an installed model's name materialized once (``export.materialize``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import re
from importlib.metadata import entry_points
from pathlib import Path

from .errors import PluginError, RunDirError

log = logging.getLogger("seqstudio")
GROUP = "seqstudio.models"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclasses.dataclass
class ModelInfo:
    name: str
    path: Path  # the exported folder
    provider: str  # the entry point's name (the distribution that ships it)

    @property
    def headline(self) -> str:
        return card_headline(self.path / "MODEL.md")


def card_headline(card: Path) -> str:
    """The card's first heading (``# name: what it does``), without the name; '' when there is none."""
    try:
        with card.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("# "):
                    text = line[2:].strip()
                    head, sep, rest = text.partition(": ")
                    return rest if sep and NAME.match(head) else text
    except OSError:
        pass
    return ""


def _package_folder(module: str) -> Path | None:
    """The folder of ``module`` without importing it (for a dotted name Python imports the parents only)."""
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def installed() -> dict[str, ModelInfo]:
    """Every installed model by name. Two providers shipping the same name: the name is refused (listed with
    neither), as duplicate plugin names are."""
    found: dict[str, list[ModelInfo]] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value)):
        try:
            folder = _package_folder(ep.module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken parent package: its models are left out, the others stay
            log.warning("models of %s (%s) cannot be found: %s: %s", ep.name, ep.value, type(exc).__name__, exc)
            continue
        if folder is None or not folder.is_dir():
            log.warning("models of %s (%s): no such package folder", ep.name, ep.value)
            continue
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and NAME.match(sub.name) and (sub / "config.json").is_file():
                infos = found.setdefault(sub.name, [])
                if all(i.path != sub for i in infos):
                    infos.append(ModelInfo(sub.name, sub, ep.name))
    models = {}
    for name, infos in found.items():
        if len(infos) > 1:
            log.warning("model %r is shipped by %s: it is left out until one is uninstalled", name,
                        " and ".join(i.provider for i in infos))
            continue
        models[name] = infos[0]
    return models


def model_folder(name: str) -> Path:
    models = installed()
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise PluginError(f"no installed model is named {name!r} (installed: {known}; `seqstudio models`)")
    return models[name].path


def resolve(arg: str | Path) -> Path:
    """The run directory for a RUN argument: a run directory, an exported model folder, or an installed model's
    name (a folder of that name in the working directory wins: the user named it)."""
    from . import export

    path = Path(arg)
    if (path / "config.yaml").exists() and (path / "codec.json").exists():  # rundir.is_run_dir, without torch
        return path
    if path.is_dir() and export.is_exported(path):
        return export.materialize(path)
    if not path.exists() and NAME.match(str(arg)):
        models = installed()
        if str(arg) in models:
            return export.materialize(models[str(arg)].path)
        raise RunDirError(f"{arg} is neither a run directory nor an installed model (installed: "
                          f"{', '.join(sorted(models)) or 'none'}; `seqstudio models` lists them)")
    return path  # left to the command, which says what is wrong with it
