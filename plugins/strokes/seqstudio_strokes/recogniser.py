"""An online-handwriting recogniser: reads the text a line of ink says, to score what a text-conditioned model
wrote (character error rate) rather than how it looks.

No package ships an English online-handwriting recogniser, so this is a small one after Carbune et al. (2020,
"Fast multi-language LSTM-based online handwriting recognition"): the pen path is resampled by arc length
(so a line from a model and a line from a file, whatever their point density, look alike), each point
becomes (dx, dy, pen lifted, y) in units of the line's height, a 1-D convolution sees letter-sized
neighbourhoods, a bidirectional LSTM reads the whole line, and a CTC loss (Graves et al. 2006) learns to emit
characters without any alignment between points and letters. Decoding is greedy (best path): the argmax per
point, repeats merged, blanks dropped; Carbune et al. report beam search and a language model worth a few
points of CER, which we leave out since the recogniser judges models rather than serving users.

Training applies a random shear and stretch to every line, since generated lines slant and spread more than
one font family's lines do. What is stored: ``recogniser.pt`` (tensors only, loaded with ``weights_only``) and
``recogniser.json`` (the alphabet, the architecture and its figures), so a run directory from elsewhere never
runs code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from seqstudio.errors import ConfigError, RunDirError
from seqstudio.cer import character_error_rate

from .ink import Ink

log = logging.getLogger("seqstudio")

WEIGHTS, CARD = "recogniser.pt", "recogniser.json"
BLANK = 0  # CTC's blank; character i of the alphabet has id i + 1
SPACING = 0.1  # resampling step along the pen path, in line heights (about 14 points a letter)
MAX_POINTS = 2000  # a line resampled to more points than this is cut (about 120 letters)


@dataclasses.dataclass
class RecogniserConfig:
    """The architecture; stored in ``recogniser.json`` so the model is rebuilt without code from the file."""

    conv_channels: int = 64
    hidden_size: int = 96
    layers: int = 2
    dropout: float = 0.2
    stride: int = 4  # the second convolution's stride: the LSTM reads a quarter of the points (its cost on a CPU)


def line_features(ink: Ink, spacing: float = SPACING, rng: np.random.Generator | None = None,
                  frame: tuple[float, float] | None = None) -> np.ndarray:
    """``[N, 4]`` float32 rows ``(dx, dy, pen lifted after this point, y)``: the path resampled every ``spacing``
    line heights along each stroke, offsets in units of ``spacing`` (so they are about 1, like the pen bit) and
    ``y`` in line heights. ``frame`` = ``(top, height)`` of the line a piece was cut from, so a word cut from a
    line keeps the line's letter size. With ``rng``, the line is first sheared and stretched at random
    (training augmentation)."""
    strokes = [np.asarray(s, dtype=np.float64) for s in ink.strokes if len(s)]
    if not strokes:
        return np.zeros((1, 4), dtype=np.float32)
    if rng is not None:  # x += shear * y; x *= stretch: slant and width vary between writers
        shear, stretch = rng.uniform(-0.35, 0.35), rng.uniform(0.8, 1.25)
        strokes = [np.stack([(s[:, 0] + shear * s[:, 1]) * stretch, s[:, 1]], axis=1) for s in strokes]
    points = np.concatenate(strokes)
    if frame is not None:
        y0, height = frame
    else:
        y0, height = points[:, 1].min(), float(np.ptp(points[:, 1]))
        height = max(height, float(np.ptp(points[:, 0])) / 20)
    height = max(height, 1e-6)
    rows = []
    for s in strokes:
        s = (s - (points[:, 0].min(), y0)) / height
        steps = np.hypot(*np.diff(s, axis=0).T) if len(s) > 1 else np.zeros(0)
        along = np.concatenate([[0.0], np.cumsum(steps)])
        count = max(int(math.ceil(along[-1] / spacing)) + 1, 1)
        at = np.linspace(0.0, along[-1], count)
        r = np.stack([np.interp(at, along, s[:, 0]), np.interp(at, along, s[:, 1])], axis=1)
        lifted = np.zeros((len(r), 1))
        lifted[-1] = 1.0
        rows.append(np.concatenate([r, lifted], axis=1))
    path = np.concatenate(rows)[:MAX_POINTS]
    deltas = np.diff(path[:, :2], axis=0, prepend=path[:1, :2]) / spacing
    return np.concatenate([deltas, path[:, 2:3], path[:, 1:2] - 0.5], axis=1).astype(np.float32)


def line_frame(ink: Ink) -> tuple[float, float]:
    """``(top, height)`` that :func:`line_features` scales a whole line by."""
    points = np.concatenate([np.asarray(s, dtype=np.float64) for s in ink.strokes if len(s)])
    return float(points[:, 1].min()), max(float(np.ptp(points[:, 1])), float(np.ptp(points[:, 0])) / 20)


def word_strokes(ink: Ink, text: str) -> list[tuple[list[np.ndarray], str]] | None:
    """The line's strokes grouped into its words, cut at the widest horizontal gaps (a space leaves a gap no
    letter does); ``None`` when the line has one word or its gaps do not separate as many words as it has."""
    words = text.split()
    strokes = [np.asarray(s, dtype=np.float64) for s in ink.strokes if len(s)]
    if len(words) < 2 or len(strokes) < len(words):
        return None
    order = sorted(range(len(strokes)), key=lambda i: strokes[i][:, 0].min())
    right, gaps = -np.inf, []
    for k, i in enumerate(order):  # a gap: the next stroke starts right of everything before it
        if k:
            gaps.append((strokes[i][:, 0].min() - right, k))
        right = max(right, strokes[i][:, 0].max())
    widest = sorted(gaps, reverse=True)[: len(words) - 1]
    if len(widest) < len(words) - 1 or widest[-1][0] <= 0:
        return None
    bounds = [0, *sorted(k for _, k in widest), len(order)]
    return [([strokes[i] for i in order[a:b]], word) for (a, b), word in zip(zip(bounds, bounds[1:]), words)]


def training_pieces(pairs: list[tuple[Ink, str]], rng: np.random.Generator, max_words: int = 3
                    ) -> list[tuple[Ink, str, tuple[float, float]]]:
    """Every line, plus runs of 1 to ``max_words`` words cut from it, each with its line's frame. CTC learns
    slowly on whole lines (the alignment of 30 letters to 360 points is found late); short pieces teach the
    letters first, and the lines keep the spaces and the long context."""
    out = []
    for ink, text in pairs:
        out.append((ink, text, line_frame(ink)))
        words = word_strokes(ink, text)
        if words is None:
            continue
        frame = line_frame(ink)
        start = 0
        while start < len(words):
            k = int(rng.integers(1, max_words + 1))
            part = words[start : start + k]
            out.append((Ink([s for strokes, _ in part for s in strokes]), " ".join(w for _, w in part), frame))
            start += k
    return out


class RecogniserNet(nn.Module):
    """Convolution over neighbouring points, a bidirectional LSTM over the line, per-point character logits."""

    def __init__(self, symbols: int, config: RecogniserConfig):
        super().__init__()
        c = config
        self.stride = c.stride
        self.conv = nn.Sequential(nn.Conv1d(4, c.conv_channels, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(c.conv_channels, c.conv_channels, 5, padding=2, stride=c.stride),
                                  nn.ReLU())
        self.lstm = nn.LSTM(c.conv_channels, c.hidden_size, c.layers, batch_first=True, bidirectional=True,
                            dropout=c.dropout if c.layers > 1 else 0.0)
        self.out = nn.Linear(2 * c.hidden_size, symbols + 1)

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per line: the strided convolution keeps ceil(points / stride)."""
        return (lengths + self.stride - 1) // self.stride

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, T, 4] -> (log-probabilities [B, T', symbols + 1] with CTC's blank first, frames [B])."""
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        frames = self.frames(lengths).clamp(max=h.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(h, frames.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True)
        return self.out(h).log_softmax(-1), frames


def _batch(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in features])
    x = torch.zeros(len(features), int(lengths.max()), 4)
    for i, f in enumerate(features):
        x[i, : len(f)] = torch.from_numpy(f)
    return x, lengths


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, alphabet: str) -> list[str]:
    """Best path: argmax per point, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1)
    out = []
    for row, n in zip(best.tolist(), lengths.tolist()):
        chars, last = [], BLANK
        for k in row[:n]:
            if k != last and k != BLANK:
                chars.append(alphabet[k - 1])
            last = k
        out.append("".join(chars))
    return out


class InkRecogniser:
    """Fit on (ink, text) pairs, ``read`` inks back into text, ``save``/``load`` a folder."""

    def __init__(self, alphabet: str, config: RecogniserConfig | None = None):
        self.alphabet = alphabet
        self.config = config or RecogniserConfig()
        self.net = RecogniserNet(len(alphabet), self.config)
        self.figures: dict = {}

    # -- reading --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def read(self, inks: list[Ink], batch_size: int = 64) -> list[str]:
        self.net.eval()
        out = []
        for start in range(0, len(inks), batch_size):
            x, lengths = _batch([line_features(ink) for ink in inks[start : start + batch_size]])
            log_probs, frames = self.net(x, lengths)
            out.extend(greedy_decode(log_probs, frames, self.alphabet))
        return out

    # -- training -------------------------------------------------------------------------------------------------
    def fit(self, train: list[tuple[Ink, str]], valid: list[tuple[Ink, str]], *, max_steps: int = 0,
            max_minutes: float = 10.0, batch_size: int = 32, lr: float = 5e-3, seed: int = 0,
            valid_every: int = 200, progress=None) -> dict:
        """CTC training, the best validation CER kept; stops at ``max_steps`` or ``max_minutes`` of this
        process's CPU time (equal work on a shared machine). ``progress(step, figures)`` is told each validation.
        Returns the figures (also kept in ``self.figures``)."""
        if not train:
            raise ConfigError("the recogniser needs training lines with their text; found none")
        index = {c: i + 1 for i, c in enumerate(self.alphabet)}
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
        valid = valid[:400]
        best, best_state, step, clock = math.inf, None, 0, time.process_time()
        history = []
        while True:
            pieces = training_pieces(train, rng)
            order = rng.permutation(len(pieces))
            for start in range(0, len(order), batch_size):
                pick = [pieces[i] for i in order[start : start + batch_size]]
                x, lengths = _batch([line_features(ink, rng=rng, frame=frame) for ink, _, frame in pick])
                targets = [torch.tensor([index[c] for c in text if c in index], dtype=torch.long)
                           for _, text, _ in pick]
                self.net.train()
                log_probs, frames = self.net(x, lengths)
                loss = ctc(log_probs.transpose(0, 1), torch.cat(targets), frames,
                           torch.tensor([len(t) for t in targets]))
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                step += 1
                used = (time.process_time() - clock) / 60
                done = (max_steps and step >= max_steps) or (max_minutes and used >= max_minutes)
                if step % valid_every == 0 or done:
                    cer = self.cer(valid) if valid else float(loss)
                    history.append({"step": step, "loss": round(loss.item(), 4), "valid_cer": round(cer, 4)})
                    if progress is not None:
                        progress(step, history[-1])
                    if cer < best:
                        best = cer
                        best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                if done:
                    if best_state is not None:
                        self.net.load_state_dict(best_state)
                    self.figures = {"steps": step, "cpu_minutes": round(used, 2), "valid_cer": round(best, 4),
                                    "train_lines": len(train), "valid_lines": len(valid), "history": history}
                    return self.figures

    def cer(self, pairs: list[tuple[Ink, str]]) -> float:
        return character_error_rate(self.read([ink for ink, _ in pairs]), [text for _, text in pairs])

    # -- storage --------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Weights then card, each written to a temporary name and renamed (no half-written recogniser)."""
        from seqstudio.atomic import atomic_write

        atomic_write(folder / WEIGHTS, lambda tmp: torch.save(self.net.state_dict(), tmp))
        card = {"alphabet": self.alphabet, "config": dataclasses.asdict(self.config), "figures": self.figures}
        atomic_write(folder / CARD, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1)))

    @classmethod
    def load(cls, folder: Path) -> "InkRecogniser":
        try:
            card = json.loads((folder / CARD).read_text())
            config = RecogniserConfig(**card["config"])
            model = cls(str(card["alphabet"]), config)
            model.net.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True, map_location="cpu"))
        except FileNotFoundError as e:
            raise RunDirError(f"no recogniser in {folder} ({Path(e.filename).name} is missing)") from None
        except (ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as e:
            raise RunDirError(f"the recogniser in {folder} cannot be loaded: {str(e).splitlines()[0][:200]}") from None
        model.figures = card.get("figures", {})
        return model
