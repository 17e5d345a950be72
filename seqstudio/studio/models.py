"""The runs a studio serves, and what a request may ask of them.

The studio serves only the run directories named on its command line; a request names one by its index in
that list, never by a path. What a request asks is checked here against limits and against what the run knows
(its condition values, its text alphabet), so a bad request is one clear line before any work is queued.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TEXT_BIAS
from ..errors import ConfigError

MAX_SAMPLES = 8  # samples per request
MAX_LENGTH = 2000  # steps per sample
MAX_TEXT_CHARS = 120  # characters of a line to write (or of what a style line says)
MAX_UPLOAD_BYTES = 2 << 20  # one uploaded file (a MIDI file to continue, a style line)
MAX_BODY_BYTES = 4 << 20  # one request (an upload travels base64-encoded in JSON: 4/3 of its size)


def megabytes(n: int) -> str:
    """A size in words for messages."""
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} kB"


@dataclass
class Upload:
    """A file from the page: its name as the user gave it (shown, escaped; never used as a path), the
    extension the studio will save it under (one the run's domain reads), and its bytes."""

    name: str
    suffix: str
    data: bytes


@dataclass
class Request:
    """A checked request: ``kind`` is ``samples`` (generate / continue a file) or ``hand`` (write a line)."""

    kind: str
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    length: int | None = None
    bias: float = 0.0
    seed: int | None = None
    conditions: dict[str, str] = field(default_factory=dict)
    prime: Upload | None = None
    text: str = ""
    style: Upload | None = None
    style_text: str = ""


class StudioModel:
    """One served run: what the page needs to build its menus (read without loading the weights) and the
    loaded run, made on first use in the model's worker thread."""

    def __init__(self, index: int, path: Path):
        from .. import api, registry

        self.index, self.path = index, Path(path)
        self.info = api.run_info(self.path)
        domain = registry.load_domain(self.info["domain"])()
        self.extensions = tuple(domain.extensions)
        self.can_play = bool(domain.can_render_audio)
        self._run = None
        self._lock = threading.Lock()

    @property
    def alphabet(self) -> str | None:
        text = self.info.get("text")
        return text["alphabet"] if text else None

    @property
    def default_bias(self) -> float:
        """Lines written from text sample at ``TEXT_BIAS`` unless asked otherwise, as ``generate --text`` does."""
        return TEXT_BIAS if self.alphabet else 0.0

    def describe(self) -> dict[str, Any]:
        """The page's view of the run: names and menus only (the run's folder name, never its full path)."""
        conditions = self.info.get("conditions") or {}
        name = self.info.get("model") or self.path.resolve().name  # an installed model by its own name
        return {"index": self.index, "name": name, "domain": self.info["domain"],
                "backend": self.info["backend"], "codec": self.info["codec"],
                "mode": "hand" if self.alphabet else "samples",
                "defaults": {"bias": self.default_bias},
                "conditions": {name: sorted(values, key=lambda v: -values[v])
                               for name, values in (conditions.get("attributes") or {}).items()},
                "alphabet": self.alphabet, "extensions": list(self.extensions), "audio": self.can_play,
                "limits": {"samples": MAX_SAMPLES, "length": MAX_LENGTH, "text": MAX_TEXT_CHARS,
                           "upload_bytes": MAX_UPLOAD_BYTES}}

    def run(self):
        """The loaded run (its weights), loaded once."""
        with self._lock:
            if self._run is None:
                from .. import api

                self._run = api.load(self.path)
            return self._run

    # -- checking a request ------------------------------------------------------------------------------------------
    def parse(self, body: Any) -> Request:
        if not isinstance(body, dict):
            raise ConfigError("the request must be a JSON object")
        kind = body.get("kind", "samples")
        mode = self.describe()["mode"]
        if kind not in ("samples", "hand"):
            raise ConfigError(f"unknown kind of request {str(kind)[:20]!r}: 'samples' or 'hand'")
        if kind != mode:
            takes = "a line of text to write" if mode == "hand" else "sample requests"
            raise ConfigError(f"run {self.path.resolve().name!r} takes {takes}, not {kind!r}")
        req = Request(kind=kind)
        req.n = _number(body, "n", int, 1, 1, MAX_SAMPLES, "samples")
        req.temperature = _number(body, "temperature", float, 1.0, 0.0, 5.0, "temperature")
        req.top_p = _number(body, "top_p", float, 1.0, 0.01, 1.0, "top-p")
        req.top_k = _number(body, "top_k", int, 0, 0, 10_000, "top-k")
        req.bias = _number(body, "bias", float, self.default_bias, 0.0, 10.0, "bias")
        if body.get("length") not in (None, ""):
            req.length = _number(body, "length", int, None, 1, MAX_LENGTH, "length")
        if body.get("seed") not in (None, ""):
            req.seed = _number(body, "seed", int, None, 0, 2**31 - 1, "seed")
        req.conditions = self._conditions(body.get("conditions") or {})
        req.prime = self._upload(body.get("prime"), "the file to continue")
        if kind == "hand":
            req.text = self._text(body.get("text"), "the text to write")
            req.style = self._upload(body.get("style"), "your line")
            if req.style is not None:
                req.style_text = self._text(body.get("style_text"), "what your line says")
        return req

    def _conditions(self, asked: Any) -> dict[str, str]:
        if not isinstance(asked, dict):
            raise ConfigError("conditions must be an object of name: value")
        known = self.describe()["conditions"]
        out = {}
        for name, value in asked.items():
            if value in (None, ""):
                continue  # "any": drawn from the training data
            if name not in known:
                raise ConfigError(f"this run has no condition {str(name)[:40]!r} (it knows: "
                                  f"{', '.join(known) or 'none'})")
            if str(value) not in known[name]:
                raise ConfigError(f"{name}={str(value)[:40]!r} is not one of the values this run was trained on")
            out[str(name)] = str(value)
        return out

    def _text(self, value: Any, what: str) -> str:
        text = "" if value is None else str(value)
        text = " ".join(text.split())  # one line: no newlines or tabs
        if not text:
            raise ConfigError(f"{what}: empty; type a line")
        if len(text) > MAX_TEXT_CHARS:
            raise ConfigError(f"{what}: {len(text)} characters, at most {MAX_TEXT_CHARS}")
        from ..text_condition import TextSpec

        TextSpec.from_dict(self.info["text"]).check(text, what)  # the library's own check: the same line as the CLI's
        return text

    def _upload(self, value: Any, what: str) -> Upload | None:
        if value in (None, ""):
            return None
        if not isinstance(value, dict):
            raise ConfigError(f"{what}: expected {{name, data}}")
        name = str(value.get("name") or "upload")[:200]
        suffix = Path(name.replace("\\", "/")).suffix.lower()
        if suffix not in self.extensions:
            raise ConfigError(f"{what} {name!r}: not a file this run reads (it reads {', '.join(self.extensions)})")
        try:
            data = base64.b64decode(str(value.get("data") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{what} {name!r}: its data is not base64") from None
        if len(data) > MAX_UPLOAD_BYTES:
            raise ConfigError(f"{what} {name!r} is {megabytes(len(data))}; the studio takes files up to "
                              f"{megabytes(MAX_UPLOAD_BYTES)}")
        if not data:
            raise ConfigError(f"{what} {name!r} is empty")
        return Upload(name=name, suffix=suffix, data=data)


def _number(body: dict, key: str, kind: type, default, low, high, what: str):
    value = body.get(key, default)
    if value is None:
        return default
    try:
        number = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {str(value)[:20]!r} is not a{'n integer' if kind is int else ' number'}") from None
    if kind is float and not math.isfinite(number):
        raise ConfigError(f"{what}: must be a finite number")
    if not low <= number <= high:
        raise ConfigError(f"{what} must be between {low} and {high}, got {number}")
    return number
