"""Recipe source types: where a data recipe's files come from (its ``source: {type: NAME, ...}`` section).

Source types are plugins, found through the ``seqstudio.recipe_sources`` entry-point group (name -> a
``RecipeSource`` subclass), so a domain plugin brings the sources of its own formats (seqstudio-midi registers
``music21-corpus`` and ``pitch-frames-json``) and the core knows none of them. The core registers only the
generic ones, defined here:

* ``folder`` (alias ``path``) — a folder the user already has (``--source PATH``); ``glob`` picks files.
* ``python-package`` — data files installed by a Python package (``package``, e.g. ``kanjivg``): ``glob``
  relative to the package's install location; no ``--source``, no network.
* ``file`` — one file the user brings (``--source FILE``), checked against the recipe's ``sha256`` when given.

A source either lists files (``files``) that the core converts one by one with the recipe's domain, or, with
``writes_dataset = True``, writes the dataset into DEST itself (``write``), e.g. as ``train/ valid/ test/``
folders. ``glob_files`` and ``user_file`` are the helpers plugin sources share with these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import safe_io
from .errors import ConfigError, DataError, SeqStudioError

if TYPE_CHECKING:
    from .domain import Domain

log = logging.getLogger("seqstudio")


@dataclasses.dataclass
class Recipe:
    """One data recipe as ``recipes`` parses it: what a source type is given (kept here, beside the source
    contract, so the sources need nothing from the module that builds them)."""

    name: str
    description: str
    domain: str
    source: dict[str, Any]
    path: Path
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    codec: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def needs_source(self) -> bool:
        """Whether the user must bring the data (``--source``), as its source type says. A type that is unknown
        or whose plugin is broken counts as needing it (a warning says why); ``data build`` gives the error."""
        try:
            return load_source(self).needs_source
        except SeqStudioError as exc:
            log.warning("recipe %r: %s", self.name, exc)
            return True


class RecipeSource:
    """One recipe's source. ``options`` is the recipe's ``source:`` mapping (``type`` and the type's own keys).

    Implement ``files`` or, setting ``writes_dataset``, ``write``. Raise ``ConfigError`` for a wrong recipe or
    missing ``--source`` and ``DataError`` for wrong data; say what to pass or fix.
    """

    needs_source: ClassVar[bool] = True
    """Whether the user must bring the data with ``--source`` (``seqstudio data list`` says so)."""
    writes_dataset: ClassVar[bool] = False
    """True: ``write`` builds DEST itself; False: the core converts what ``files`` returns."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.options: dict[str, Any] = recipe.source

    def files(self, source: Path | None, scratch: Path) -> list[Path]:
        """The files to convert, in a stable order (the core applies ``--limit`` and the ``exclude`` regex).

        ``source`` is the user's ``--source`` (None if not given); ``scratch`` a temporary folder, deleted after
        the build, for files made on the way (one tune per file cut from a book)."""
        raise NotImplementedError

    def write(self, domain: Domain, dest: Path, source: Path | None, limit: int, progress: bool) -> int:
        """Write the dataset into the empty folder ``dest`` in ``domain``'s format (at most ``limit`` pieces per
        split when ``limit`` > 0); return how many files were written. The core then writes DEST's
        ``seqstudio.yaml``."""
        raise NotImplementedError


def require_source(recipe: Recipe, source: Path | None, what: str) -> Path:
    """The user's ``--source``, or a ConfigError saying what the recipe expects there."""
    if source is None:
        raise ConfigError(f"recipe {recipe.name!r} needs your copy of the data: add --source {what} "
                          f"({recipe.source.get('expected', 'see ' + str(recipe.path))})")
    return Path(source)


def user_file(recipe: Recipe, source: Path | None) -> Path:
    """The user's ``--source FILE``, checked against the recipe's ``sha256`` (when it has one), so a build from
    the wrong file or version stops with a clear message instead of giving a subtly different dataset."""
    path = require_source(recipe, source, "FILE")
    if not path.is_file():
        raise DataError(f"--source {path} is not a file (recipe {recipe.name!r} reads one file)")
    expected = str(recipe.source.get("sha256", "")).lower()
    if expected:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise DataError(f"--source {path}: sha256 {digest.hexdigest()} does not match the recipe's {expected}; "
                            f"this is not the file recipe {recipe.name!r} expects")
    return path


def glob_files(recipe: Recipe, root: Path) -> list[Path]:
    """The files under ``root`` matching the recipe's ``glob`` (default: all), sorted; DataError if none.

    As for a training folder (``data.find_files``), only regular files inside ``root`` count: a link leading out
    of it, a FIFO or a device is left out, and one warning names what was; hidden files are skipped."""
    pattern = recipe.source.get("glob", "**/*")
    if not isinstance(pattern, str) or not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
        raise ConfigError(f"{recipe.path}: source: glob {str(pattern)[:80]!r} must be a pattern relative to the "
                          f"source folder (like '**/*.mid'), without '..'")
    real_root = os.path.realpath(root)
    files, refused = [], []
    for path in sorted(Path(root).glob(pattern)):
        if any(part.startswith(".") for part in path.relative_to(root).parts) or path.is_dir():
            continue
        target = os.path.realpath(path)
        if os.path.commonpath([real_root, target]) != real_root:
            refused.append(f"{path} (a link to {target}, outside {root})")
        elif reason := safe_io.special_file_reason(path):
            refused.append(f"{path} ({reason})")
        else:
            files.append(path)
    if refused:
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        log.warning("recipe %r leaves out %d file(s) that are not regular files inside %s: %s",
                    recipe.name, len(refused), root, shown)
    if not files:
        raise DataError(f"recipe {recipe.name!r}: no files match {pattern!r} under {root}")
    return files


class FolderSource(RecipeSource):
    """``folder`` / ``path``: the user's folder (``--source PATH``), files picked by ``glob``."""

    def files(self, source: Path | None, scratch: Path) -> list[Path]:
        root = require_source(self.recipe, source, "PATH")
        if not root.exists():
            raise DataError(f"--source {root} does not exist")
        return glob_files(self.recipe, root)


class PythonPackageSource(RecipeSource):
    """``python-package``: files installed by the distribution ``package``, picked by ``glob``."""

    needs_source = False

    def files(self, source: Path | None, scratch: Path) -> list[Path]:
        package = self.options.get("package")
        if not package:
            raise ConfigError(f"{self.recipe.path}: a python-package source needs 'package'")
        try:
            root = Path(importlib.metadata.distribution(package).locate_file(""))
        except importlib.metadata.PackageNotFoundError:
            raise DataError(f"recipe {self.recipe.name!r} reads the {package!r} package, which is not installed: "
                            f"pip install {package}") from None
        return glob_files(self.recipe, root)


class FileSource(RecipeSource):
    """``file``: the user's one file (``--source FILE``, checked against ``sha256``), converted as it is."""

    def files(self, source: Path | None, scratch: Path) -> list[Path]:
        return [user_file(self.recipe, source)]


def load_source(recipe: Recipe) -> RecipeSource:
    """The recipe's source object; ConfigError listing the installed types if its type is unknown, PluginError
    if the plugin that registers it fails to import."""
    from . import registry

    kind = recipe.source.get("type")
    installed = registry.names("recipe source")
    if kind not in installed:
        raise ConfigError(f"{recipe.path}: unknown source type {kind!r}; installed: {', '.join(installed) or 'none'}"
                          f" (a plugin adds more through the seqstudio.recipe_sources entry point)")
    return registry.load("recipe source", kind)(recipe)


def split_quotas(available: dict[str, int], limit: int) -> dict[str, int]:
    """How many of each split's pieces a ``--limit`` build writes: ``limit`` in all (``data build --limit 2000``
    writes 2000 files), shared in proportion to what each split holds (largest remainders), every split that holds
    pieces keeping at least one while the limit allows; 0 = everything."""
    total = sum(available.values())
    if not limit or limit >= total:
        return dict(available)
    nonempty = [k for k, n in available.items() if n > 0]
    floor = {k: (1 if k in nonempty and limit >= len(nonempty) else 0) for k in available}
    rest = limit - sum(floor.values())
    share = {k: rest * max(0, available[k] - floor[k]) / max(1, total - sum(floor.values())) for k in available}
    quota = {k: floor[k] + int(share[k]) for k in available}
    for k in sorted(available, key=lambda k: share[k] - int(share[k]), reverse=True):
        if sum(quota.values()) >= limit:
            break
        if quota[k] < available[k]:
            quota[k] += 1
    return quota

