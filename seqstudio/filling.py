"""Harmonising a melody and filling bars: generation that sees what comes after, not only what came before.

Both are one operation, ``Backend.infill``: some (step, part) positions of the codec's tensor are known, the
others are drawn given all of them. What differs is only which positions are known, and the codec says that in
its own terms (``Codec.voice_parts``: a voice; ``Codec.bar_steps``: bars), so this module knows neither a domain
nor a backend. A run whose backend cannot infill (it was trained to continue a prime) is refused in one line that
says what to train instead.

    harmonize(run, "melody.mid")            the melody kept note for note as the top voice, the others written
    harmonize(run, "bass.mid", voice="bass")    ... or as another voice
    infill(run, "piece.mid", "5-8")         bars 5-8 drawn again, given bars 1-4 and 9 on
    infill(run, sample, mask)               any mask: bool [T, parts], True = to fill
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from .backends.base import SamplingOptions
from .errors import ConfigError

TRAIN_INSTEAD = "train one with --backend coconet (for MIDI with --codec voices) to harmonise or fill in"


def check_can_infill(run) -> None:
    """``ConfigError`` naming what to train when the run's backend cannot fill masked positions."""
    if not run.backend.can_infill:
        raise ConfigError(f"{run.path}: backend {run.backend.name!r} only continues a prime and cannot fill in "
                          f"around given notes; {TRAIN_INSTEAD}")


def parse_bars(text: str) -> tuple[int, int]:
    """``"5-8"`` -> ``(5, 8)``; ``"3"`` -> ``(3, 3)``; anything else one ``ConfigError`` line."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", str(text))
    if not match:
        raise ConfigError(f"--bars {text!r}: give the bars to fill as FIRST-LAST, e.g. 5-8 (counted from 1)")
    first = int(match.group(1))
    return first, int(match.group(2) or first)


def bar_mask(codec, length: int, bars: str | tuple[int, int]) -> torch.Tensor:
    """Bool ``[length, parts]``: True at every part of the steps of ``bars`` (``"5-8"`` or ``(5, 8)``)."""
    first, last = parse_bars(bars) if isinstance(bars, str) else bars
    start, stop = codec.bar_steps(first, last, length)
    mask = torch.zeros(length, len(codec.spec.parts), dtype=torch.bool)
    mask[start:stop] = True
    return mask


def _read(run, sample) -> tuple[Any, dict]:
    """A sample (read from a path when given one, checked to be a regular file) and its provenance."""
    if isinstance(sample, (str, Path)):
        from .runcheck import regular_file

        path = Path(sample)
        regular_file(path, str(sample))
        sample = run.domain.read(path)
        return sample, run.domain.provenance(sample, path)
    return sample, {}


def fill(run, x: torch.Tensor, known: torch.Tensor, n: int = 1, seed: int | None = None,
         temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """``n`` fillings ``[n, T, storage_width]`` of ``x`` (``[T, storage_width]``) at the positions not ``known``
    (bool ``[T, parts]``); the tensor-level core of ``harmonize`` and ``infill``."""
    check_can_infill(run)
    if n < 1:
        raise ConfigError("-n must be at least 1")
    if known.shape != (x.shape[0], len(run.codec.spec.parts)):
        raise ConfigError(f"the mask is {tuple(known.shape)}; this run's tensors need [steps, parts] = "
                          f"[{x.shape[0]}, {len(run.codec.spec.parts)}]")
    options = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    g = torch.Generator(device=run.backend.device)
    g.manual_seed(seed if seed is not None else torch.seed())
    batch = x.unsqueeze(0).expand(n, -1, -1)
    return run.backend.infill(batch, known.unsqueeze(0).expand(n, -1, -1), options, generator=g).cpu()


def harmonize(run, melody, voice: str | None = None, n: int = 1, seed: int | None = None,
              temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> list:
    """``n`` harmonisations of ``melody`` (a path or a sample holding one line): the line is kept note for note as
    ``voice`` (default: the codec's top voice) and the model writes every other voice around it. Each result is a
    sample at the melody's tempo (its provenance)."""
    check_can_infill(run)
    codec = run.codec
    if not codec.voices:
        codec.voice_parts(voice or "")  # the codec's one line: it has no voices
    voice = voice or codec.voices[0]
    parts = codec.voice_parts(voice)
    sample, provenance = _read(run, melody)
    x = codec.encode_line(sample, voice)
    known = torch.zeros(x.shape[0], len(codec.spec.parts), dtype=torch.bool)
    known[:, parts] = True
    out = fill(run, x, known, n, seed, temperature, top_k, top_p)
    return [codec.decode_piece(out[i], provenance) for i in range(n)]


def infill(run, sample, mask, n: int = 1, seed: int | None = None, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0) -> list:
    """``n`` versions of ``sample`` (a path or a sample) with the positions of ``mask`` drawn again given every
    other position: ``mask`` is bars (``"5-8"``, 1-based, inclusive) or a bool tensor ``[steps, parts]`` of the
    run's codec (True = to fill). An empty mask returns the input as the codec holds it."""
    check_can_infill(run)
    sample, provenance = _read(run, sample)
    x = run.codec.encode(sample)
    if isinstance(mask, (str, tuple)):
        mask = bar_mask(run.codec, x.shape[0], mask)
    mask = torch.as_tensor(mask, dtype=torch.bool)
    out = fill(run, x, ~mask, n, seed, temperature, top_k, top_p)
    return [run.codec.decode_piece(out[i], provenance) for i in range(n)]
