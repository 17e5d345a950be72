"""The Python API: everything the CLI can do, as plain functions (the CLI is a thin layer over these).

    import seqstudio
    run_dir = seqstudio.train("midi/", backend="seqvae", max_steps=500)
    run = seqstudio.load(run_dir)
    paths = seqstudio.write_samples(run, seqstudio.generate(run, n=4), "out/")
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import config as config_mod
from . import data, registry, runlock, safe_io
from .backends.base import Backend, SamplingOptions
from .distributed import add_stats, init_distributed, leave
from .errors import (ConfigError, DataError, NothingToDo, RunDirError, SeqStudioError, TrainingDiverged,
                     TrainingInterrupted)
from .guidance import check_guidance
from .rundir import Run, check_resumable, load_fitted, load_run, load_spec, write_run_files
from .runspec import RunSpec, model_changes

log = logging.getLogger("seqstudio")
# Generation lengths: the default (the training window) must be sane, and --length may ask for more, up to a
# hard cap. A run directory from elsewhere can say anything (codec.window_bars: 10000000 is 160M steps).
MAX_DEFAULT_LENGTH = 10_000
MAX_LENGTH = 100_000


# -- configuration ------------------------------------------------------------------------------------------------
def resolve_config(data_dir: Path | None, backend: str | None = None, domain: str | None = None,
                   codec: str | None = None, config_file: Path | None = None, overrides: list[str] = (),
                   train_options: dict[str, Any] | None = None, base: RunSpec | None = None) -> RunSpec:
    """Defaults < data folder's recorded codec < run's saved spec (resume) < config file < --set < explicit
    options, typed and validated once."""
    file_cfg = config_mod.load_yaml(config_file) if config_file else {}
    lines = file_cfg.pop("_lines", {})
    cfg = config_mod.merge(base.to_dict() if base else {}, file_cfg, config_mod.parse_overrides(list(overrides)))
    if data_dir is not None:
        cfg["data"] = {**cfg.get("data", {}), "path": str(Path(data_dir).resolve())}
    if "path" not in cfg.get("data", {}):
        raise ConfigError("no data folder given")
    domain_name = (domain or cfg.get("domain") or data.folder_info(Path(cfg["data"]["path"])).get("domain")
                   or registry.domain_for_path(Path(cfg["data"]["path"])))
    if domain_name is None:
        folder = Path(cfg["data"]["path"])
        if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
            raise DataError(f"the folder {folder} is empty: put the files to train on in it (or build a dataset "
                            f"into it: `seqstudio data list`)")
        raise DataError(f"no installed domain reads the files in {cfg['data']['path']} "
                        f"(installed: {', '.join(registry.names('domain')) or 'none'})")
    cfg["domain"] = domain_name
    domain_obj = registry.load_domain(domain_name)()
    codec_values = dict(cfg.get("codec", {}))
    # A folder built by a recipe with a codec section (jsb-bl2012: piano-roll frames) names its codec: that one,
    # unless the command names another, before the domain's default.
    recorded = data.folder_info(Path(cfg["data"]["path"])).get("codec")
    recorded_name = recorded.get("name") if isinstance(recorded, dict) else None
    recorded_name = recorded_name if recorded_name in domain_obj.codecs else None  # another domain's (--domain)
    codec_name = codec or codec_values.pop("name", None) or recorded_name or domain_obj.default_codec
    codec_values.pop("name", None)
    codec_values = {**data.folder_codec(Path(cfg["data"]["path"]), domain_name, codec_name), **codec_values}
    backend_values = dict(cfg.get("backend", {}))
    backend_name = backend or backend_values.pop("name", None) or domain_obj.default_backend
    backend_values.pop("name", None)
    train_values = {**cfg.get("train", {}), **{k: v for k, v in (train_options or {}).items() if v is not None}}
    try:
        return RunSpec.build(domain_name, codec_name, codec_values, backend_name, backend_values, train_values,
                             cfg["data"], cfg.get("heads"))
    except ConfigError as exc:
        raise config_mod.with_line(exc, lines, config_file) if config_file else exc


def _default_run_dir(spec: RunSpec) -> Path:
    stem = f"{spec.data_path.name}-{spec.backend_name}"
    candidate, i = Path("runs") / stem, 1
    while candidate.exists():
        i += 1
        candidate = Path("runs") / f"{stem}-{i}"
    return candidate


# -- training -------------------------------------------------------------------------------------------------------
def _lock_run_dir(run_dir: Path) -> None:
    """One writer per run directory (``seqstudio.runlock``): under torchrun only rank 0 writes, so only it locks."""
    if os.environ.get("RANK", "0") == "0":
        runlock.acquire(run_dir, "train --run-dir")


@runlock.releases_locks
def train(data_dir: str | Path | None = None, *, backend: str | None = None, domain: str | None = None,
          codec: str | None = None, run_dir: str | Path | None = None, config: str | Path | None = None,
          overrides: list[str] = (), resume: bool = False, progress: bool = True,
          init_from: str | Path | None = None, **train_options) -> Path:
    """Train a backend on a folder of files; returns the run directory. ``init_from``: fine-tune that run."""
    from . import finetune
    from .training import Trainer, flush_denormals, use_threads

    init_from = finetune.resolve(init_from) if init_from and not resume else None
    base = finetune.base_spec(init_from, data_dir, domain) if init_from else None
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs --run-dir pointing at the run to continue")
        if Path(run_dir).is_dir():
            _lock_run_dir(Path(run_dir))
        base = load_spec(Path(run_dir))
        check_resumable(Path(run_dir))
        if data_dir is not None and Path(data_dir).resolve() != base.data_path:
            raise ConfigError(f"--resume continues the run on its own data ({base.data['path']}); "
                              f"omit DATA_DIR or start a new run")
    spec = resolve_config(Path(data_dir) if data_dir else None, backend, domain, codec, config, overrides,
                          train_options, base)
    if init_from and not resume:  # fine-tuning: the weights belong to init_from's codec and model
        finetune.check_same_model(base, spec, init_from)
    changed = model_changes(base, spec) if base is not None and resume else []
    if changed:  # before any data is read: the saved weights belong to the saved model
        raise ConfigError(f"cannot resume {run_dir}: it does not match this configuration, which changes the model "
                          f"({'; '.join(changed)}); change only budgets when resuming (--max-steps, --epochs, "
                          f"--max-minutes, --threads, --lr), or start a new run with another --run-dir")
    run_dir = Path(run_dir) if run_dir else _default_run_dir(spec)
    if not resume:
        _lock_run_dir(run_dir)
    if not resume and run_dir.exists() and not runlock.is_empty(run_dir):
        hint = ("it holds a run that stopped before its first checkpoint: `seqstudio train --resume --run-dir "
                f"{run_dir}` starts it again from step 0 with its saved options"
                if (run_dir / "config.yaml").is_file() and not (run_dir / "last.pt").exists()
                else "use --resume to continue it")
        raise RunDirError(f"run directory {run_dir} already exists and is not empty; {hint}, "
                          f"or choose another --run-dir")
    from_checkpoint = resume and (run_dir / "last.pt").exists()
    if resume and not from_checkpoint:
        log.warning("%s has no checkpoint yet (the run stopped before its first one): training starts again "
                    "from step 0 with its saved options", run_dir)
        if os.environ.get("RANK", "0") == "0":
            from .rundir import trim_metrics

            trim_metrics(run_dir, 0)  # the restarted steps are logged again: no record twice
    threads = use_threads(spec.train.threads)
    flush_denormals()
    if spec.train.threads <= 0:
        log.info("threads: %d (train.threads=0: %s)", threads,
                 "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else "one per idle core")
    saved = load_fitted(run_dir, spec)[1] if resume else load_fitted(init_from, spec)[1] if init_from else None
    prepared = data.prepare(spec, fitted=saved, progress=progress)
    codec_obj, fitted, files, sets = prepared.codec, prepared.fitted, prepared.files, prepared.windows
    log.info("data: %d train / %d valid files -> %d / %d windows of up to %d steps",
             len(files["train"]), len(files["valid"]), len(sets["train"]), len(sets["valid"]),
             sets["train"].max_length)
    warn_unbalanced(len(sets["train"]), len(sets["valid"]))
    if init_from and not resume:
        finetune.check_fits(codec_obj, sets, spec.data_path, init_from)
    valid_used = capped_validation(sets["valid"], spec.train.valid_max_windows)
    torch.manual_seed(spec.train.seed)
    model = spec.make_backend(codec_obj.spec, fitted.conditions, fitted.text)
    if not from_checkpoint and spec.train.init_output_bias and not init_from:
        x, lengths = sets["train"].gather(torch.arange(min(len(sets["train"]), 4096)))  # bounded for huge data
        model.init_from_data(x, torch.arange(x.shape[1]) < lengths.unsqueeze(1))
    if init_from and not from_checkpoint:
        finetune.load_weights(model, init_from)
    dist = init_distributed()
    trainer = Trainer(model, codec_obj, sets["train"], valid_used, spec.train, run_dir, dist=dist,
                      progress=progress)
    if from_checkpoint:
        trainer.resume()  # before config.yaml is rewritten: a refused resume leaves the run as it was
        _refuse_finished(trainer, run_dir, dist)
    if dist.is_main:
        write_run_files(run_dir, spec, codec_obj, fitted)
        record_json(run_dir / "data.json", {f"{s} files": len(files[s]) for s in data.SPLITS} | {
            f"{s} windows": len(sets[s]) for s in sets} | {"valid windows validated": len(valid_used)} | {
            "steps per window": sets["train"].max_length})
    try:
        state = trainer.fit()
    except (TrainingDiverged, TrainingInterrupted):
        leave(dist)  # every process raises these at the same step, so they can leave together
        raise
    log.info("stopped after %d steps (%s)", state.step, state.stopped_because or "done")
    if dist.is_main and spec.train.samples > 0:
        run = load_run(run_dir, device=trainer.device)
        write_samples(run, generate(run, n=spec.train.samples, seed=spec.train.seed), run_dir / "samples",
                      sample_set=False)
    leave(dist)
    return run_dir


def warn_unbalanced(train_windows: int, valid_windows: int) -> None:
    """Say so when the valid split outweighs the train split: the file hash put a huge file (most of the data)
    into valid, so validation takes longer than training and the model learns from a sliver."""
    if valid_windows > max(train_windows, 100):
        log.warning("the valid split has %d windows and the train split %d: one big file probably dominates the "
                    "valid split, so training learns from little and each validation takes long; split the data "
                    "into train/ and valid/ subfolders yourself, or cut the big file into pieces",
                    valid_windows, train_windows)


def capped_validation(windows: data.WindowSet, cap: int) -> data.WindowSet:
    """At most ``cap`` windows of the valid split (``train.valid_max_windows``; 0 = all), evenly spaced over it
    (the same ones at every validation and on resume), said in the log: a valid split that one huge file
    dominates would otherwise make every validation take minutes."""
    if not cap or len(windows) <= cap:
        return windows
    log.warning("validation uses %d evenly spaced windows of the valid split's %d (train.valid_max_windows=%d; "
                "0 = all); evaluate --split valid still scores them all", cap, len(windows), cap)
    return windows.subset(np.linspace(0, len(windows) - 1, cap).round().astype(np.int64))


def record_json(path: Path, values: dict) -> None:
    """A small JSON record in a run directory (``data.json``: what training saw; ``evaluation-SPLIT.json``:
    the last ``evaluate``), for ``seqstudio report``. A record that cannot be written is a warning: the command
    that made it has done its work."""
    import json

    from .rundir import atomic_write_bytes

    try:
        atomic_write_bytes(Path(path), json.dumps(values, indent=1, default=str).encode())
    except (OSError, SeqStudioError) as exc:
        log.warning("could not write %s: %s", path, exc)


def _refuse_finished(trainer, run_dir: Path, dist) -> None:
    """``NothingToDo`` when the resumed run is already past its budget or stopped early: resuming it would
    otherwise validate again (one more ``bad_validations``, a rewritten last.pt) or train on past early stopping."""
    reason = trainer.finished_because()
    if not reason:
        return
    s, t = trainer.state, trainer.config
    why = {"early_stopping": f"it stopped early at step {s.step} ({s.bad_validations} validations without "
                             f"improvement, train.patience={t.patience}); raise --set train.patience=N "
                             f"(0 = never stop early) to train on",
           "max_steps": f"it reached its budget (step {s.step} of --max-steps {t.max_steps}); raise --max-steps "
                        f"to train on",
           "epochs": f"it reached its budget ({t.epochs:g} epochs, step {s.step}); raise --epochs to train on",
           "max_minutes": f"it reached its budget ({s.elapsed / 60:.2f} of --max-minutes {t.max_minutes:g}); "
                          f"raise --max-minutes to train on"}[reason]
    leave(dist)
    raise NothingToDo(f"nothing to do: {run_dir} is finished; {why}")


# -- using a trained run ----------------------------------------------------------------------------------------------
def load(run_dir: str | Path, device: str = "cpu", which: str = "best") -> Run:
    """Load a run directory (or an exported model folder, or an installed model's name: ``seqstudio.models``)
    for generation, evaluation or encoding."""
    from .models import resolve
    from .training import resolve_device

    return load_run(resolve(run_dir), which=which, device=resolve_device(device))


def _use_threads(run: Run) -> None:
    """Generation and evaluation compute with the run's ``train.threads`` too, and flush denormals as training
    does."""
    from .training import flush_denormals, use_threads

    use_threads(run.spec.train.threads)
    flush_denormals()


def _generator(run: Run, seed: int | None) -> torch.Generator:
    g = torch.Generator(device=run.backend.device)
    g.manual_seed(seed if seed is not None else torch.seed())
    return g


def encode_file(run: Run, path: str | Path) -> torch.Tensor:
    """A file as the run's codec sees it: ``[T, storage_width]``."""
    return run.codec.encode(run.domain.read(Path(path)))


def prime_tensor(run: Run, sample) -> torch.Tensor:
    """``sample`` as what the run's generator goes on from: ``[1, T, storage_width]``, with any end mark made one
    it continues after (``Codec.without_end``: a model never saw anything follow an end mark in training)."""
    return run.codec.without_end(run.codec.encode(sample)).unsqueeze(0)


def file_provenance(run: Run, path: str | Path) -> dict[str, str]:
    """What the run's domain records of a file for decoding it back (``Domain.provenance``: a MIDI file's
    tempo and instrument)."""
    return run.domain.provenance(run.domain.read(Path(path)), Path(path))


def decode_tensor(run: Run, x: torch.Tensor, source: str | Path | None = None):
    """``x`` as a sample; ``source``: the file ``x`` was encoded from, whose provenance (a MIDI file's tempo and
    instrument) the sample keeps (``Codec.decode_piece``), so ``decode_tensor(run, encode_file(run, f), f)`` is
    a round trip. Without it, what the run gives generated samples (``Codec.fit_decoding``)."""
    if source is None:
        return run.codec.decode(x.detach().cpu())
    return run.codec.decode_piece(x.detach().cpu(), file_provenance(run, source))


class Samples(list):
    """Generated samples; ``conditions`` holds each one's condition values (``{name: value}``) when the run is
    conditional, else None (``write_samples`` puts them into the file names and ``conditions.json``)."""

    conditions: list[dict] | None = None


def generate(run: Run, n: int = 4, length: int | None = None, temperature: float = 1.0, seed: int | None = None,
             prime: str | Path | None = None, batch_size: int = 64, bias: float = 0.0,
             progress: bool = False, conditions: list[str] | dict | None = None,
             condition_index: torch.Tensor | None = None, top_k: int = 0, top_p: float = 1.0,
             guidance: float = 1.0) -> Samples:
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
    """
    if n < 1:
        raise ConfigError("-n must be at least 1")
    SamplingOptions(top_k=top_k, top_p=top_p, guidance=guidance)  # bad values are refused before any file is read
    check_guidance(guidance, run.fitted.conditions, run.backend.text_spec is not None, run.backend)
    length = generation_length(run, length)
    _use_threads(run)
    if prime:
        from .runcheck import regular_file

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
    g = _generator(run, seed)
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


def conditions_of(run: Run):
    """The run's ``ConditionSpec`` (None for an unconditional run)."""
    return run.fitted.conditions


def _condition_primes(run: Run, labels: list[dict]) -> list[tuple[list[int], torch.Tensor]]:
    """A prime-conditioned run (``conditions_as_prime``): ``(positions, prime)`` per distinct asked header, so
    that the samples asking for the same values are generated together from one prime."""
    groups: dict[tuple, list[int]] = {}
    for i, values in enumerate(labels):
        groups.setdefault(tuple(sorted(values.items())), []).append(i)
    usual = run.fitted.conditions.usual_notes()  # the training pieces' header layout and the like
    return [(positions, prime_tensor(run, run.domain.condition_prime({**usual, **dict(key)})))
            for key, positions in groups.items()]


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """A run's domain, codec, backend and conditions (each attribute's values with their training counts)."""
    spec = load_spec(Path(run_dir))
    codec, fitted = load_fitted(Path(run_dir), spec)
    cs = fitted.conditions
    cond = None
    if cs is not None:
        cond = {"mode": cs.mode, "dropout": cs.dropout, "size": cs.size,
                "attributes": {a.name: dict(zip(a.values, a.counts)) for a in cs.attributes},
                "notes": {k: dict(v) for k, v in cs.notes}}
    ts = fitted.text  # text: the sequence condition, if any
    return {"run_dir": str(run_dir), "domain": spec.domain, "codec": spec.codec_name, "backend": spec.backend_name,
            "conditions": cond, "text": ts.to_dict() if ts is not None else None,
            "decoding": codec.decoding_state()}  # what generated samples get (a MIDI run's tempo, program)


def generation_length(run: Run, length: int | None) -> int:
    """Steps to generate: ``length`` (at most ``MAX_LENGTH``), else the training window (at most
    ``MAX_DEFAULT_LENGTH``: a run directory whose window is absurd must not start a generation that never ends)."""
    if length is not None:
        if not 1 <= length <= MAX_LENGTH:
            raise ConfigError(f"--length must be between 1 and {MAX_LENGTH} steps, got {length}")
        return length
    default = run.codec.window_length or 64
    if default > MAX_DEFAULT_LENGTH:
        raise ConfigError(f"the run's training window is {default} steps (codec options in "
                          f"{run.path / 'config.yaml'}), more than the {MAX_DEFAULT_LENGTH} generated by default; "
                          f"give --length N (at most {MAX_LENGTH})")
    return default


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
    _use_threads(run)
    options = SamplingOptions(length=generation_length(run, length), temperature=temperature)
    for f in (a, b):
        from .runcheck import regular_file

        regular_file(Path(f), f"--interpolate {f}")
    xa = _crop(encode_file(run, a), options.length)
    xb = _crop(encode_file(run, b), options.length)
    x = run.backend.interpolate(xa, xb, steps, options, generator=_generator(run, seed))
    provenance = file_provenance(run, a)  # the path starts at ``a``: its tempo and instrument
    return [run.codec.decode_piece(x[i].cpu(), provenance) for i in range(x.shape[0])]


def _crop(x: torch.Tensor, length: int) -> torch.Tensor:
    return x[:length] if length > 0 else x


def write_samples(run: Run, samples: list, out_dir: str | Path, prefix: str = "sample",
                  render: bool = True, audio: bool = False, soundfont: str | Path | None = None,
                  progress: bool = False, sample_set: bool = True) -> list[Path]:
    """Write samples as files of the run's domain (plus a picture of each when the domain can draw, a WAV
    beside each when ``audio`` and the domain plays it, and an overview sheet of them all when the domain makes
    one); see ``seqstudio.outputs`` for how (never through a symbolic link, nothing left behind on a full disk).
    ``sample_set``: replace the set of samples written there before (``outputs.staged_output``)."""
    from .outputs import staged_output

    out_dir = Path(out_dir)
    if audio and not run.domain.can_render_audio:
        raise ConfigError(f"domain {run.domain.name!r} cannot render audio")
    with staged_output(out_dir, sample_set=sample_set) as stage:
        labels = write_sample_files(run, samples, stage, prefix, 0, render, audio, soundfont, progress)
        write_conditions(stage, labels)
    return [out_dir / name for name in sample_names(run, samples, prefix, 0)]


def sample_names(run: Run, samples: list, prefix: str, start: int) -> list[str]:
    return [f"{prefix}-{start + i:03d}{run.domain.output_extension_for(s)}" for i, s in enumerate(samples)]


def write_conditions(folder: Path, labels: dict) -> None:
    """``conditions.json``: each sample file's conditions (conditional runs only)."""
    if labels:
        import json

        (Path(folder) / "conditions.json").write_text(json.dumps(labels, indent=1))


def write_sample_files(run: Run, samples: list, stage: Path, prefix: str = "sample", start: int = 0,
                       render: bool = True, audio: bool = False, soundfont: str | Path | None = None,
                       progress: bool = False) -> dict:
    """Write ``samples`` (numbered from ``start``) into the private folder ``stage`` (``staged_output``'s);
    returns ``{file name: conditions}`` for a conditional run (else empty)."""
    from tqdm.auto import tqdm

    labels = getattr(samples, "conditions", None)  # conditions: each file's, in conditions.json
    names = sample_names(run, samples, prefix, start)
    bar = tqdm(samples, desc="writing samples", unit="file", disable=not progress or len(samples) < 2,
               dynamic_ncols=True, leave=False)
    for name, sample in zip(names, bar):
        run.domain.write(sample, stage / name)
        if render and run.domain.can_render:
            run.domain.render(sample, (stage / name).with_suffix(".png"))
        if audio and run.domain.has_audio(sample):
            _write_audio(run.domain, sample, (stage / name).with_suffix(".wav"), soundfont)
    if render and run.domain.can_write_sheet and len(samples) > 1 and start == 0:
        run.domain.write_sheet(samples, stage / f"{prefix}-sheet")
    return dict(zip(names, labels)) if labels else {}


def _write_audio(domain, sample, path: Path, soundfont) -> None:
    """One sample's audio; a generated sample that cannot be played (an ABC tune that does not parse) is a
    warning, not the end of ``generate``."""
    try:
        domain.render_audio(sample, path, soundfont)
    except DataError as exc:
        log.warning("no audio for %s: %s", path.with_suffix("").name, exc)


def render_file(path: str | Path, out: str | Path | None = None, domain: str | None = None,
                limit: int = 16, soundfont: str | Path | None = None) -> list[Path]:
    """Draw any file an installed domain reads as a picture; a many-sample file becomes a sheet of its first
    ``limit`` samples; an ``out`` ending in ``.wav`` renders the file as audio instead (``soundfont`` overrides
    the domain's instruments). Returns the files written (default: ``NAME.png`` in the current folder)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    name = domain or registry.domain_for_path(path)
    if name is None:
        raise DataError(f"no installed domain reads {path.name} (installed: {', '.join(registry.names('domain'))})")
    domain_obj = registry.load_domain(name)()
    out = Path(out) if out else Path(path.stem + ".png")
    if out.suffix.lower() not in (".png", ".wav"):
        raise ConfigError(f"--out must name a .png (picture) or .wav (audio) file, got {out}")
    if out.resolve() == path.resolve():
        raise ConfigError(f"--out {out} is the input file itself; choose another name")
    if out.suffix.lower() == ".wav":
        return [_render_file_audio(domain_obj, path, out, soundfont)]
    if soundfont:
        raise ConfigError("--soundfont is for audio: give an --out ending in .wav")
    collection = domain_obj.is_collection(path)
    if not (domain_obj.can_write_sheet if collection else domain_obj.can_render):
        raise ConfigError(f"domain {domain_obj.name!r} has no sample sheet" if collection else
                          f"domain {domain_obj.name!r} cannot draw samples")
    from .outputs import staged_output

    # Drawn into a private folder and renamed into place (``seqstudio.outputs``): never through a link planted
    # at ``out``, nothing half-written on a full disk.
    if collection:
        samples = [x for split in domain_obj.read_collection(path).values() for x in split][:limit]
        if not samples:
            raise DataError(f"{path.name} holds no samples")
        with staged_output(out.parent) as stage:
            written = []
            for staged in domain_obj.write_sheet(samples, stage / out.stem):
                final = out.parent / Path(staged).name
                if final.exists() and final.resolve() == path.resolve():  # a sheet never replaces its input
                    log.warning("not writing %s: it is the file being drawn", final)
                    Path(staged).unlink()
                else:
                    written.append(final)
        return written
    sample = domain_obj.read(path)
    with staged_output(out.parent) as stage:
        domain_obj.render(sample, stage / out.name)
    return [out]


def _render_file_audio(domain_obj, path: Path, out: Path, soundfont) -> Path:
    if not domain_obj.can_render_audio:
        raise ConfigError(f"domain {domain_obj.name!r} cannot render audio")
    if domain_obj.is_collection(path):
        raise ConfigError(f"{path.name} holds many samples; audio is rendered for one-sample files")
    sample = domain_obj.read(path)
    if not domain_obj.has_audio(sample):
        raise ConfigError(f"{path.name} has no audio in domain {domain_obj.name!r}")
    from .outputs import staged_output

    with staged_output(out.parent) as stage:  # never through a link at ``out``; nothing half-written
        domain_obj.render_audio(sample, stage / out.name, Path(soundfont) if soundfont else None)
    return out


def convert_file(src: str | Path, dest: str | Path, domain: str | None = None) -> Path:
    """Convert file ``src`` into ``dest`` (type given by its extension), e.g. an ABC tune to MIDI.

    Without ``domain``, every installed domain that reads ``src`` is asked in turn (the best guess first), so
    ``.abc`` reaches the text domain's ABC -> MIDI bridge although the MIDI domain reads ``.abc`` too.
    """
    from .domain import ConversionUnsupported

    src, dest = Path(src), Path(dest)
    safe_io.check_regular_file(src)  # a FIFO or device would block or never end
    if domain:
        names = [domain]
    else:
        names = registry.domains_for_path(src)  # broken plugins left out: `seqstudio plugins` reports them
        if not names:
            raise DataError(f"no installed domain reads {src.name} "
                            f"(installed: {', '.join(registry.names('domain')) or 'none'})")
    refusals = []
    for name in names:
        try:
            registry.load_domain(name)().convert(src, dest)
            return dest
        except ConversionUnsupported as exc:
            refusals.append(str(exc))
    raise ConversionUnsupported(refusals[0] if len(refusals) == 1 else
                                f"no installed domain converts {src.suffix or src.name} files to "
                                f"{dest.suffix or 'extension-less'} files (tried: {', '.join(names)})")


def _held_out_windows(run: Run, data_dir, split: str, progress: bool):
    """``split`` of ``data_dir`` (default: the run's training folder) encoded into windows by the run's codec."""
    if split not in data.SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(data.SPLITS)}")
    _use_threads(run)
    spec = run.spec.with_data_path(data_dir) if data_dir is not None else run.spec
    prepared = data.prepare(spec, fitted=run.fitted, splits=(split,), progress=progress, domain=run.domain)
    files, windows = prepared.files, prepared.windows[split]
    if len(windows) == 0:
        raise DataError(f"the {split} split of {spec.data['path']} holds no usable {run.domain.name} files "
                        f"({len(files[split])} files)")
    return spec, files, windows


@torch.no_grad()
def evaluate(run: Run, data_dir: str | Path | None = None, split: str = "test", batch_size: int = 64,
             progress: bool = True, seed: int = 0, **options) -> dict[str, Any]:
    """Held-out figures of the run's backend on ``split`` of ``data_dir`` (default: the training folder).

    ``options`` go to ``Backend.evaluate_batch`` (e.g. ``iw_samples`` for an importance-weighted bound).
    """
    backend: Backend = run.backend
    backend.check_evaluate_options(options)
    spec, files, windows = _held_out_windows(run, data_dir, split, progress)
    torch.manual_seed(seed)
    backend.eval()
    total: dict[str, torch.Tensor] = {}
    from tqdm.auto import tqdm

    batches = data.batch_indices(len(windows), batch_size, 0, 0, shuffle=False)
    for index in tqdm(batches, desc="evaluating", unit="batch", disable=not progress or len(batches) < 2,
                      dynamic_ncols=True, leave=False):
        add_stats(total, backend.evaluate_batch(data.make_batch(windows, index, backend.device), **options))
    stats = {k: float(v) for k, v in total.items()}
    result = backend.summarize(stats)
    result.update(split=split, files=len(files[split]), windows=len(windows), steps=int(stats.get("steps", 0)),
                  backend=spec.backend_name, run_dir=str(run.path), data=spec.data["path"])
    cs = run.fitted.conditions  # conditions: the likelihood is conditioned as in training
    result["conditioned_on"] = cs.names if cs is not None and cs.conditions_backend else []
    ts = run.fitted.text  # text: the likelihood is of each line given its text
    result["text_conditioned"] = ts.attribute if ts is not None else None
    return result


def distinct_windows(windows) -> list[int]:
    """Indices of the windows of a WindowSet that overlap no other kept one (the first of each run of overlapping
    windows of a piece, in order): a window cut every bar overlaps its neighbours by three bars, and the sample
    judge must not see near-copies on both sides of a fold."""
    import numpy as np

    keep, last_src, last_end = [], None, -1
    for i in np.lexsort((windows.row, windows.src)):
        src, row = int(windows.src[i]), int(windows.row[i])
        if src != last_src:
            last_src, last_end = src, -1
        if row >= last_end:
            keep.append(int(i))
            last_end = row + int(windows.length[i])
    return sorted(keep)


def window_pieces(windows, index: list[int]) -> list[tuple[int, int]]:
    """The piece each of the windows ``index`` was cut from, as ``(source, piece)``; a window the codec built
    rather than sliced (kept apart from its piece's rows) counts as a piece of its own."""
    import numpy as np

    out = []
    for i in index:
        src = int(windows.src[i])
        rows = getattr(windows.sources[src], "piece_row", None)
        piece = int(np.searchsorted(rows, windows.row[i], side="right")) - 1 if rows is not None else -1 - i
        out.append((src, piece))
    return out


def judge_reference(run: Run, data_dir: str | Path | None = None, split: str = "test", limit: int = 1000,
                    seed: int = 0, progress: bool = True) -> tuple[list, list[tuple[int, int]]]:
    """The sample judge's real side: ``split``'s windows that overlap no other (``distinct_windows``; at most
    ``limit``, a seeded subset), decoded like generated samples, and the piece each came from (the judge's
    real-vs-real floor splits by piece)."""
    _, _, windows = _held_out_windows(run, data_dir, split, progress)
    index = distinct_windows(windows)
    if limit and len(index) > limit:
        order = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))
        index = sorted(index[i] for i in order[:limit].tolist())
    return [run.codec.decode(windows.window(i)) for i in index], window_pieces(windows, index)


def reference_samples(run: Run, data_dir: str | Path | None = None, split: str = "test", limit: int = 1000,
                      seed: int = 0, progress: bool = True) -> list:
    """Held-out pieces as a generator of this run would produce them: ``split``'s windows, decoded by the codec.

    Generated samples are windows of the codec's length on the codec's grid, and metrics such as the pitch
    range or the number of pitches used grow with length; comparing 4-bar samples with whole pieces would mark
    every model down for length alone. So the reference is the split's training-style windows (at most
    ``limit``, a seeded random subset), decoded back into domain samples. Encoding quantises a note onto the grid
    once and decoding is exact on that grid, so the reference is quantised once, exactly like the samples.
    """
    _, _, windows = _held_out_windows(run, data_dir, split, progress)
    index = list(range(len(windows)))
    if limit and len(windows) > limit:
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))
        index = sorted(order[:limit].tolist())
    return [run.codec.decode(windows.window(i)) for i in index]


def compare_samples(domain, samples: list, reference: list) -> dict[str, Any]:
    """The domain's metrics on both sets and their per-metric overlap (``seqstudio.metrics.compare``)."""
    from .metrics import compare

    generated = [domain.metrics(s) for s in samples]
    if not generated or not generated[0]:
        raise ConfigError(f"domain {domain.name!r} defines no metrics to compare samples with")
    return compare(generated, [domain.metrics(s) for s in reference])


def judge_samples(domain, samples: list, reference: list, seed: int = 0,
                  reference_pieces: list | None = None) -> dict[str, Any]:
    """The sample judge (``seqstudio.judge``): can a classifier tell ``samples`` from the held-out ``reference``
    (the domain's excerpts and features), with the real-vs-real floor (its halves split by
    ``reference_pieces``, one per reference sample, where given) and per-feature overlaps."""
    from . import judge

    return judge.judge(domain, samples, reference, seed=seed, real_groups=reference_pieces)


def evaluate_samples(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                     seed: int = 0, temperature: float = 1.0, length: int | None = None,
                     max_reference: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Judge a generator by its samples: ``n`` samples vs ``split``'s held-out windows, metric by metric, and by
    the sample judge.

    For every domain metric, the overlapping area of the two distributions (MGEval); ``mean_overlap`` (in
    [0, 1], higher is better) averages them. ``judge``: a classifier two-sample test on the domain's excerpt
    features (``seqstudio.judge``; 0.5 = indistinguishable from real), against the windows of ``split`` that
    do not overlap each other, with the real-vs-real floor; ``{"available": false, "reason": ...}`` for a domain
    without features. Works for every backend, likelihood or not.
    """
    samples = generate(run, n=n, length=length, temperature=temperature, seed=seed, progress=progress)
    reference = reference_samples(run, data_dir, split, limit=max_reference, seed=seed, progress=progress)
    real, pieces = judge_reference(run, data_dir, split, limit=max_reference, seed=seed, progress=False)
    verdict = judge_samples(run.domain, samples, real, seed=seed, reference_pieces=pieces)
    has_metrics = bool(samples) and bool(run.domain.metrics(samples[0]))
    # A domain without metrics still gets its judge's figures, or the judge's "no judge" and why: never an error
    # that would also throw away the likelihood figures evaluated before.
    result = (compare_samples(run.domain, samples, reference) if has_metrics
              else {"metrics": {}, "mean_overlap": float("nan")})
    return {"mean_overlap": result["mean_overlap"], "sample_metrics": result["metrics"], "judge": verdict,
            "samples": n, "reference_windows": len(reference), "temperature": temperature, "split": split,
            "backend": run.spec.backend_name, "run_dir": str(run.path),
            "data": str(Path(data_dir).resolve()) if data_dir is not None else run.spec.data["path"]}


def _labelled_windows(run: Run, data_dir, split: str, limit: int, seed: int, progress: bool):
    """``split``'s windows decoded, each with its condition values (at most ``limit``, a seeded subset)."""
    _, _, windows = _held_out_windows(run, data_dir, split, progress)
    cs = run.fitted.conditions
    index = list(range(len(windows)))
    if limit and len(windows) > limit:
        index = sorted(torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:limit].tolist())
    return [(run.codec.decode(windows.window(i)),  # one window read (``windows.x`` would gather them all)
             cs.labels(windows.conditions[i].tolist()) if windows.conditions is not None else {}) for i in index]


def condition_judges(run: Run, data_dir, seed: int, progress: bool) -> dict:
    """The domain's judge of each condition attribute it can judge (``Domain.condition_judges``), fitted on the
    training windows where it learns; {} for a run without embedded conditions."""
    cs = run.fitted.conditions
    if cs is None or not cs.conditions_backend:
        return {}
    return run.domain.condition_judges(cs.names, lambda: _labelled_windows(run, data_dir, "train", 2000, seed,
                                                                           progress))


def _share_as_asked(judge, samples, targets) -> float:
    """The share of ``samples`` the attribute's ``judge`` finds as asked (``targets``; unasked ones left out)."""
    pairs = [(s, t) for s, t in zip(samples, targets) if t]
    return sum(judge(s) == t for s, t in pairs) / len(pairs) if pairs else float("nan")


def evaluate_conditions(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                        seed: int = 0, temperature: float = 1.0, length: int | None = None,
                        max_reference: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Did a conditional run listen? Per attribute the domain can judge (``Domain.condition_judges``): the share
    of ``n`` samples, asked for conditions drawn from the training distribution, that the judge finds as asked
    (``asked``); the same share for samples of the same seed generated with every condition unknown
    (``unconditional``: chance, the model's own unconditional mode); and the judge's agreement with the real
    values on ``split``'s windows (``held_out``: the ceiling, e.g. the classifier's held-out accuracy)."""
    cs = run.fitted.conditions
    judges = condition_judges(run, data_dir, seed, progress)
    if not judges:
        return {}
    held_out = _labelled_windows(run, data_dir, split, max_reference, seed, progress)
    asked = cs.sample(n, torch.Generator().manual_seed(seed))
    with_c = generate(run, n=n, length=length, temperature=temperature, seed=seed, condition_index=asked)
    without = generate(run, n=n, length=length, temperature=temperature, seed=seed,
                       condition_index=torch.zeros_like(asked))
    out = {}
    for name, judge in judges.items():
        wanted = [labels.get(name) for labels in with_c.conditions]
        out[name] = {"asked": _share_as_asked(judge, with_c, wanted),
                     "unconditional": _share_as_asked(judge, without, wanted),
                     "held_out": _share_as_asked(judge, [s for s, _ in held_out],
                                                 [labels.get(name) for _, labels in held_out]),
                     "samples": sum(1 for t in wanted if t), "held_out_windows": len(held_out)}
    return out


GUIDANCE_CURVE = (0.0, 1.0, 2.0, 4.0)


def can_guide(run: Run) -> bool:
    """Whether ``--guidance`` other than 1 is open to this run (``seqstudio.guidance.check_guidance``)."""
    try:
        check_guidance(2.0, run.fitted.conditions, run.backend.text_spec is not None, run.backend)
    except ConfigError:
        return False
    return True


def evaluate_guidance(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                      seed: int = 0, temperature: float = 1.0, length: int | None = None,
                      scales: tuple[float, ...] = GUIDANCE_CURVE, max_reference: int = 1000,
                      progress: bool = True) -> dict[str, Any]:
    """Adherence against the guidance scale, beside realism: for each scale, ``n`` samples asked for the same
    conditions (drawn from the training distribution, seeded) and the same seed; per judged attribute the share
    found as asked (``adherence``), and the sample judge's balanced accuracy against ``split``'s real windows
    (``judge_accuracy``; 0.5 = indistinguishable), since strong guidance can trade realism for adherence.
    ``held_out``: each attribute judge's agreement with the real values (the ceiling). {} for a run that cannot
    be guided (no embedded conditions, condition dropout 0, text-conditioned) or has no condition judge."""
    if not can_guide(run):
        return {}
    judges = condition_judges(run, data_dir, seed, progress)
    if not judges:
        return {}
    cs = run.fitted.conditions
    asked = cs.sample(n, torch.Generator().manual_seed(seed))
    real, pieces = judge_reference(run, data_dir, split, limit=max_reference, seed=seed, progress=False)
    held_out = _labelled_windows(run, data_dir, split, max_reference, seed, progress)
    curve = {"scales": list(scales), "adherence": {name: [] for name in judges}, "judge_accuracy": [],
             "held_out": {name: _share_as_asked(judge, [s for s, _ in held_out],
                                                [labels.get(name) for _, labels in held_out])
                          for name, judge in judges.items()},
             "samples": n}
    for scale in scales:
        samples = generate(run, n=n, length=length, temperature=temperature, seed=seed, condition_index=asked,
                           guidance=scale)
        for name, judge in judges.items():
            curve["adherence"][name].append(_share_as_asked(judge, samples,
                                                            [labels.get(name) for labels in samples.conditions]))
        verdict = judge_samples(run.domain, samples, real, seed=seed, reference_pieces=pieces)
        curve["judge_accuracy"].append(verdict["accuracy"] if verdict.get("available") else float("nan"))
    return curve


__all__ = ["train", "load", "generate", "interpolate", "write_samples", "render_file", "convert_file", "evaluate",
           "evaluate_samples", "reference_samples", "compare_samples", "judge_samples", "judge_reference",
           "encode_file", "decode_tensor",
           "resolve_config", "Run", "RunSpec", "RunDirError", "run_info", "evaluate_conditions", "Samples",
           "evaluate_guidance", "can_guide", "conditions_of", "condition_judges"]
