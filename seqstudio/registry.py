"""Find domains and backends through entry points, exactly as third-party plugins are found.

Groups: ``seqstudio.domains`` and ``seqstudio.backends``, each name pointing at a class. Entry points are read
on every call (cheap) so a plugin installed or put on ``sys.path`` at run time is seen; the class is imported
only when asked for, so one broken plugin never breaks commands that do not use it.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import EntryPoint, entry_points

from .backends.base import Backend
from .domain import Domain
from .errors import PluginError

GROUPS = {"domain": ("seqstudio.domains", Domain), "backend": ("seqstudio.backends", Backend)}


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
    group, base = GROUPS[kind]
    candidates = _entry_points(kind)
    if name not in candidates:
        valid = ", ".join(sorted(candidates)) or "none installed"
        raise PluginError(f"unknown {kind} {name!r}; available: {valid}")
    eps = candidates[name]
    if len(eps) > 1:
        owners = ", ".join(f"{_dist(ep)[0]} ({ep.value})" for ep in eps)
        raise PluginError(f"{kind} {name!r} is registered more than once: {owners}; uninstall one of them")
    ep = eps[0]
    try:
        cls = ep.load()
    except Exception as exc:  # a plugin's own bug must surface as a clear message, not a traceback
        raise PluginError(f"{kind} plugin {name!r} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"{kind} plugin {name!r} ({ep.value}) is not a subclass of {base.__module__}."
                          f"{base.__name__}")
    return cls


def load_domain(name: str) -> type[Domain]:
    return load("domain", name)


def load_backend(name: str) -> type[Backend]:
    return load("backend", name)


def describe(kind: str) -> list[PluginInfo]:
    """Every registered plugin of ``kind`` with its origin; broken ones carry their error instead."""
    infos = []
    for name, eps in sorted(_entry_points(kind).items()):
        for ep in eps:
            dist, version = _dist(ep)
            info = PluginInfo(kind, name, ep.value, dist, version)
            try:
                cls = load(kind, name)
                info.description = getattr(cls, "description", "") or ""
            except PluginError as exc:
                info.error = str(exc)
            infos.append(info)
    return infos


def domain_for_path(path) -> str | None:
    """Pick the installed domain that reads most of the files under ``path`` (None if none does)."""
    from pathlib import Path

    path = Path(path)
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    best, best_count = None, 0
    for name in names("domain"):
        try:
            domain = load_domain(name)()
        except PluginError:
            continue
        count = sum(1 for f in files if domain.accepts(f))
        if count > best_count:
            best, best_count = name, count
    return best
