"""What a shipped model's card (MODEL.md) promises, in a form a program can check.

A card is written for people, with two fenced blocks for programs:

* under ``## How it was trained``, a ``sh`` block: the exact commands, run from an empty folder, that build the
  data and train the model into ``runs/NAME`` (``make models`` runs them again: ``bench/models.py``);
* under ``## Figures``, a ``json`` block: ``{"test": {...}, "judge": {...}, "quick_check": {...}}``. ``test``
  holds `evaluate RUN DATA --split test` on the recipe's whole test split; ``quick_check`` the same figure on
  the test split of a small build of the recipe (``{"recipe", "limit", "split", "nll"}``), which a fast test
  can rebuild in seconds (``tests/test_models.py``) to check that the shipped weights still give the card's
  figures with the code as it is now.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import RunDirError

QUICK_TOLERANCE = 2e-3  # nats per step: the shipped weights against the card's quick-check figure (not a retrain)


def _block(card: str, heading: str, language: str) -> str | None:
    section = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", card, re.M | re.S)
    if not section:
        return None
    block = re.search(rf"^```{language}\s*$(.*?)^```\s*$", section.group(1), re.M | re.S)
    return block.group(1) if block else None


def figures(card_path: Path) -> dict:
    """The card's ``## Figures`` JSON block."""
    text = Path(card_path).read_text(encoding="utf-8")
    block = _block(text, "Figures", "json")
    if block is None:
        raise RunDirError(f"{card_path} has no ```json block under '## Figures'")
    try:
        values = json.loads(block)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{card_path}: the figures block is not valid JSON ({exc.msg})") from None
    if not isinstance(values, dict):
        raise RunDirError(f"{card_path}: the figures block is not a JSON object")
    return values


def commands(card_path: Path) -> list[str]:
    """The card's training commands (``## How it was trained``), one per line, continuation lines joined."""
    text = Path(card_path).read_text(encoding="utf-8")
    block = _block(text, "How it was trained", "sh")
    if block is None:
        raise RunDirError(f"{card_path} has no ```sh block under '## How it was trained'")
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def quick_check(run_dir: Path, check: dict, workdir: Path, progress: bool = False) -> dict:
    """Build ``check['limit']`` files of ``check['recipe']`` into ``workdir`` and evaluate the run on its
    ``check['split']``: the figures ``evaluate`` gives now, to compare with the card's."""
    from . import api, recipes

    data_dir = Path(workdir) / f"{check['recipe']}-{check['limit']}"
    if not data_dir.is_dir():
        recipes.build(check["recipe"], data_dir, limit=int(check["limit"]), workers=1, progress=progress)
    run = api.load(run_dir)
    return api.evaluate_likelihood(run, data_dir, split=check.get("split", "test"), progress=progress)
