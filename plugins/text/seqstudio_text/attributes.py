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
    """The first tune's ``M:`` and ``K:`` header fields (the header ends at ``K:``), and as provenance notes the
    header's layout (``_header``: its field letters after ``X:``, e.g. ``MLK``) and unit note length (``_unit``):
    a condition prime is written in the training tunes' most common layout (``prime_text``)."""
    out, letters, started = {}, [], False
    for line in str(text).splitlines():
        field = re.match(r"^([A-Za-z]):", line)
        if field and field.group(1) == "X":
            if started:
                break
            started = True
            continue
        if field:
            letters.append(field.group(1))
        if line.startswith("M:") and "meter" not in out:
            value = line[2:].strip()
            if value:
                out["meter"] = {"C": "4/4", "C|": "2/2"}.get(value, value)
        elif line.startswith("L:") and "_unit" not in out and line[2:].strip():
            out["_unit"] = line[2:].strip()
        elif line.startswith("K:"):
            key = key_from_abc(line[2:])
            if key:
                out["key"] = key
            break
    if letters and letters[-1] == "K":
        out["_header"] = "".join(letters)
    return out


def default_unit(meter: str | None) -> str:
    """ABC's own default unit note length: 1/16 for metres below 3/4, else 1/8."""
    try:
        top, bottom = (int(v) for v in str(meter).split("/"))
        return "1/16" if top / bottom < 0.75 else "1/8"
    except (ValueError, ZeroDivisionError):
        return "1/8"


def prime_text(values: dict[str, str]) -> str:
    """The header that asks for ``values``: ``X:1``, then ``M:``, ``L:`` and ``K:`` in the training tunes' layout
    (``_header``, default ``MLK``: every cleaned training tune states its unit length, and a prime without one
    led the model to write stray header lines or tunes music21 could not read). ``L:`` is the training tunes'
    most common (``_unit``), else ABC's default for the metre; ``M:`` and ``K:`` appear only when asked."""
    layout = [c for c in values.get("_header", "MLK") if c in "MLK"] or list("MLK")
    lines = ["X:1"]
    for letter in dict.fromkeys(layout):
        if letter == "M" and "meter" in values:
            lines.append(f"M:{values['meter']}")
        elif letter == "L":
            lines.append(f"L:{values.get('_unit') or default_unit(values.get('meter'))}")
        elif letter == "K" and "key" in values:
            lines.append(f"K:{key_to_abc(values['key'])}")
    return "\n".join(lines) + "\n"
