"""What the sample judge (``seqstudio.judge``) sees of music: 16-beat excerpts and the features a listener hears.

Excerpts are cut in *musical* time: beats are quarter notes of the score, found through the file's tempo map
(``PrettyMIDI.get_tempo_changes``), never grid steps, so a model on a 4-step grid and one on a 12-step grid are
cut alike and tempo changes nothing. A piece of B beats gives ``floor(B / 16)`` excerpts; a shorter one (a
generated sample whose last beats are silent: a file does not record trailing silence) gives one, padded with
silence, so a quiet sample is judged as quiet rather than dropped.

Features of one excerpt (every one defined, also for an empty excerpt):

| feature | meaning |
|---|---|
| ``short_notes`` | share of notes a 16th long or shorter |
| ``texture_0`` .. ``texture_5``, ``texture_6plus`` | share of time with exactly k distinct pitches sounding |
| ``density`` | mean number of pitches sounding, over the time where any sounds |
| ``notes_per_beat`` | note onsets per beat |
| ``onset_beat``, ``onset_8th``, ``onset_16th``, ``onset_other`` | share of onsets on the beat, on the off-beat 8th, on the other 16ths, elsewhere (triplets, unquantised) |
| ``pc_0`` .. ``pc_11`` | duration-weighted pitch-class profile, relative to the estimated tonic (key-free) |
| ``key_clarity``, ``major`` | the best key's correlation with the Krumhansl-Kessler profile, and whether it is major |
| ``top_motion``, ``bass_motion`` | mean interval (semitones) between successive notes of the top and bottom voices |
| ``top_steps`` | share of the top voice's moves that are steps (1 or 2 semitones) |
| ``dissonance`` | share of dissonant pairs (seconds, sevenths, tritone) among the pitches sounding at each onset |
| ``pitch_range``, ``mean_pitch`` | highest minus lowest pitch; mean pitch of the notes |
| ``mean_duration`` | mean note length in beats |

The negative controls (``controls``) are real excerpts with their 16th steps shuffled, their beats shuffled, and
random notes (as many as the real excerpt's, uniform pitches in its range, random onsets on the 16th grid).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pretty_midi

EXCERPT_BEATS = 16
GRID_PER_BEAT = 24  # time resolution of the texture features: 16ths and triplets fall on it
DISSONANT = np.zeros(12, dtype=bool)
DISSONANT[[1, 2, 6, 10, 11]] = True  # minor/major second, tritone, minor/major seventh (and their compounds)
# Krumhansl & Kessler (1982) key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclasses.dataclass
class NoteExcerpt:
    """``beats`` beats of music as note arrays in beats from the excerpt's start. A note sounding into the excerpt
    from before starts below 0; a note may end after ``beats`` (its length is its own, not the cut's)."""

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    beats: float = float(EXCERPT_BEATS)


def note_beats(pm: pretty_midi.PrettyMIDI) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pitch, start, end)`` of every pitched note, times in quarter-note beats through the tempo map."""
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    seconds = np.array([(n.start, n.end) for n in notes], dtype=np.float64).reshape(-1, 2)
    times, tempi = pm.get_tempo_changes()
    if len(times) == 0:
        times, tempi = np.array([0.0]), np.array([120.0])
    # Beats elapsed at each tempo change, then linear within each segment.
    at_change = np.concatenate([[0.0], np.cumsum(np.diff(times) * tempi[:-1] / 60.0)])
    segment = np.clip(np.searchsorted(times, seconds, side="right") - 1, 0, len(times) - 1)
    beats = at_change[segment] + (seconds - times[segment]) * tempi[segment] / 60.0
    return pitch, beats[:, 0], beats[:, 1]


def excerpts(samples: list, beats: int = EXCERPT_BEATS) -> list[NoteExcerpt]:
    """Consecutive ``beats``-beat excerpts of every sample (``PrettyMIDI``), see the module's docstring."""
    out = []
    for pm in samples:
        pitch, start, end = note_beats(pm)
        span = float(end.max()) if end.size else 0.0
        count = max(1, int(np.floor(span / beats + 1e-6)))
        for k in range(count):
            lo, hi = k * beats, (k + 1) * beats
            keep = (start < hi) & (end > lo)
            out.append(NoteExcerpt(pitch[keep], start[keep] - lo, end[keep] - lo, float(beats)))
    return out


def _sounding(ex: NoteExcerpt) -> np.ndarray:
    """``[grid points, 128]`` bool: which pitches sound at each grid point of the excerpt."""
    n = int(round(ex.beats * GRID_PER_BEAT))
    roll = np.zeros((n + 1, 128), dtype=np.int32)
    a = np.clip(np.round(ex.start * GRID_PER_BEAT).astype(np.int64), 0, n)
    b = np.clip(np.round(ex.end * GRID_PER_BEAT).astype(np.int64), 0, n)
    np.add.at(roll, (a, ex.pitch), 1)
    np.add.at(roll, (b, ex.pitch), -1)
    return np.cumsum(roll, axis=0)[:n] > 0


def _key_templates() -> np.ndarray:
    """``[24, 12]``: the 12 rotations of the major profile, then of the minor, each centred and unit-length."""
    rows = [np.roll(t, tonic) for t in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)]
    rows = np.array(rows) - np.mean(rows, axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


KEY_TEMPLATES = _key_templates()


def _key(profile: np.ndarray) -> tuple[int, bool, float]:
    """``(tonic, major, correlation)`` of the best Krumhansl-Kessler key for a pitch-class profile."""
    centred = profile - profile.mean()
    norm = np.linalg.norm(centred)
    if profile.sum() <= 0 or norm == 0:
        return 0, True, 0.0
    r = KEY_TEMPLATES @ (centred / norm)  # Pearson correlation with every key at once
    best = int(np.argmax(r))
    return best % 12, best < 12, float(r[best])


def _voice_motion(sounding: np.ndarray, onset_points: np.ndarray, top: bool) -> list[int]:
    """Intervals between successive notes of the top (or bottom) voice: the highest (lowest) pitch sounding at
    each onset, with repeats of one pitch merged."""
    line = []
    for point in onset_points:
        pitches = np.flatnonzero(sounding[point])
        if pitches.size:
            p = int(pitches.max() if top else pitches.min())
            if not line or line[-1] != p:
                line.append(p)
    return [abs(b - a) for a, b in zip(line, line[1:])]


def features(ex: NoteExcerpt) -> dict[str, float]:
    """The judge's features of one excerpt (the table in the module's docstring)."""
    sounding = _sounding(ex)
    counts = sounding.sum(1)
    out: dict[str, float] = {}
    onset = ex.start >= 0
    durations = (ex.end - ex.start)[onset]
    out["short_notes"] = float((durations <= 0.25 + 1e-6).mean()) if durations.size else 0.0
    for k in range(6):
        out[f"texture_{k}"] = float((counts == k).mean())
    out["texture_6plus"] = float((counts >= 6).mean())
    out["density"] = float(counts[counts > 0].mean()) if (counts > 0).any() else 0.0
    out["notes_per_beat"] = float(onset.sum() / ex.beats)
    phase = np.round((ex.start[onset] % 1.0) * 48) % 48  # in 48ths of a beat
    n_on = max(int(onset.sum()), 1)
    out["onset_beat"] = float((phase == 0).sum() / n_on)
    out["onset_8th"] = float((phase == 24).sum() / n_on)
    out["onset_16th"] = float(((phase == 12) | (phase == 36)).sum() / n_on)
    off_grid = ~np.isin(phase, (0, 12, 24, 36))
    out["onset_other"] = float(off_grid.sum() / n_on)
    # Pitch classes weighted by how long they sound inside the excerpt, rotated to the estimated tonic.
    inside = np.clip(np.minimum(ex.end, ex.beats) - np.maximum(ex.start, 0.0), 0.0, None)
    profile = np.bincount(ex.pitch % 12, weights=inside, minlength=12) if ex.pitch.size else np.zeros(12)
    tonic, major, clarity = _key(profile)
    rotated = np.roll(profile, -tonic) / profile.sum() if profile.sum() > 0 else profile
    for pc in range(12):
        out[f"pc_{pc}"] = float(rotated[pc])
    out["key_clarity"] = clarity
    out["major"] = 1.0 if major else 0.0
    onset_points = np.unique(np.clip(np.round(ex.start[onset] * GRID_PER_BEAT).astype(np.int64), 0,
                                     max(len(sounding) - 1, 0)))
    top = _voice_motion(sounding, onset_points, top=True) if len(sounding) else []
    bass = _voice_motion(sounding, onset_points, top=False) if len(sounding) else []
    out["top_motion"] = float(np.mean(top)) if top else 0.0
    out["bass_motion"] = float(np.mean(bass)) if bass else 0.0
    out["top_steps"] = float(np.mean([1 <= i <= 2 for i in top])) if top else 0.0
    pairs = dissonant = 0
    for point in onset_points:
        pitches = np.flatnonzero(sounding[point])
        if pitches.size >= 2:
            intervals = (pitches[None, :] - pitches[:, None])[np.triu_indices(pitches.size, 1)] % 12
            pairs += intervals.size
            dissonant += int(DISSONANT[intervals].sum())
    out["dissonance"] = float(dissonant / pairs) if pairs else 0.0
    out["pitch_range"] = float(np.ptp(ex.pitch)) if ex.pitch.size else 0.0
    out["mean_pitch"] = float(ex.pitch.mean()) if ex.pitch.size else 0.0
    out["mean_duration"] = float(durations.mean()) if durations.size else 0.0
    return out


# -- negative controls ------------------------------------------------------------------------------------------
STEPS_PER_BEAT = 4  # the controls work on a 16th grid


def _roll(ex: NoteExcerpt) -> tuple[np.ndarray, np.ndarray]:
    """Key and onset bits ``[steps, 128]`` on the 16th grid (notes clipped to the excerpt)."""
    n = int(round(ex.beats * STEPS_PER_BEAT))
    keys = np.zeros((n, 128), dtype=bool)
    onsets = np.zeros((n, 128), dtype=bool)
    for p, s, e in zip(ex.pitch, ex.start, ex.end):
        a = max(int(round(s * STEPS_PER_BEAT)), 0)
        b = min(max(int(round(e * STEPS_PER_BEAT)), a + 1), n)
        if a < n:
            keys[a:b, p] = True
            if s >= 0:
                onsets[a, p] = True
    return keys, onsets


def _from_roll(keys: np.ndarray, onsets: np.ndarray, beats: float) -> NoteExcerpt:
    """Notes of a key/onset roll: a note starts where a key turns on or is struck again, and lasts while it is
    held."""
    pitch, start, end = [], [], []
    n = keys.shape[0]
    for p in np.flatnonzero(keys.any(0)):
        on = keys[:, p]
        begins = on & (onsets[:, p] | ~np.concatenate([[False], on[:-1]]))
        for a in np.flatnonzero(begins):
            b = a + 1
            while b < n and on[b] and not begins[b]:
                b += 1
            pitch.append(p), start.append(a / STEPS_PER_BEAT), end.append(b / STEPS_PER_BEAT)
    return NoteExcerpt(np.array(pitch, dtype=np.int64), np.array(start, dtype=np.float64),
                       np.array(end, dtype=np.float64), beats)


def shuffled_steps(ex: NoteExcerpt, rng: np.random.Generator) -> NoteExcerpt:
    """The excerpt's 16th-note steps in random order (each step's chord kept, the line destroyed)."""
    keys, onsets = _roll(ex)
    order = rng.permutation(keys.shape[0])
    return _from_roll(keys[order], onsets[order], ex.beats)


def shuffled_beats(ex: NoteExcerpt, rng: np.random.Generator) -> NoteExcerpt:
    """The excerpt's beats in random order (everything inside a beat kept; only the motion between beats and
    notes held across beats change: a subtler control)."""
    keys, onsets = _roll(ex)
    beats = keys.shape[0] // STEPS_PER_BEAT
    order = (rng.permutation(beats)[:, None] * STEPS_PER_BEAT + np.arange(STEPS_PER_BEAT)).reshape(-1)
    return _from_roll(keys[order], onsets[order], ex.beats)


def random_notes(ex: NoteExcerpt, rng: np.random.Generator) -> NoteExcerpt:
    """As many notes as the excerpt has, with uniform pitches in its range, onsets on random 16ths and lengths
    of 1 to 8 sixteenths."""
    n = max(len(ex.pitch), 1)
    low, high = (int(ex.pitch.min()), int(ex.pitch.max())) if ex.pitch.size else (48, 72)
    steps = int(round(ex.beats * STEPS_PER_BEAT))
    start = rng.integers(0, steps, n) / STEPS_PER_BEAT
    length = rng.integers(1, 9, n) / STEPS_PER_BEAT
    return NoteExcerpt(rng.integers(low, high + 1, n).astype(np.int64), start, start + length, ex.beats)


def controls(items: list[NoteExcerpt], seed: int = 0) -> dict[str, list[NoteExcerpt]]:
    """The negative controls of ``items``: shuffled 16th steps, shuffled beats, random notes."""
    rng = np.random.default_rng(seed)
    return {"shuffled 16th steps": [shuffled_steps(e, rng) for e in items],
            "shuffled beats": [shuffled_beats(e, rng) for e in items],
            "random notes": [random_notes(e, rng) for e in items]}
