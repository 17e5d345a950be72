"""Attributes a data folder declares from its file names: ``seqstudio.yaml``'s ``attributes: {name: regex}``
(written by ``data build`` from a recipe's ``attributes:``), read off each file's path inside the folder and merged
into what the domain said (``Domain.attributes``), for any domain: a folder of files named by class, book or region
conditions on that with no plugin code (the essen-folk recipe's ``collection``; ``seqstudio.conditions``)."""

from __future__ import annotations

import re

from .errors import ConfigError


def compile_path_rules(rules) -> dict[str, "re.Pattern"]:
    """``{name: regex}`` (a folder's ``seqstudio.yaml`` ``attributes:``, e.g. the essen-folk recipe's
    ``collection: '^([A-Za-z]+?)\\d*-\\d+\\.mid$'``) compiled; a ConfigError for anything else (including a
    nested repeat such as ``(a+)+``, see ``seqstudio.safe_regex``)."""
    from . import safe_regex

    if not isinstance(rules, dict):
        raise ConfigError("attributes: expected a mapping of attribute name -> regex on the file's path")
    out = {}
    for name, pattern in rules.items():
        if not isinstance(name, str) or not name or name.startswith("_") or not isinstance(pattern, str):
            raise ConfigError(f"attributes: {name!r}: expected NAME: REGEX (a name not starting with '_')")
        out[name] = safe_regex.compile(pattern, f"attributes: {name}")
        if out[name].groups < 1:
            raise ConfigError(f"attributes: {name}: the regex needs a group, whose match is the value")
    return out


def folder_attributes(root, path, rules: dict) -> dict[str, str]:
    """The attributes ``rules`` (``compile_path_rules``) read off ``path``'s path inside the data folder
    ``root`` (``/``-separated): for each rule that matches, its first group. Domain-agnostic: a folder of
    files named by class, book or region conditions on that with no plugin code."""
    return folder_attributes_of(root, [path], rules)[0]


def folder_attributes_of(root, paths: list, rules: dict) -> list[dict[str, str]]:
    """``folder_attributes`` of many paths, each rule's matches under one time limit (``safe_regex``)."""
    from pathlib import Path

    from .safe_regex import search_all

    base = Path(root).resolve()
    rels = []
    for path in paths:
        try:
            rels.append(Path(path).resolve().relative_to(base).as_posix())
        except ValueError:
            rels.append(Path(path).name)
    out: list[dict[str, str]] = [{} for _ in rels]
    for name, rx in rules.items():
        for attrs, m in zip(out, search_all(rx, rels, f"{Path(root) / 'seqstudio.yaml'}: attributes: {name}")):
            if m and m.group(1):
                attrs[name] = m.group(1)
    return out


def add_folder_attributes(encoded, root, rules) -> None:
    """Merge the folder's declared attributes (``seqstudio.yaml`` ``attributes:``) into ``encoded.attributes``
    (``data.encode_files``'s table, one dict per file or ``{split: [dicts]}``); a declared attribute that
    matches wins over the domain's value of the same name. Done after the encoding cache, so changing the
    declaration never re-encodes a file."""
    if not rules:
        return
    try:
        compiled = compile_path_rules(rules)
    except ConfigError as exc:
        from pathlib import Path

        raise ConfigError(f"{Path(root) / 'seqstudio.yaml'}: {exc}") from None
    table = getattr(encoded, "attributes", None)
    if table is None:
        return
    paths = list(encoded)
    for path, extra in zip(paths, folder_attributes_of(root, paths, compiled)):
        if not extra:
            continue
        attrs = table.get(path)
        value = encoded[path]
        if isinstance(value, dict):
            table[path] = {s: [{**(a or {}), **extra} for a in v] for s, v in (attrs or {}).items()
                           if isinstance(v, list)}
        else:
            table[path] = {**(attrs if isinstance(attrs, dict) else {}), **extra}
