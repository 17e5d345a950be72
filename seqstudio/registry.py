"""Find domains, backends and recipe sources through entry points, exactly as third-party plugins are found.

Groups: ``seqstudio.domains``, ``seqstudio.backends`` and ``seqstudio.recipe_sources``, each name pointing at a
class, and ``seqstudio.recipes``, each name pointing at a package that holds data-recipe YAML files. Entry
points are read on every call (cheap) so a plugin installed or put on ``sys.path`` at run time is seen; the
class is imported only when asked for, so one broken plugin never breaks commands that do not use it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import PluginError
from .errors import SeqStudioError as SeqStudioErrorBase

if TYPE_CHECKING:
    from .backends.base import Backend
    from .domain import Domain

log = logging.getLogger("seqstudio")
# kind -> (entry-point group, "module:base class"); the base classes are imported only when a plugin is loaded,
# so listing names (`data list`, `--help`) never pays for torch's import
GROUPS = {"domain": ("seqstudio.domains", "seqstudio.domain:Domain"),
          "backend": ("seqstudio.backends", "seqstudio.backends.base:Backend"),
          "recipe source": ("seqstudio.recipe_sources", "seqstudio.recipe_sources:RecipeSource")}


def base_class(kind: str) -> type:
    """The class every ``kind`` plugin must derive from."""
    import importlib

    module, name = GROUPS[kind][1].split(":")
    return getattr(importlib.import_module(module), name)
RECIPE_FOLDERS = "seqstudio.recipes"


@dataclasses.dataclass
class PluginInfo:
    kind: str
    name: str
    value: str  # "module:Class"
    distribution: str
    version: str
    error: str | None = None  # set when the plugin could not be loaded
    description: str = ""


def _entry_points(kind: str) -> dict[str, list[EntryPoint]]:
    group, _ = GROUPS[kind]
    found: dict[str, list[EntryPoint]] = {}
    seen = set()
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        key = (ep.name, ep.value, dist.name if dist else "")
        if key in seen:  # the same distribution seen twice on sys.path (e.g. editable + site) is one plugin
            continue
        seen.add(key)
        found.setdefault(ep.name, []).append(ep)
    return found


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("?", "?")


def names(kind: str) -> list[str]:
    return sorted(_entry_points(kind))


def load(kind: str, name: str) -> type:
    """The plugin class registered as ``name``; PluginError (listing valid names) if unknown or broken."""
    group = GROUPS[kind][0]
    candidates = _entry_points(kind)
    if name not in candidates:
        valid = ", ".join(sorted(candidates)) or "none installed"
        raise PluginError(f"unknown {kind} {name!r}; available: {valid}")
    eps = candidates[name]
    if len(eps) > 1:
        raise DuplicatePlugin(kind, name, eps)
    ep = eps[0]
    cls = _import(ep, f"{kind} plugin {name!r} ({ep.value})")
    base = base_class(kind)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"{kind} plugin {name!r} ({ep.value}) is not a subclass of {base.__module__}."
                          f"{base.__name__}")
    return cls


class DuplicatePlugin(PluginError):
    """Two distributions register the same name: using either would silently drop the other (a plugin that
    registers ``midi`` must not disable the MIDI domain), so every command that needs the name refuses."""

    def __init__(self, kind: str, name: str, eps: list[EntryPoint]):
        owners = " and ".join(f"{_dist(ep)[0]} ({ep.value})" for ep in eps)
        super().__init__(f"{kind} {name!r} is registered more than once, by {owners}; commands that use the "
                         f"{kind} {name!r} (train, generate, evaluate, render, convert of its files) refuse to run "
                         f"until one of them is uninstalled")


def _import(ep: EntryPoint, what: str):
    """``ep.load()``; any failure of the plugin's import, ``SystemExit`` included (a plugin that calls
    ``sys.exit`` at import must not end the command), is a PluginError. ``KeyboardInterrupt`` still interrupts."""
    try:
        return ep.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin's own bug must surface as a clear message, not a traceback
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise PluginError(f"{what} failed to load: {detail}") from None


def load_domain(name: str) -> type[Domain]:
    return load("domain", name)


def load_backend(name: str) -> type[Backend]:
    return load("backend", name)


def describe(kind: str, memo: dict | None = None) -> list[PluginInfo]:
    """Every registered plugin of ``kind`` with its origin; broken ones carry their error instead.

    ``memo`` (``plugin_memo``): descriptions of plugins that loaded before, by ``_fingerprint``; a plugin found
    there is not imported again (importing the backends means importing torch, 2-3 s), and one that loads is
    added. Errors are never remembered: a broken plugin is imported, and reported, every time."""
    infos = []
    for name, eps in sorted(_entry_points(kind).items()):
        for ep in eps:
            dist, version = _dist(ep)
            info = PluginInfo(kind, name, ep.value, dist, version)
            key = _fingerprint(kind, ep) if memo is not None and len(eps) == 1 else None
            if key is not None and key in memo:
                info.description = memo[key]
                infos.append(info)
                continue
            try:
                cls = load(kind, name)
                doc = (cls.__doc__ or "").strip().splitlines()
                info.description = getattr(cls, "description", "") or (doc[0].replace("``", "") if doc else "")
                if key is not None:
                    memo[key] = info.description
            except PluginError as exc:
                info.error = str(exc)
            infos.append(info)
    return infos


def _fingerprint(kind: str, ep: EntryPoint) -> str | None:
    """What a remembered description depends on: the entry point, its distribution's version, and the size and
    time of the file that defines the class (found without running it); None when that file cannot be found."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(ep.module)
        st = os.stat(spec.origin) if spec is not None and spec.origin else None
    except Exception:  # a package whose __init__ fails: load() will say so
        return None
    if st is None:
        return None
    dist, version = _dist(ep)
    return f"{kind}|{ep.name}|{ep.value}|{dist}|{version}|{spec.origin}|{st.st_size}|{st.st_mtime_ns}"


def plugin_memo_path() -> Path:
    from .cache import cache_dir

    return cache_dir() / "plugins.json"


def read_plugin_memo() -> dict:
    """The remembered descriptions (``describe``); an unreadable file is an empty memo, never an error."""
    import json

    try:
        memo = json.loads(plugin_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in memo.items()} if isinstance(memo, dict) else {}


def write_plugin_memo(memo: dict) -> None:
    """Best effort: a cache folder that cannot be written only means the next listing imports again."""
    import json

    from .atomic import atomic_write

    try:
        path = plugin_memo_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(memo, sort_keys=True), encoding="utf-8"))
    except (OSError, SeqStudioErrorBase):
        pass


def recipe_folders() -> list[Path]:
    """The folders of data recipes that installed packages ship (``seqstudio.recipes``: name -> the package
    holding the ``*.yaml`` files as package data), by entry-point name. A package that fails to import is left
    out with a warning, so one broken plugin never hides the other recipes."""
    import importlib.resources

    folders: list[Path] = []
    for ep in sorted(entry_points(group=RECIPE_FOLDERS), key=lambda ep: (ep.name, ep.value)):
        try:
            folder = Path(str(importlib.resources.files(ep.module)))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's own import error (even sys.exit) must not break `data list`
            log.warning("recipes of %s (%s) cannot be read: %s: %s", ep.name, ep.value, type(exc).__name__, exc)
            continue
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


class AmbiguousDomain(PluginError):
    """Several installed domains read the same files equally well: the user must choose one (``--domain``).

    Guessing would let any plugin that reads a common extension (a ``drums`` domain reading ``.mid``) silently
    take over folders meant for another; ``candidates`` names the domains that tied."""

    def __init__(self, path, candidates: list[str], count: int):
        self.candidates = candidates
        super().__init__(f"several installed domains read {count} of the files in {path}: "
                         f"{', '.join(candidates)}; choose one with --domain NAME")


def _files_below(folder: Path) -> list[str]:
    """The files under ``folder`` as ``rglob("*")`` + ``is_file()`` found them (a link to a file counts, a linked
    folder is not entered), as path strings, from the directory listing's file types: no stat of a plain file."""
    files, stack = [], [os.fspath(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file():
                            files.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return files


def _suffix(path: str) -> str:
    """``Path(path).suffix.lower()`` without building a ``Path`` (the guess looks at every file of a folder)."""
    name = path.rpartition(os.sep)[2]
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def _accepted_count(domain, files: list[str], by_suffix: Counter) -> int:
    """How many of ``files`` ``domain.accepts``: by extension alone, from the per-extension counts, except for the
    extensions its ``accepts`` must look into (``Domain.sniffed_extensions``), whose files it is asked about one
    by one; a domain that overrides ``accepts`` without declaring them is asked about every file."""
    from .domain import Domain

    sniffed = () if type(domain).accepts is Domain.accepts else type(domain).sniffed_extensions
    if sniffed is None:
        return sum(1 for f in files if domain.accepts(Path(f)))
    sniffed = {e.lower() for e in sniffed}
    count = sum(by_suffix[e] for e in set(domain.extensions) - sniffed)  # as accepts: suffix.lower() in extensions
    if any(by_suffix[e] for e in sniffed):
        count += sum(1 for f in files if _suffix(f) in sniffed and domain.accepts(Path(f)))
    return count


def _domain_counts(path) -> dict[str, int]:
    """Installed domain name -> how many files under ``path`` its ``accepts`` takes (broken plugins left out)."""
    from .gc_pause import gc_paused

    with gc_paused():  # a path and a few strings per file, all kept until the end (see gc_pause)
        return _count_domains(path)


def _count_domains(path) -> dict[str, int]:
    from .errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    files = _files_below(path) if path.is_dir() else [os.fspath(path)]
    by_suffix = Counter(map(_suffix, files))
    counts = {}
    for name in names("domain"):
        try:
            domain = load_domain(name)()
        except DuplicatePlugin:  # never silently: it would hide the domain the files are meant for
            raise
        except PluginError:  # `seqstudio plugins` reports it; it reads nothing here
            continue
        count = _accepted_count(domain, files, by_suffix)
        if count:
            counts[name] = count
    return counts


def domains_for_path(path) -> list[str]:
    """Every installed domain that reads some file under ``path``, the one reading most first (ties by name)."""
    counts = _domain_counts(path)
    return sorted(counts, key=lambda name: (-counts[name], name))


def domain_for_path(path) -> str | None:
    """The installed domain that reads most of the files under ``path``; None if none reads any.

    A tie is an ``AmbiguousDomain`` error, never a guess: domains sharing an extension tell their files apart
    in ``Domain.accepts`` (MusicXML and IAM-OnDB strokes are both ``.xml``), or the user passes ``--domain``.
    """
    counts = _domain_counts(path)
    if not counts:
        return None
    best = max(counts.values())
    tied = sorted(name for name, count in counts.items() if count == best)
    if len(tied) > 1:
        raise AmbiguousDomain(path, tied, best)
    return tied[0]
