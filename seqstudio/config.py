"""Run configuration: typed sections, YAML files and ``key=value`` overrides, with errors a user can act on.

A run's configuration has five sections — ``codec``, ``backend``, ``train`` and ``heads`` (the output heads'
choices, ``heads.HeadsConfig``) are dataclasses (their fields are the only valid keys, their types convert the
values), ``data`` is free-form provenance. Unknown keys are
refused with the list of valid ones, and a YAML error names the file, key and line.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from . import safe_yaml
from .errors import ConfigError
from .safe_yaml import brief

# The sampling bias a line written from text gets unless asked otherwise (`generate --text`, the studio's writing
# pad): on hershey-script the recogniser reads 27% of the letters wrong at bias 2 against 42% at bias 0
# (BENCHMARKS.md, issue 27). Other samples default to bias 0 (plain sampling).
TEXT_BIAS = 2.0

SECTIONS = ("codec", "backend", "train", "heads")
SCHEDULES = ("constant", "cosine", "plateau")  # train.schedule (seqstudio/training/schedule.py)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section: optimisation, budgets, devices. Frozen: a run's specification is decided once."""

    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_warmup_steps: int = 0  # the learning rate rises linearly from lr/N to lr over the first N steps
    # The learning-rate schedule after the warm-up (seqstudio/training/schedule.py): constant | cosine (down to
    # lr_floor x lr over schedule_steps, 0 = the step budget) | plateau (x plateau_factor after plateau_patience
    # validations without a new best, down to lr_floor x lr).
    schedule: str = "constant"
    lr_floor: float = 0.1  # the lowest rate of cosine and plateau, as a fraction of lr
    schedule_steps: int = 0  # cosine's horizon in steps; 0 = --max-steps (or the epochs' steps)
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # validations (train.valid_every steps apart)
    clip_grad_norm: float = 1.0
    # Start every output head at the training data's marginals: a much faster start (the demo, the GAN's
    # pre-training). false = heads keep PyTorch's default initialisation (logits near 0), which on JSB Chorales
    # gave the VRNN and the RNN better best-on-valid likelihoods (BENCHMARKS.md), at the cost of a slower start.
    init_output_bias: bool = True
    max_steps: int = 0  # 0 = no limit
    epochs: float = 0.0  # 0 = no limit; when no limit at all is given, 20 epochs
    max_minutes: float = 0.0  # time budget, so models can be compared at equal time (see budget_clock)
    # What max_minutes counts: wall = elapsed time; cpu = this process's CPU time (all its threads), so a budget
    # means the same work whatever else shares the machine (comparisons at "5 minutes on one core" on a busy host).
    budget_clock: str = "wall"
    valid_every: int = 200  # steps between validations (and checkpoints)
    patience: int = 10  # validations without improvement before stopping; 0 = never stop early
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    samples: int = 4  # samples written into the run directory at the end
    workers: int = 0  # processes for reading files (0 = one per core)
    # Batches of windows of similar length (seqstudio.training.length_groups): auto = on when the training windows
    # differ in length (whole pieces), where random batches spent 42-50% of their steps on padding; on | off.
    length_grouping: str = "auto"
    # Validation uses at most this many windows of the valid split, evenly spaced (said in the log), so one huge
    # file the hash put into valid cannot make every validation take minutes; 0 = every window.
    valid_max_windows: int = 5000
    valid_fraction: float = 0.1  # used only when the data folder has no train/valid/test subfolders
    test_fraction: float = 0.1
    # PyTorch CPU threads in this process for training, evaluation and generation; 0 = auto: $OMP_NUM_THREADS
    # when set, else one per idle core (training.device.auto_threads: PyTorch's one per core made training
    # 3-40x slower than 1 thread when other jobs shared the CPU).
    threads: int = 0
    tensorboard: bool = False  # also write TensorBoard scalars to RUN_DIR/tensorboard (needs the tensorboard package)
    # Conditioning (seqstudio.conditions): auto = every attribute the data carries with more than one value;
    # none = off; or a comma-separated list of attribute names (e.g. "mode,meter").
    conditions: str = "auto"
    condition_dropout: float = 0.1  # per attribute and sequence, training sees "unknown": one model, both ways
    condition_size: int = 16  # width of the condition embedding the backends consume
    # Text, a sequence condition (seqstudio.text_condition): auto = on when the data carries a transcription
    # that varies per piece; none = off; or the attribute's name. text_mixtures: Graves' K Gaussian windows.
    text: str = "auto"
    text_mixtures: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= self.condition_dropout <= 1.0:
            raise ConfigError(f"train.condition_dropout must be in [0, 1], got {self.condition_dropout}")
        if self.condition_size < 1:
            raise ConfigError(f"train.condition_size must be >= 1, got {self.condition_size}")
        if self.lr_warmup_steps < 0:
            raise ConfigError(f"train.lr_warmup_steps must be >= 0, got {self.lr_warmup_steps}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"train.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0.0 <= self.lr_floor <= 1.0:
            raise ConfigError(f"train.lr_floor is a fraction of train.lr in [0, 1], got {self.lr_floor}")
        if self.schedule_steps < 0:
            raise ConfigError(f"train.schedule_steps must be >= 0 (0 = the step budget), got {self.schedule_steps}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ConfigError(f"train.plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if self.plateau_patience < 1:
            raise ConfigError(f"train.plateau_patience must be >= 1, got {self.plateau_patience}")
        if (self.schedule == "cosine" and not self.schedule_steps and self.max_minutes and not self.max_steps
                and not self.epochs):
            raise ConfigError("train.schedule=cosine with only a time budget (--max-minutes) needs "
                              "train.schedule_steps, the steps to decay over (or give --max-steps)")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"unknown precision {self.precision!r}; valid: auto, fp32, bf16")
        if self.budget_clock not in ("wall", "cpu"):
            raise ConfigError(f"unknown train.budget_clock {self.budget_clock!r}; valid: wall, cpu")
        if self.threads < 0:
            raise ConfigError(f"train.threads must be >= 0 (0 = auto), got {self.threads}")
        if self.valid_max_windows < 0:
            raise ConfigError(f"train.valid_max_windows must be >= 0 (0 = all), got {self.valid_max_windows}")
        if self.length_grouping not in ("auto", "on", "off"):
            raise ConfigError(f"train.length_grouping must be auto, on or off, got {self.length_grouping!r}")


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def convert(value: Any, target: Any, where: str) -> Any:
    """Convert a YAML/CLI value to a dataclass field's type, or raise ConfigError naming ``where``."""
    if isinstance(value, str) and target is not str:
        try:
            value = safe_yaml.load(value, where)
        except yaml.YAMLError:
            pass
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if target is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if target is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if target is str:
            return str(value)
        origin = typing.get_origin(target)
        if origin in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return list(value)
        return value
    except (TypeError, ValueError):
        name = getattr(target, "__name__", str(target))
        raise ConfigError(f"{where}: expected {name}, got {brief(value)}") from None


def build(cls, values: dict[str, Any], section: str):
    """Instantiate dataclass ``cls`` from ``values``, refusing unknown keys.

    An option a plugin has retired is declared in the class's ``retired_options``: ``{key: (value, message)}``.
    Old run directories still hold such keys; at their old ``value`` (the one that is now the only behaviour)
    they are dropped silently, so the run loads; any other value is refused with ``message`` (what to do
    instead), or with the ordinary unknown-option error when ``message`` is empty.
    """
    types = _field_types(cls)
    retired = getattr(cls, "retired_options", {})
    values = dict(values)
    for key in sorted(set(values) & set(retired) - set(types)):
        old_value, message = retired[key]
        if convert(values[key], type(old_value), f"{section}.{key}") == old_value:
            del values[key]
        elif message:
            raise ConfigError(f"{section}.{key}={brief(values[key])}: {message}")
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"unknown {section} option {unknown[0]!r}; valid options: {', '.join(types)}")
    kwargs = {key: convert(value, types[key], f"{section}.{key}") for key, value in values.items()}
    return cls(**kwargs)


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["backend.latent_size=32", "train.lr=3e-4"]`` -> nested dict (values still raw strings)."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        section, _, name = key.strip().partition(".")
        if section not in SECTIONS or not name:
            raise ConfigError(f"--set key {key!r} must start with one of: {', '.join(s + '.' for s in SECTIONS)}")
        out.setdefault(section, {})[name] = value.strip()
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a config file, checking section names; errors name the file, key and line."""
    from .errors import UnsafePathError
    from .runcheck import regular_file

    path = Path(path)
    try:
        regular_file(path, f"config {path}")  # a FIFO or /dev/zero would never end
        text = path.read_text()
    except UnsafePathError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        node = safe_yaml.compose(text, str(path))
        data = safe_yaml.load(text, str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(data).__name__}")
    lines = {}
    for key_node, value_node in node.value:
        lines[key_node.value] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                lines[f"{key_node.value}.{sub_key.value}"] = sub_key.start_mark.line + 1
    for section, values in data.items():
        if section not in SECTIONS + ("data", "domain"):
            raise ConfigError(f"{path}, line {lines.get(section, '?')}: unknown section {section!r}; "
                              f"valid sections: {', '.join(SECTIONS)}")
        if section in SECTIONS and not isinstance(values, dict):
            raise ConfigError(f"{path}, line {lines.get(section, '?')}: section {section!r} must be a mapping")
    data["_lines"] = lines
    return data


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win, key by key within each section."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


def with_line(exc: ConfigError, lines: dict[str, int], path: Path | None) -> ConfigError:
    """Attach ``file, line N`` to a ConfigError about a key that came from a YAML file."""
    message = str(exc)
    for key, line in lines.items():
        if "." in key and (f"{key}:" in message or f"'{key.split('.', 1)[1]}'" in message):
            return ConfigError(f"{path}, line {line}: {message}")
    return exc
