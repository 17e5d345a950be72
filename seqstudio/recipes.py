"""Data recipes: YAML files saying where a dataset comes from and which domain reads it.

``seqstudio data build NAME DEST`` materialises a recipe as a folder of files in the domain's own output format
(MIDI for music), ready for ``seqstudio train DEST``. Sources:

* ``music21-corpus`` — files shipped inside the music21 package (no network): ``glob`` relative to its corpus
  folder; ``split_abc: true`` cuts multi-tune ABC books into one tune per file first.
* ``path`` — a dataset the user already has (``--source PATH``), e.g. Lakh MIDI; ``glob`` picks files.

Recipes are looked up in ``$SEQSTUDIO_RECIPES`` (a folder) and in the ``data_recipes/`` folder of this
checkout; ``NAME`` may also be a path to a recipe file.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .errors import ConfigError, DataError, SeqStudioError

log = logging.getLogger("seqstudio")


@dataclasses.dataclass
class Recipe:
    name: str
    description: str
    domain: str
    source: dict[str, Any]
    path: Path
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def recipe_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SEQSTUDIO_RECIPES"):
        dirs.append(Path(os.environ["SEQSTUDIO_RECIPES"]))
    dirs.append(Path(__file__).resolve().parent.parent / "data_recipes")
    return [d for d in dirs if d.is_dir()]


def _parse(path: Path) -> Recipe:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping")
    missing = [k for k in ("domain", "source") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: recipe lacks {', '.join(missing)}")
    known = {"name", "description", "domain", "source"}
    return Recipe(name=raw.get("name", path.stem), description=raw.get("description", ""), domain=raw["domain"],
                  source=raw["source"], path=path, options={k: v for k, v in raw.items() if k not in known})


def list_recipes() -> list[Recipe]:
    found: dict[str, Recipe] = {}
    for d in recipe_dirs():
        for path in sorted(d.glob("*.yaml")):
            recipe = _parse(path)
            found.setdefault(recipe.name, recipe)
    return sorted(found.values(), key=lambda r: r.name)


def get_recipe(name: str) -> Recipe:
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return _parse(Path(name))
    recipes = {r.name: r for r in list_recipes()}
    if name not in recipes:
        raise ConfigError(f"unknown data recipe {name!r}; available: {', '.join(sorted(recipes)) or 'none'}")
    return recipes[name]


def _music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


def split_abc_book(path: Path, out_dir: Path) -> list[Path]:
    """Cut a multi-tune ABC file into one file per tune (each keeps the book's header lines)."""
    text = path.read_text(encoding="latin-1")
    parts = re.split(r"(?m)^(?=X:)", text)
    header, tunes = (parts[0], parts[1:]) if parts and not parts[0].startswith("X:") else ("", parts)
    paths = []
    for tune in tunes:
        number = re.match(r"X:\s*(\d+)", tune)
        name = f"{path.stem}-{number.group(1) if number else len(paths)}.abc"
        target = out_dir / name
        target.write_text(header + tune, encoding="utf-8")
        paths.append(target)
    return paths


def source_files(recipe: Recipe, source: Path | None, scratch: Path) -> list[Path]:
    kind = recipe.source.get("type")
    pattern = recipe.source.get("glob", "**/*")
    if kind == "music21-corpus":
        root = _music21_corpus_dir()
    elif kind == "path":
        if source is None:
            raise ConfigError(f"recipe {recipe.name!r} needs your copy of the data: add --source PATH "
                              f"({recipe.source.get('expected', 'see ' + str(recipe.path))})")
        root = Path(source)
        if not root.exists():
            raise DataError(f"--source {root} does not exist")
    else:
        raise ConfigError(f"{recipe.path}: unknown source type {kind!r}; valid: music21-corpus, path")
    files = sorted(p for p in root.glob(pattern) if p.is_file())
    if recipe.source.get("split_abc"):
        files = [t for f in files for t in split_abc_book(f, scratch)]
    exclude = recipe.source.get("exclude")
    if exclude:
        files = [f for f in files if not re.search(exclude, f.name)]
    if not files:
        raise DataError(f"recipe {recipe.name!r}: no files match {pattern!r} under {root}")
    return files


def _convert(domain_name: str, src: str, dst: str) -> tuple[str, str]:
    try:
        domain = registry.load_domain(domain_name)()
        domain.write(domain.read(Path(src)), Path(dst))
        return "ok", dst
    except SeqStudioError as exc:
        return "error", str(exc)
    except Exception as exc:  # a parser crash on one file must not stop the others
        return "error", f"{Path(src).name}: {type(exc).__name__}: {exc}"


def build(name: str, dest: str | Path, source: str | Path | None = None, limit: int = 0, workers: int = 0,
          progress: bool = True) -> dict[str, Any]:
    """Materialise recipe ``name`` into ``dest``; returns counts of written and skipped files."""
    from tqdm.auto import tqdm

    from .data import _pool

    recipe = get_recipe(name)
    domain = registry.load_domain(recipe.domain)()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest} already exists and is not empty; choose an empty or new folder")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seqstudio-recipe-") as scratch:
        files = source_files(recipe, Path(source) if source else None, Path(scratch))
        limit = limit or int(recipe.options.get("limit", 0))
        if limit:
            files = files[:limit]
        jobs = []
        used = set()
        for f in files:
            stem = f.stem
            while stem in used:
                stem += "_"
            used.add(stem)
            jobs.append((str(f), str(dest / f"{stem}{domain.output_extension}")))
        written, skipped = 0, []
        bar = tqdm(total=len(jobs), desc=f"building {recipe.name}", unit="file", disable=not progress)
        workers = workers or os.cpu_count() or 1
        with _pool(workers) as pool:
            running = [pool.submit(_convert, recipe.domain, s, d) for s, d in jobs]
            for job in futures.as_completed(running):
                status, value = job.result()
                if status == "ok":
                    written += 1
                else:
                    skipped.append(value)
                    log.warning("skipped %s", value)
                bar.update()
        bar.close()
    if not written:
        raise DataError(f"recipe {recipe.name!r}: no file could be converted ({len(skipped)} failed)")
    return {"recipe": recipe.name, "dest": str(dest), "written": written, "skipped": len(skipped)}
