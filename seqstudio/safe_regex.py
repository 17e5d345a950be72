"""Regular expressions from files (a data folder's ``attributes:``, a recipe's ``exclude``) with bounded work.

Python's backtracking engine takes exponential time on patterns such as ``^(a+)+$`` against a name that almost
matches (34 a's and a ``!``: ~15 minutes, growing ~4x every two characters). Two bounds, so such a pattern is
one clear line instead of a hang:

* ``compile`` refuses a repeat inside a repeat (``(a+)+``, ``(\\w*)*``, ``(a|b+)*``): nested quantifiers are the
  classic cause, and a pattern on file names never needs them;
* ``search_all`` runs every match of one pattern under one shared time limit (``safe_io.time_limit``: the regex
  engine checks for signals, so the main thread's timer interrupts it), which also catches the rarer
  exponential patterns without nesting (``(a|a)*``).
"""

from __future__ import annotations

import re
import warnings

from .errors import ConfigError, DataError
from .safe_io import time_limit

# CPU seconds all the matches of one pattern may take together (thousands of names take milliseconds).
MATCH_SECONDS = 5.0

with warnings.catch_warnings():  # the parser moved in 3.11; its old name warns
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        from re import _parser as sre_parse
    except ImportError:  # Python < 3.11
        import sre_parse

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
if hasattr(sre_parse, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_parse.POSSESSIVE_REPEAT)


def _nested_repeat(items, inside_repeat: bool) -> bool:
    """Whether the parsed pattern ``items`` has a repeat (max > 1) inside another one."""
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            repeats = high is sre_parse.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                return True
            if _nested_repeat(sub, inside_repeat or repeats):
                return True
        elif op is sre_parse.SUBPATTERN:
            if _nested_repeat(av[-1], inside_repeat):
                return True
        elif op is sre_parse.BRANCH:
            if any(_nested_repeat(branch, inside_repeat) for branch in av[1]):
                return True
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            if _nested_repeat(av[1], inside_repeat):
                return True
        elif getattr(sre_parse, "ATOMIC_GROUP", None) is op:
            if _nested_repeat(av, inside_repeat):
                return True
    return False


def compile(pattern: str, what: str) -> re.Pattern:
    """``re.compile(pattern)``, or ``ConfigError`` naming ``what`` for a malformed or nested-repeat pattern."""
    if not isinstance(pattern, str):
        raise ConfigError(f"{what}: expected a regular expression (text)")
    if len(pattern) > 1000:
        raise ConfigError(f"{what}: a regular expression of {len(pattern)} characters; at most 1000")
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ConfigError(f"{what}: not a regular expression ({exc})") from None
    if _nested_repeat(list(parsed), False):
        raise ConfigError(f"{what}: {pattern[:80]!r} repeats a group that itself repeats (like '(a+)+'), which "
                          f"can take hours on a name that almost matches; write it without the nested repeat")
    return compiled


def search_all(rx: re.Pattern, texts, what: str, seconds: float = MATCH_SECONDS) -> list:
    """``[rx.search(t) for t in texts]``, all of them together under ``seconds`` of CPU time; ``ConfigError``
    naming ``what`` and the pattern when they take longer."""
    try:
        with time_limit(seconds, what):
            return [rx.search(text) for text in texts]
    except DataError:
        raise ConfigError(f"{what}: the regular expression {rx.pattern[:80]!r} took more than {seconds:g} s of "
                          f"CPU time on the file names (catastrophic backtracking); simplify it") from None
