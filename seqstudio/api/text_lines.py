"""``generate RUN --text "..."``: write given lines of text with a text-conditioned run (``seqstudio.text_condition``);
``api.generate`` takes this path when it is given texts.

Each text is one sample. Its characters must be in the run's training alphabet (else one ``ConfigError``
listing the others: the model has never seen them, so there is no honest fallback). A line ends once the
attention window has passed the text's last character (Graves' rule) and then, for a codec with segments
(``Codec.segment_ends``: pen strokes), at the first pen lift, so the last word is finished even when the window
ran ahead of the pen; the wait for that lift is capped (by default the points the training lines spent on
``LIFT_WAIT_CHARS`` characters), and the whole line by a length limit: by default twice the steps the
training lines took per character, plus 20 (``backends/window_rnn.py``, ``LineEnd``). Since the window decides
where a line ends, an end mark the model draws before that (stroke-5's end of drawing) is taken as a segment end
(``Codec.without_end``) rather than cutting the line where it was drawn.

Style priming (Graves 2013, section 5.3): ``style`` is a line the user wrote (any file the run's domain reads:
InkML, IAM XML, SVG, stroke-3 npz) and ``style_text`` what it says. The model is run over those strokes while
its window reads ``style_text`` (its end mark made a segment end, ``Codec.without_end``), then continues with
the asked text (the condition is ``style_text + " " + text``), so the recurrent state carries the primed hand
into the new line; only the new line is returned.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import text_condition as text_mod
from ..backends.base import SamplingOptions
from ..errors import ConfigError, DataError
from .runs import MAX_LENGTH, generation_length, prime_tensor, run_generator, run_threads

log = logging.getLogger("seqstudio")


def text_spec_of(run) -> text_mod.TextSpec:
    spec = run.fitted.text
    if spec is None:
        raise ConfigError(f"{run.path} was trained without a text condition, so --text cannot be used (a run is "
                          f"text-conditioned when its training pieces carry a transcription that varies, with a "
                          f"backend that declares accepts_text: rnn or vrnn)")
    return spec


def style_sample(run, path: Path):
    """The line in ``path``; a many-sample file (a stroke-3 ``.npz``) gives its first, said in the log."""
    domain = run.domain
    if not domain.is_collection(path):
        return domain.read(path)
    samples = [s for items in domain.read_collection(path).values() for s in items]
    if not samples:
        raise DataError(f"--style {path}: holds no sample")
    if len(samples) > 1:
        log.warning("--style %s holds %d samples: priming with the first", path, len(samples))
    return samples[0]


LIFT_WAIT_CHARS = 10  # after the window has passed the text, wait at most this many characters' points for a lift


def default_length(spec: text_mod.TextSpec, texts: list[str]) -> int:
    return int(2.0 * max(len(t) for t in texts) / max(spec.chars_per_step, 1e-3)) + 20


def default_wait(spec: text_mod.TextSpec) -> int:
    """The cap on the points written after the window has passed the text while waiting for a pen lift."""
    return int(LIFT_WAIT_CHARS / max(spec.chars_per_step, 1e-3))


def generate_lines(run, texts: list[str], *, style=None, style_text: str | None = None,
                   temperature: float = 1.0, bias: float = 0.0, seed: int | None = None,
                   length: int | None = None, batch_size: int = 16, wait: int | None = None, top_k: int = 0,
                   top_p: float = 1.0) -> list:
    """One domain sample per text (the generated line only, without the style prime). ``style``: a file, or a
    sample already read (the studio's line drawn on a canvas, brought to the run's units). ``wait``: the cap on the
    points after the window has passed the text, waiting for a pen lift (default ``default_wait``; 0 = Graves'
    rule alone)."""
    spec = text_spec_of(run)
    texts = [str(t) for t in texts]
    if not texts:
        raise ConfigError("--text: give at least one line of text")
    for t in texts:
        spec.check(t)
    prime_x, prefix = None, ""
    if style is not None or style_text is not None:
        if style is None or not style_text:
            raise ConfigError("--style FILE and --style-text \"what it says\" go together")
        spec.check(style_text, "--style-text")
        if isinstance(style, (str, Path)):
            from ..runcheck import regular_file

            regular_file(Path(style), f"--style {style}")
            style = style_sample(run, Path(style))
        prime_x = prime_tensor(run, style)
        prefix = style_text + " "
    full = [prefix + t for t in texts]
    if length is None:
        length = min(default_length(spec, texts), MAX_LENGTH)
    length = generation_length(run, length)
    wait = default_wait(spec) if wait is None else int(wait)
    if wait < 0:
        raise ConfigError(f"the wait for a pen lift must be >= 0 points, got {wait}")
    run_threads(run)
    g = run_generator(run, seed)
    out = []
    for start in range(0, len(full), batch_size):
        chunk = full[start : start + batch_size]
        options = SamplingOptions(length=length, temperature=temperature, bias=bias, prime=prime_x,
                                  text=spec.tensor(chunk), top_k=top_k, top_p=top_p)
        x, lengths = run.backend.sample_lines(len(chunk), options, g, segment_ends=run.codec.segment_ends, wait=wait,
                                              without_end=run.codec.without_end)
        t0 = prime_x.shape[1] if prime_x is not None else 0
        for i in range(len(chunk)):
            out.append(run.codec.decode(x[i, t0 : int(lengths[i])].cpu()))
    return out


def write_lines(run, samples: list, texts: list[str], out_dir: str | Path,
                height_mm: float | None = None) -> list[Path]:
    """The domain's text-line files (plotter SVG, PNG, npz, a sheet; ``Domain.can_write_text_lines``), through
    ``staged_output`` like every generated file (``write_samples`` writes lines of other domains)."""
    from ..outputs import staged_output

    out_dir = Path(out_dir)
    with staged_output(out_dir) as stage:
        written = run.domain.write_text_lines(samples, texts, stage, {"height_mm": height_mm})
    return [out_dir / Path(p).name for p in written]


@torch.no_grad()
def window_trace(run, x: torch.Tensor, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The window's positions ``kappa`` [T, K] and weights ``phi`` [T, U + 1] over a line ``x`` [T, D] read
    teacher-forced with ``text`` (for tests and for looking at an alignment)."""
    from ..backends.autoregressive import shift_right

    backend = run.backend
    spec = text_spec_of(run)
    features = backend.spec.to_features(x.unsqueeze(0).to(backend.device))
    _, _, kappa, phi = backend.text_layer.run(shift_right(features), spec.tensor([text]).to(backend.device),
                                              trace=True)
    return kappa[0], phi[0]
