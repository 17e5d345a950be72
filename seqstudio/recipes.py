"""Data recipes: YAML files saying where a dataset comes from and which domain reads it.

``seqstudio data build NAME DEST`` materialises a recipe as a folder of files in the domain's own output format
(MIDI for music), ready for ``seqstudio train DEST``. A recipe holds ``domain``, ``source`` (``type`` names a
source type, ``seqstudio.recipe_sources``; the rest are that type's options, plus ``exclude``, a regex on file
names), and optionally ``description``, ``limit``, ``extension`` (the built files' extension when it is not the
domain's ``output_extension``: ``essen-folk-abc`` writes text-domain ABC tunes as ``.abc``) and ``codec``
(options of a codec, by default the domain's default codec, recorded in DEST's ``seqstudio.yaml``; training on
DEST starts from them, below ``--config`` and ``--set``).

Recipes are looked up in ``$SEQSTUDIO_RECIPES`` (a folder) and in the ``data_recipes`` package folders that
installed plugins register (``seqstudio.recipes`` entry points, e.g. ``seqstudio_midi/data_recipes/``), so
recipes ship, and are found, with the plugin that reads their data; ``NAME`` may also be a path to a recipe file.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from . import registry, runlock, safe_yaml, staging
from .atomic import write_error
from .errors import ConfigError, DataError, DiskFullError, SeqStudioError, WriteError
from .recipe_sources import Recipe, RecipeSource, load_source  # noqa: F401 (Recipe: this module's name for it)

log = logging.getLogger("seqstudio")


def recipe_dirs() -> list[Path]:
    """Where recipes are looked up, first match of a name winning: ``$SEQSTUDIO_RECIPES``, then the plugins'."""
    dirs = [Path(os.environ["SEQSTUDIO_RECIPES"])] if os.environ.get("SEQSTUDIO_RECIPES") else []
    return [d for d in dirs if d.is_dir()] + registry.recipe_folders()


def _parse(path: Path) -> Recipe:
    try:
        raw = safe_yaml.load(path.read_text(), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping")
    missing = [k for k in ("domain", "source") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: recipe lacks {', '.join(missing)}")
    for key in ("source", "codec"):
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"{path}: the recipe's {key!r} must be a mapping")
    known = {"name", "description", "domain", "source", "codec"}
    return Recipe(name=raw.get("name", path.stem), description=raw.get("description", ""), domain=raw["domain"],
                  source=raw["source"], path=path, options={k: v for k, v in raw.items() if k not in known},
                  codec=raw.get("codec") or {})


_SHADOWED_REPORTED: set[tuple[str, str]] = set()


def list_recipes() -> list[Recipe]:
    """Every recipe by name; where two files give the same name the first folder of ``recipe_dirs`` wins and the
    other is named in a warning (once per process), so a plugin's recipe is never replaced without a word."""
    found: dict[str, Recipe] = {}
    for d in recipe_dirs():
        for path in sorted(d.glob("*.yaml")):
            recipe = _parse(path)
            first = found.setdefault(recipe.name, recipe)
            if first is not recipe and (str(first.path), str(path)) not in _SHADOWED_REPORTED:
                _SHADOWED_REPORTED.add((str(first.path), str(path)))
                log.warning("two data recipes are named %r: %s is used, %s is ignored (rename one)",
                            recipe.name, first.path, path)
    return sorted(found.values(), key=lambda r: r.name)


def get_recipe(name: str) -> Recipe:
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return _parse(Path(name))
    recipes = {r.name: r for r in list_recipes()}
    if name not in recipes:
        raise ConfigError(f"unknown data recipe {name!r}; available: {', '.join(sorted(recipes)) or 'none'}")
    return recipes[name]


def _convert(domain_name: str, src: str, dst: str) -> tuple[str, str]:
    """One source file into the dataset: re-written in the domain's output format, or copied as it is when it
    holds many samples (a QuickDraw ``.npz`` keeps its own split and format)."""
    import shutil

    try:
        domain = registry.load_domain(domain_name)()
        if domain.is_collection(Path(src)):
            dst = str(Path(dst).with_suffix(Path(src).suffix))
            domain.read_collection(Path(src))  # a broken file is reported now, not at training time
            shutil.copyfile(src, dst)
        else:
            domain.write(domain.read(Path(src)), Path(dst))
        return "ok", dst
    except Exception as exc:
        Path(dst).unlink(missing_ok=True)  # nothing half-written stays
        fatal = write_error(exc, Path(dst).parent, Path(dst).name)
        if fatal is not None:  # a full or read-only destination ends the build, it does not skip every file
            return "fatal", str(fatal)
        if isinstance(exc, SeqStudioError):
            return "error", str(exc)
        return "error", f"{Path(src).name}: {type(exc).__name__}: {exc}"  # a parser crash: the others go on


def _recorded_codec(recipe: Recipe, domain) -> dict[str, Any]:
    """The recipe's ``codec:`` section with its codec's name, checked now (a wrong option is a build error, not
    a surprise at training time); written into the built folder's ``seqstudio.yaml``."""
    if not recipe.codec:
        return {}
    values = dict(recipe.codec)
    name = values.pop("name", domain.default_codec)
    try:
        from .data import make_codec  # imports torch: only where a recipe is checked or built

        make_codec(domain, name, values)
    except SeqStudioError as exc:
        raise ConfigError(f"{recipe.path}: codec: {exc}") from None
    return {"name": name, **values}


def _recorded_attributes(recipe: Recipe) -> dict[str, str]:
    """The recipe's ``attributes:`` section (``{name: regex}`` on each file's path inside the built folder;
    ``seqstudio.folder_attributes``), checked now; written into the folder's ``seqstudio.yaml``."""
    from .folder_attributes import compile_path_rules

    rules = recipe.options.get("attributes") or {}
    try:
        compile_path_rules(rules)
    except ConfigError as exc:
        raise ConfigError(f"{recipe.path}: {exc}") from None
    return {str(k): str(v) for k, v in rules.items()}


def source_files(recipe: Recipe, source_type: RecipeSource, source: Path | None, scratch: Path) -> list[Path]:
    """The source's files without those whose name matches the recipe's ``exclude`` regex; DataError if none."""
    files = source_type.files(source, scratch)
    exclude = recipe.source.get("exclude")
    if exclude:
        from . import safe_regex

        what = f"{recipe.path}: source: exclude"
        rx = safe_regex.compile(exclude, what)
        files = [f for f, m in zip(files, safe_regex.search_all(rx, [f.name for f in files], what)) if not m]
    if not files:
        raise DataError(f"recipe {recipe.name!r}: no files to build from (all excluded by {str(exclude)[:80]!r})")
    return files


def build(name: str, dest: str | Path, source: str | Path | None = None, limit: int = 0, workers: int = 0,
          progress: bool = True) -> dict[str, Any]:
    """Materialise recipe ``name`` into ``dest``; returns counts of written and skipped files."""
    recipe = get_recipe(name)
    source_type = load_source(recipe)
    domain = registry.load_domain(recipe.domain)()
    codec = _recorded_codec(recipe, domain)
    attributes = _recorded_attributes(recipe)  # conditions: attributes read off the file names
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest} exists and is not a folder; choose an empty or new folder")
    if dest.exists() and not runlock.is_empty(dest):
        raise DataError(f"{dest} already exists and is not empty; choose an empty or new folder")
    with runlock.hold_new(dest, "data build DEST"), staging.folder_beside(dest) as stage:
        result = _build_into(recipe, source_type, domain, codec, attributes, stage, source, limit, workers,
                             progress)
        staging.publish(stage, dest)
    return {**result, "dest": str(dest)}


def _build_into(recipe: Recipe, source_type: RecipeSource, domain, codec: dict, attributes: dict, dest: Path,
                source, limit: int, workers: int, progress: bool) -> dict[str, Any]:
    user = Path(source) if source else None
    limit = limit or int(recipe.options.get("limit", 0))
    if source_type.writes_dataset:
        written, skipped = source_type.write(domain, dest, user, limit, progress), 0
        if not written:
            raise DataError(f"recipe {recipe.name!r}: the source gave no pieces")
    else:
        written, skipped = _convert_all(recipe, source_type, domain, dest, user, limit, workers, progress)
    from .data import write_folder_info

    write_folder_info(dest, domain=recipe.domain, recipe=recipe.name, **({"codec": codec} if codec else {}),
                      **({"attributes": attributes} if attributes else {}))
    return {"recipe": recipe.name, "dest": str(dest), "written": written, "skipped": skipped}


def _convert_all(recipe: Recipe, source_type: RecipeSource, domain, dest: Path, source: Path | None, limit: int,
                 workers: int, progress: bool) -> tuple[int, int]:
    """Convert the source's files into ``dest`` in parallel; (written, skipped), skipped files named in warnings."""
    from tqdm.auto import tqdm

    from .workers import pool as worker_pool

    with tempfile.TemporaryDirectory(prefix="seqstudio-recipe-") as scratch:
        files = source_files(recipe, source_type, source, Path(scratch))
        if limit:
            files = files[:limit]
        extension = recipe.options.get("extension", domain.output_extension)  # e.g. .abc tunes as text
        jobs = []
        used = set()
        for f in files:
            stem = f.stem
            while stem in used:
                stem += "_"
            used.add(stem)
            jobs.append((str(f), str(dest / f"{stem}{extension}")))
        written, skipped = 0, []
        bar = tqdm(total=len(jobs), desc=f"building {recipe.name}", unit="file", disable=not progress)
        workers = workers or os.cpu_count() or 1
        with worker_pool(workers) as pool:
            running = [pool.submit(_convert, recipe.domain, s, d) for s, d in jobs]
            for job in futures.as_completed(running):
                status, value = job.result()
                if status == "fatal":
                    for other in running:
                        other.cancel()
                    bar.close()
                    raise (DiskFullError if "no space" in value else WriteError)(value)
                if status == "ok":
                    written += 1
                else:
                    value = value.replace(scratch + os.sep, "")  # name split-out tunes by book, not temp path
                    skipped.append(value)
                    log.warning("skipped %s", value)
                bar.update()
        bar.close()
    if not written:
        raise DataError(f"recipe {recipe.name!r}: no file could be converted ({len(skipped)} failed)")
    return written, len(skipped)
