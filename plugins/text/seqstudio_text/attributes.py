"""ABC header fields as conditions (``seqstudio.conditions``): ``meter`` (``M:``) and ``key`` (``K:``).

An ABC tune already states them in-band, so a character model is conditioned by priming it with the header
(``X:1\\nM:6/8\\nK:Dm\\n``): the text domain declares ``conditions_as_prime`` and ``generate --condition`` turns
the asked values into that prime; a ``generate`` without ``--condition`` draws each tune's (meter, key) from the
training tunes' joint distribution and primes with that header, recorded in ``conditions.json`` as for the
other domains. Keys use the MIDI domain's spelling (``D:minor``, ``G:mixolydian``), so one
``--condition key=D:minor`` works for both domains.
"""

from __future__ import annotations

import re

MODE_NAMES = {"": "major", "maj": "major", "major": "major", "ion": "major", "m": "minor", "min": "minor",
              "minor": "minor", "aeo": "minor", "dor": "dorian", "phr": "phrygian", "lyd": "lydian",
              "mix": "mixolydian", "loc": "locrian"}
ABC_MODES = {"major": "", "minor": "m", "dorian": "dor", "phrygian": "phr", "lydian": "lyd", "mixolydian": "mix",
             "locrian": "loc"}
_KEY = re.compile(r"^\s*([A-Ga-g])([#b]?)\s*([A-Za-z]*)")


def key_from_abc(value: str) -> str | None:
    """``Dm`` -> ``D:minor``, ``Gmix`` -> ``G:mixolydian``, ``Bb`` -> ``Bb:major``; None for what is not a key
    (``K:none``, a clef alone)."""
    m = _KEY.match(value)
    if not m:
        return None
    mode = MODE_NAMES.get(m.group(3).lower()[:3] if m.group(3).lower() not in MODE_NAMES else m.group(3).lower())
    if mode is None:
        return None
    return f"{m.group(1).upper()}{m.group(2)}:{mode}"


def key_to_abc(key: str) -> str:
    tonic, _, mode = key.partition(":")
    return f"{tonic}{ABC_MODES.get(mode, '')}"


def attributes(text: str) -> dict[str, str]:
    """The first tune's ``M:`` and ``K:`` header fields (the header ends at ``K:``)."""
    out = {}
    for line in str(text).splitlines():
        if line.startswith("M:") and "meter" not in out:
            value = line[2:].strip()
            if value:
                out["meter"] = {"C": "4/4", "C|": "2/2"}.get(value, value)
        elif line.startswith("K:"):
            key = key_from_abc(line[2:])
            if key:
                out["key"] = key
            break
    return out


def prime_text(values: dict[str, str]) -> str:
    """The header that asks for ``values``: ``X:1``, then ``M:`` and ``K:`` as given."""
    lines = ["X:1"]
    if "meter" in values:
        lines.append(f"M:{values['meter']}")
    if "key" in values:
        lines.append(f"K:{key_to_abc(values['key'])}")
    return "\n".join(lines) + "\n"
