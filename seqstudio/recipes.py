"""Data recipes: YAML files saying where a dataset comes from and which domain reads it.

``seqstudio data build NAME DEST`` materialises a recipe as a folder of files in the domain's own output format
(MIDI for music), ready for ``seqstudio train DEST``. Sources:

* ``music21-corpus`` — files shipped inside the music21 package (no network): ``glob`` relative to its corpus
  folder; ``split_abc: true`` cuts multi-tune ABC books into one tune per file first.
* ``python-package`` — data files installed by a Python package (``package``, e.g. ``kanjivg``; no network at
  build time): ``glob`` relative to the package's install location.
* ``path`` — a dataset the user already has (``--source PATH``), e.g. Lakh MIDI; ``glob`` picks files.
* ``pitch-frames-json`` — one JSON file (``--source FILE``, checked against ``sha256``) mapping split names to
  lists of pieces, each piece a list of frames, each frame a list of MIDI pitches sounding for one grid step
  (``steps_per_quarter`` steps per quarter note). Written as ``train/ valid/ test/`` folders of MIDI files,
  a pitch held over consecutive frames becoming one note, so the piano-roll codec gives the frames back.

A recipe's optional ``extension`` names the built files' extension when it is not the domain's
``output_extension`` (``essen-folk-abc`` writes text-domain ABC tunes as ``.abc``).

Recipes are looked up in ``$SEQSTUDIO_RECIPES`` (a folder) and in the ``data_recipes/`` folder of this
checkout; ``NAME`` may also be a path to a recipe file.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .data import write_folder_info
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

    @property
    def needs_source(self) -> bool:
        """Whether the user must bring the data (``--source``): everything but the embedded corpora."""
        return self.source.get("type") not in ("music21-corpus", "python-package")


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


def _package_dir(recipe: Recipe) -> Path:
    import importlib.metadata

    package = recipe.source.get("package")
    if not package:
        raise ConfigError(f"{recipe.path}: a python-package source needs 'package'")
    try:
        return Path(importlib.metadata.distribution(package).locate_file(""))
    except importlib.metadata.PackageNotFoundError:
        raise DataError(f"recipe {recipe.name!r} reads the {package!r} package, which is not installed: "
                        f"pip install {package}") from None


def _require_source(recipe: Recipe, source: Path | None, what: str) -> Path:
    if source is None:
        raise ConfigError(f"recipe {recipe.name!r} needs your copy of the data: add --source {what} "
                          f"({recipe.source.get('expected', 'see ' + str(recipe.path))})")
    return Path(source)


def source_files(recipe: Recipe, source: Path | None, scratch: Path) -> list[Path]:
    kind = recipe.source.get("type")
    pattern = recipe.source.get("glob", "**/*")
    if kind == "music21-corpus":
        root = _music21_corpus_dir()
    elif kind == "python-package":
        root = _package_dir(recipe)
    elif kind == "path":
        root = _require_source(recipe, source, "PATH")
        if not root.exists():
            raise DataError(f"--source {root} does not exist")
    else:
        raise ConfigError(f"{recipe.path}: unknown source type {kind!r}; "
                          f"valid: music21-corpus, python-package, path, pitch-frames-json")
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
    except SeqStudioError as exc:
        return "error", str(exc)
    except Exception as exc:  # a parser crash on one file must not stop the others
        return "error", f"{Path(src).name}: {type(exc).__name__}: {exc}"


def frames_to_midi(frames: list[list[int]], steps_per_quarter: int = 1, tempo: float = 120.0,
                   velocity: int = 80):
    """Frames of sounding MIDI pitches -> a one-piano ``PrettyMIDI``; a pitch in consecutive frames is held."""
    import pretty_midi

    seconds = 60.0 / (tempo * steps_per_quarter)
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    sounding: dict[int, int] = {}  # pitch -> step where its current note started
    for step, frame in enumerate(list(frames) + [[]]):  # the empty frame at the end closes every note
        pitches = {int(p) for p in frame}
        for pitch in sorted(set(sounding) - pitches):
            piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=sounding.pop(pitch) * seconds,
                                                end=step * seconds))
        for pitch in sorted(pitches - set(sounding)):
            if not 0 <= pitch <= 127:
                raise DataError(f"pitch {pitch} at step {step} is not a MIDI pitch")
            sounding[pitch] = step
    piano.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(piano)
    return pm


def _build_pitch_frames(recipe: Recipe, domain, dest: Path, source: Path | None, limit: int,
                        progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    spec = recipe.source
    source = _require_source(recipe, source, "FILE")
    if not source.is_file():
        raise DataError(f"--source {source} is not a file (recipe {recipe.name!r} reads one JSON file)")
    blob = source.read_bytes()
    expected = str(spec.get("sha256", "")).lower()
    actual = hashlib.sha256(blob).hexdigest()
    if expected and actual != expected:
        raise DataError(f"--source {source}: sha256 {actual} does not match the recipe's {expected}; "
                        f"this is not the file recipe {recipe.name!r} expects")
    try:
        raw = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"--source {source}: not valid JSON ({exc})") from None
    splits = spec.get("splits") or {"train": "train", "valid": "valid", "test": "test"}
    missing = [key for key in splits.values() if key not in raw]
    if not isinstance(raw, dict) or missing:
        raise DataError(f"--source {source}: expected a JSON object with keys {', '.join(splits.values())}")
    steps_per_quarter = int(spec.get("steps_per_quarter", 1))
    tempo = float(spec.get("tempo", 120.0))
    jobs = [(split, i, piece) for split, key in splits.items()
            for i, piece in enumerate(raw[key][: limit or None])]
    written = 0
    for split in splits:
        (dest / split).mkdir(parents=True, exist_ok=True)
    for split, i, piece in tqdm(jobs, desc=f"building {recipe.name}", unit="file", disable=not progress):
        pm = frames_to_midi(piece, steps_per_quarter, tempo)
        domain.write(pm, dest / split / f"{split}-{i:03d}{domain.output_extension}")
        written += 1
    if not written:
        raise DataError(f"recipe {recipe.name!r}: {source} holds no pieces")
    write_folder_info(dest, domain=recipe.domain, recipe=recipe.name)
    return {"recipe": recipe.name, "dest": str(dest), "written": written, "skipped": 0}


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
    if recipe.source.get("type") == "pitch-frames-json":
        dest.mkdir(parents=True, exist_ok=True)
        limit = limit or int(recipe.options.get("limit", 0))
        return _build_pitch_frames(recipe, domain, dest, Path(source) if source else None, limit, progress)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seqstudio-recipe-") as scratch:
        files = source_files(recipe, Path(source) if source else None, Path(scratch))
        limit = limit or int(recipe.options.get("limit", 0))
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
        with _pool(workers) as pool:
            running = [pool.submit(_convert, recipe.domain, s, d) for s, d in jobs]
            for job in futures.as_completed(running):
                status, value = job.result()
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
    write_folder_info(dest, domain=recipe.domain, recipe=recipe.name)
    return {"recipe": recipe.name, "dest": str(dest), "written": written, "skipped": len(skipped)}
