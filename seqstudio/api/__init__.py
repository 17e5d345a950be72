"""The Python API: everything the CLI can do, as plain functions (the CLI is a thin layer over these), one module
per verb: ``training`` (train), ``generation`` (generate, interpolate; lines of text through ``text_lines``),
``sample_files`` (write_samples), ``evaluation`` (evaluate: the likelihood, ``sample_judging``,
``condition_checks``, ``text_reading``, on ``held_out`` windows), ``conversion`` (render, convert), ``runs``
(load and what every use of a run shares) and ``configuration`` (resolve_config).

    import seqstudio
    run_dir = seqstudio.train("midi/", backend="seqvae", max_steps=500)
    run = seqstudio.load(run_dir)
    paths = seqstudio.write_samples(run, seqstudio.generate(run, n=4), "out/")
"""

from ..errors import RunDirError
from ..rundir import Run, load_spec
from ..runspec import RunSpec
from .condition_checks import GUIDANCE_CURVE, can_guide, condition_judges, evaluate_conditions, evaluate_guidance
from .configuration import resolve_config
from .conversion import convert_file, render_file
from .evaluation import evaluate
from .generation import Samples, generate, interpolate
from .held_out import judge_reference, labelled_windows, reference_samples
from .likelihood import evaluate_likelihood
from .runs import (MAX_DEFAULT_LENGTH, MAX_LENGTH, conditions_of, decode_tensor, encode_file, file_provenance, load,
                   generation_length, prime_tensor, run_info)
from .sample_files import sample_names, write_conditions, write_sample_files, write_samples
from .sample_judging import compare_samples, evaluate_samples, judge_samples
from .training import capped_validation, record_json, train, warn_unbalanced

__all__ = ["train", "load", "generate", "interpolate", "write_samples", "render_file", "convert_file", "evaluate",
           "evaluate_likelihood", "evaluate_samples", "reference_samples", "compare_samples", "judge_samples",
           "judge_reference", "encode_file", "decode_tensor", "resolve_config", "Run", "RunSpec", "RunDirError",
           "run_info", "evaluate_conditions", "Samples", "evaluate_guidance", "can_guide", "conditions_of",
           "condition_judges", "labelled_windows", "load_spec", "generation_length", "prime_tensor",
           "file_provenance", "sample_names", "write_conditions", "write_sample_files", "record_json",
           "capped_validation", "warn_unbalanced", "GUIDANCE_CURVE", "MAX_LENGTH", "MAX_DEFAULT_LENGTH"]
