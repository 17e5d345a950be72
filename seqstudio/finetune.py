"""``train DATA --from RUN``: fine-tune a trained run (or a shipped model) on another folder.

The new run starts from RUN's weights and keeps what those weights mean: its domain, its codec with the state
it learned (a vocabulary, a scale: the codec is not fitted again, or token 17 would mean something else), its
backend and heads. The training options (budget, learning rate, batch) are RUN's unless the command gives
others, as with ``--resume``; options that would change the model are refused, as ``--resume`` refuses them.

A folder that does not fit the model's codec is refused before training, in one line: files of another domain
(ABC text for a MIDI model), files the domain cannot read or encode, or content the codec can only map to its
unknown token (characters a text model never saw).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import ConfigError, DataError
from .runspec import RunSpec, model_changes

log = logging.getLogger("seqstudio")

MAX_UNKNOWN_SHARE = 0.01  # tokens the codec cannot represent (its unknown token), at most this share of the data


def resolve(init_from) -> Path:
    """The run directory ``--from`` names: a run, an exported folder or an installed model's name."""
    from .models import resolve as resolve_run

    return resolve_run(init_from)


def base_spec(init_from: Path, data_dir: Path | None, domain: str | None) -> RunSpec:
    """RUN's specification, after checking that ``data_dir`` holds files of RUN's domain."""
    from . import data, registry
    from .rundir import load_spec

    if data_dir is None:
        raise ConfigError("--from needs DATA_DIR: the folder to fine-tune on")
    spec = load_spec(Path(init_from))
    if domain is not None and domain != spec.domain:
        raise ConfigError(f"--domain {domain}: {init_from} is a {spec.domain} model; fine-tuning keeps its domain")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    found = data.folder_info(folder).get("domain") or registry.domain_for_path(folder)
    if found is not None and found != spec.domain:
        raise DataError(f"{folder} holds {found} files, but {init_from} is a {spec.domain} model: its codec "
                        f"({spec.codec_name}) cannot read them; fine-tune on a folder of {spec.domain} files")
    return spec


def check_same_model(base: RunSpec, spec: RunSpec, init_from: Path) -> None:
    """Refuse options that change the codec or the model: RUN's weights belong to RUN's model."""
    changed = model_changes(base, spec)
    if spec.codec_name != base.codec_name:
        changed.insert(0, f"codec: {base.codec_name} -> {spec.codec_name}")
    if spec.domain != base.domain:
        changed.insert(0, f"domain: {base.domain} -> {spec.domain}")
    if changed:
        raise ConfigError(f"--from {init_from}: fine-tuning keeps the model it starts from, and this command "
                          f"changes it ({'; '.join(changed)}); drop those options")


def check_fits(codec, sets: dict, data_dir: Path, init_from: Path) -> None:
    """Refuse a folder whose training windows the model's codec can only represent by its unknown token."""
    unknown = getattr(codec, "unknown_token", None)
    train = sets.get("train")
    if unknown is None or train is None or not len(train):
        return
    import torch

    x, lengths = train.gather(torch.arange(min(len(train), 4096)))
    real = torch.arange(x.shape[1]) < lengths.unsqueeze(1)
    tokens = x[..., 0][real]
    share = float((tokens == unknown).float().mean()) if tokens.numel() else 0.0
    if share > MAX_UNKNOWN_SHARE:
        raise DataError(f"{data_dir} does not fit the codec of {init_from}: {share:.1%} of its tokens are ones the "
                        f"model never saw (more than {MAX_UNKNOWN_SHARE:.0%}); fine-tune on data like the model's "
                        f"own, or train a new run on this folder")


def load_weights(model, init_from: Path) -> None:
    """RUN's best weights into the freshly built model (same architecture: ``check_same_model``)."""
    from .rundir import load_run

    run = load_run(Path(init_from))
    model.load_state_dict(run.backend.state_dict())
    log.info("fine-tuning from %s (%s steps)", init_from, run.checkpoint.get("state", {}).get("step", "?"))
