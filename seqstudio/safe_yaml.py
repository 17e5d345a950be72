"""YAML read with bounded work: a small file cannot expand into a huge value.

``yaml.safe_load`` runs no code, but it does expand aliases: 30 lines of ``a1: &a1 [*a0, *a0, ...]`` describe
about 10^9 elements, and constructing them takes minutes and gigabytes before any check sees the value (an
"alias bomb"). Every YAML file seqstudio reads (``--config``, a run directory's ``config.yaml``, a data
folder's ``seqstudio.yaml``, a recipe, a ``--set`` value) goes through ``load`` here, which composes the node
graph first (aliases are references there, so composing is cheap), counts the nodes the value *would* have once
every alias is expanded, and constructs it only when that count is small. Recursive aliases are refused too.

``brief`` shortens a value for an error message: a message never formats an unbounded value.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

from .errors import ConfigError

# Far more than any seqstudio file holds (a config has tens of values, a recipe a few hundred).
MAX_NODES = 100_000
# Text longer than this is not a seqstudio YAML file (composing it would take a while).
MAX_TEXT_CHARS = 4 << 20

_brief = reprlib.Repr()
_brief.maxstring = 60
_brief.maxother = 60
_brief.maxlist = _brief.maxtuple = _brief.maxdict = _brief.maxset = 6
_brief.maxlevel = 3


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, without ever building the whole repr."""
    text = _brief.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expanded_size(root: yaml.Node | None, limit: int = MAX_NODES) -> int:
    """Nodes in ``root``'s value with every alias expanded, counting stops just past ``limit``.

    ``ValueError`` for a recursive alias (a node that contains itself: its expansion never ends)."""
    if root is None:
        return 0
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            size[key] = min(total, limit + 1)
            continue
        if key in size:
            continue
        if key in on_path:
            raise ValueError("a recursive alias (a value that contains itself)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ValueError("a recursive alias (a value that contains itself)")
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def compose(text: str, where: str, error: type[Exception] = ConfigError) -> yaml.Node | None:
    """The node graph of one YAML document, checked to expand to at most ``MAX_NODES`` nodes.

    ``yaml.YAMLError`` passes through (callers name the line); a too-big or recursive value is ``error``."""
    if len(text) > MAX_TEXT_CHARS:
        raise error(f"{where}: {len(text):,} characters, too long for a seqstudio YAML file")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise error(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()
    try:
        nodes = expanded_size(node)
    except ValueError as exc:
        raise error(f"{where}: refused: {exc}") from None
    if nodes > MAX_NODES:
        raise error(f"{where}: refused: its aliases (*name) expand to more than {MAX_NODES:,} values, far more "
                    f"than a seqstudio file holds (an 'alias bomb' would take minutes and gigabytes to read)")
    return node


def load(text: str, where: str, error: type[Exception] = ConfigError) -> Any:
    """``yaml.safe_load(text)``, refusing (with ``error``) a value that expands past ``MAX_NODES`` nodes."""
    node = compose(text, where, error)
    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except RecursionError:
        raise error(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()
