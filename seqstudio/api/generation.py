"""``generate``: new samples from a run (categorical and text conditions, primes, guidance; lines of text through ``text_lines``), and ``interpolate`` between two files in a latent space."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from ..backends.base import SamplingOptions
from ..errors import ConfigError, RunDirError
from ..guidance import check_guidance
from ..rundir import Run
from . import text_lines
from .runs import encode_file, file_provenance, generation_length, prime_tensor, run_generator, run_threads

log = logging.getLogger("seqstudio")


class Samples(list):
    """Generated samples; ``conditions`` holds each one's condition values (``{name: value}``) when the run is
    conditional, else None (``write_samples`` puts them into the file names and ``conditions.json``); ``texts``
    the line each sample writes, for lines of text (``write_samples`` then writes the domain's text-line files)."""

    conditions: list[dict] | None = None
    texts: list[str] | None = None


def generate(run: Run, n: int = 4, length: int | None = None, temperature: float = 1.0, seed: int | None = None,
             prime: str | Path | None = None, batch_size: int = 64, bias: float = 0.0,
             progress: bool = False, conditions: list[str] | dict | None = None,
             condition_index: torch.Tensor | None = None, top_k: int = 0, top_p: float = 1.0,
             guidance: float = 1.0, texts: list[str] | None = None, style: str | Path | None = None,
             style_text: str | None = None) -> Samples:
    """``n`` new samples (domain objects). ``prime``: a file whose encoding starts every sample.

    ``bias``: Graves' (2013) sampling bias for mixture outputs (pen offsets): 0 samples the model as trained,
    larger values give likelier, neater strokes. No effect on Bernoulli / categorical outputs.

    ``top_k`` / ``top_p``: top-k and nucleus (top-p) sampling of categorical values and binary keys (NADE or
    factorized); 0 and 1 = off (plain sampling, the same draws for the same seed). Mixture outputs ignore them.

    ``conditions`` (``["key=G:minor"]`` or ``{"key": "G:minor"}``): what to ask a conditional run for; without
    them a conditional run samples each sample's conditions from the training pieces' joint distribution.
    ``condition_index`` (``[n, A]``): the indices themselves (evaluation; 0 = unknown, i.e. unconditional).

    ``guidance``: classifier-free guidance scale (``seqstudio.guidance``): 1 = plain conditional sampling, 0 = the
    unconditional model inside the run, > 1 = follow the conditions more strongly. Needs a run conditioned
    through an embedding and trained with condition dropout.

    ``texts`` (text-conditioned runs): one sample per text, the line written (``text_lines``; ``n``, ``prime``
    and the conditions do not apply); ``style`` + ``style_text``: a line the user wrote, whose hand to imitate.
    """
    if texts or style is not None or style_text is not None:
        out = Samples(text_lines.generate_lines(run, [str(t) for t in texts or []], style=style,
                                                style_text=style_text, temperature=temperature, bias=bias,
                                                seed=seed, length=length, top_k=top_k, top_p=top_p))
        out.texts = [str(t) for t in texts or []]
        return out
    if n < 1:
        raise ConfigError("-n must be at least 1")
    SamplingOptions(top_k=top_k, top_p=top_p, guidance=guidance)  # bad values are refused before any file is read
    check_guidance(guidance, run.fitted.conditions, run.backend.text_spec is not None, run.backend)
    length = generation_length(run, length)
    run_threads(run)
    if prime:
        from ..runcheck import regular_file

        regular_file(Path(prime), f"--prime {prime}")
    prime_x = prime_tensor(run, run.domain.read(Path(prime))) if prime else None
    provenance = file_provenance(run, prime) if prime else None  # a primed sample continues the file: its tempo
    cs = run.fitted.conditions
    if conditions and cs is None:
        raise ConfigError(f"{run.path} was trained without conditions, so --condition cannot be used (a run is "
                          f"conditional when its training pieces carry attributes with more than one value)")
    values = {}
    if conditions:
        values = cs.parse(conditions if not isinstance(conditions, dict) else
                          [f"{k}={v}" for k, v in conditions.items()])
    index, labels, primes = None, None, None
    if cs is not None and cs.mode == "prime":
        if values:
            if prime_x is not None:
                raise ConfigError("--condition on this run primes the generator with the asked header; "
                                  "it cannot be combined with --prime")
            prime_x = prime_tensor(run, run.domain.condition_prime({**cs.usual_notes(), **values}))
            labels = [dict(values) for _ in range(n)]
        elif prime_x is None:  # condition-less: each sample's header drawn from the training distribution
            rows = cs.sample(n, torch.Generator().manual_seed(seed if seed is not None else torch.seed()))
            labels = [cs.labels(row.tolist()) for row in rows]
            primes = _condition_primes(run, labels)
    elif cs is not None:
        if condition_index is not None:
            index = condition_index.long()
        elif values:
            index = cs.tensor(values, n)
        else:
            index = cs.sample(n, torch.Generator().manual_seed(seed if seed is not None else torch.seed()))
        labels = [cs.labels(row.tolist()) for row in index]
    options = SamplingOptions(length=length, temperature=temperature, bias=bias, prime=prime_x, top_k=top_k,
                              top_p=top_p, guidance=guidance)
    g = run_generator(run, seed)
    out = Samples()
    from tqdm.auto import tqdm

    with tqdm(total=n, desc="generating", unit="sample", disable=not progress or n <= batch_size,
              dynamic_ncols=True, leave=False) as bar:  # one batch has nothing to count
        decoded: list = [None] * n
        for positions, group_prime in primes or [(list(range(n)), prime_x)]:
            options = dataclasses.replace(options, prime=group_prime)
            for start in range(0, len(positions), batch_size):
                chunk = positions[start : start + batch_size]
                if index is not None:
                    options = dataclasses.replace(options, condition=index[chunk])
                x = _sample(run, len(chunk), options, g)
                for j, i in enumerate(chunk):
                    decoded[i] = (run.codec.decode(x[j].cpu()) if provenance is None else
                                  run.codec.decode_piece(x[j].cpu(), provenance))
                bar.update(len(chunk))
    out.extend(decoded)
    out.conditions = labels
    return out


def _condition_primes(run: Run, labels: list[dict]) -> list[tuple[list[int], torch.Tensor]]:
    """A prime-conditioned run (``conditions_as_prime``): ``(positions, prime)`` per distinct asked header, so
    that the samples asking for the same values are generated together from one prime."""
    groups: dict[tuple, list[int]] = {}
    for i, values in enumerate(labels):
        groups.setdefault(tuple(sorted(values.items())), []).append(i)
    usual = run.fitted.conditions.usual_notes()  # the training pieces' header layout and the like
    return [(positions, prime_tensor(run, run.domain.condition_prime({**usual, **dict(key)})))
            for key, positions in groups.items()]


def _sample(run: Run, k: int, options: SamplingOptions, g: torch.Generator) -> torch.Tensor:
    """``Backend.sample``; a model whose outputs are not probabilities (weights that overflow) is named, not a
    traceback from the sampler."""
    try:
        return run.backend.sample(k, options, generator=g)
    except RuntimeError as exc:
        text = str(exc)
        if "probability tensor contains" in text:  # torch.multinomial on NaN/inf probabilities
            raise RunDirError(f"the model in {run.path} produces non-finite probabilities "
                              f"({text.splitlines()[0][:120]}); its checkpoint is unusable") from None
        raise


def interpolate(run: Run, a: str | Path, b: str | Path, steps: int = 5, length: int | None = None,
                temperature: float = 0.0, seed: int | None = None) -> list:
    """Samples along the latent path from file ``a`` to file ``b`` (backends with an encoder only)."""
    if not run.backend.can_interpolate:
        raise ConfigError(f"backend {run.spec.backend_name!r} has no latent space to interpolate in")
    if steps < 2:
        raise ConfigError("--steps must be at least 2")
    run_threads(run)
    options = SamplingOptions(length=generation_length(run, length), temperature=temperature)
    for f in (a, b):
        from ..runcheck import regular_file

        regular_file(Path(f), f"--interpolate {f}")
    xa = _crop(encode_file(run, a), options.length)
    xb = _crop(encode_file(run, b), options.length)
    x = run.backend.interpolate(xa, xb, steps, options, generator=run_generator(run, seed))
    provenance = file_provenance(run, a)  # the path starts at ``a``: its tempo and instrument
    return [run.codec.decode_piece(x[i].cpu(), provenance) for i in range(x.shape[0])]


def _crop(x: torch.Tensor, length: int) -> torch.Tensor:
    return x[:length] if length > 0 else x
