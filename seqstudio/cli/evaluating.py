"""``seqstudio evaluate``: ``api.evaluate``'s figures, printed (or as one JSON object)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .shell import setup_logging


# -- evaluate ----------------------------------------------------------------------------------------------------------
@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("data_dir", type=click.Path(path_type=Path), required=False)
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the latent samples of the ELBO and for --samples.")
@click.option("--samples", "n_samples", type=click.IntRange(min=0),
              help="Also generate N samples and compare their domain metrics with the held-out split "
                   "(default: 100 for backends without a likelihood, such as lstmgan; otherwise off).")
@click.option("--temperature", "-t", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature for --samples.")
@click.option("--iw-samples", type=click.IntRange(min=1), metavar="K",
              help="Also report `iwae`, the importance-weighted bound on log-likelihood per step with K samples "
                   "(e.g. 100), for backends with per-step latents (vrnn).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate(run_dir, data_dir, split, as_json, checkpoint, device, seed, n_samples, temperature, iw_samples,
             quiet):
    """Held-out figures of RUN_DIR on a split of DATA_DIR (default: the folder it was trained on).

    Reports, per time step in nats: nll (reconstruction loss), kl, elbo (= -(nll + kl)), and accuracy
    (frame accuracy TP/(TP+FP+FN) for piano-rolls, token accuracy for categorical data).

    With --samples N (the default for backends without a likelihood, e.g. lstmgan, which get only this part):
    N generated samples and the split's windows are measured with the domain's metrics (for MIDI: pitch
    range, pitch classes, polyphony, empty beats, groove, repetitions, note density...), and each metric's two
    distributions are compared by their overlapping area (1 = indistinguishable, 0 = disjoint; MGEval).
    `mean_overlap` averages them. Then the sample judge: a classifier trained to tell generated excerpts from
    held-out real ones on the domain's features (for MIDI: 16-beat excerpts, their texture, note lengths,
    onsets in the beat, pitch classes, voice motion, dissonance), its held-out balanced accuracy over 5 folds
    (0.5 = indistinguishable, 1 = every sample gives itself away) beside the same figure for two halves of the
    real data (the floor), and each feature's overlap.

    The figures are also stored in RUN_DIR/evaluation-SPLIT.json (for `seqstudio report`).
    """
    from .. import api

    setup_logging(quiet=as_json or quiet)
    quiet = quiet or as_json
    run = api.load(run_dir, device=device, which=checkpoint)
    likelihood = run.backend.has_likelihood
    result = api.evaluate(run, data_dir, split, samples=n_samples, temperature=temperature, iw_samples=iw_samples,
                          seed=seed, progress=not quiet)  # the figures, and RUN_DIR/evaluation-SPLIT.json
    if as_json:
        click.echo(json.dumps(result))
        return
    if likelihood:
        click.echo(f"{result['backend']} on the {split} split of {result['data']}: {result['files']} files, "
                   f"{result['windows']} windows, {result['steps']} steps")
        for key, value in result.items():
            if isinstance(value, float) and key not in ("mean_overlap", "temperature"):
                click.echo(f"  {key:<12} {value:.4f}")
    if "sample_metrics" in result:
        click.echo(f"{result['backend']}: {result['samples']} samples (temperature {temperature:g}) vs "
                   f"{result['reference_windows']} windows of the {split} split of {result['data']}")
        click.echo(f"  {'metric':<22} {'overlap':>7}   {'generated':>15}   {'held-out':>15}")
        for name, row in result["sample_metrics"].items():
            click.echo(f"  {name:<22} {row['overlap']:>7.3f}   {row['generated_mean']:>7.3f} "
                       f"±{row['generated_std']:<6.3f}   {row['reference_mean']:>7.3f} ±{row['reference_std']:<6.3f}")
        click.echo(f"  {'mean_overlap':<22} {result['mean_overlap']:>7.3f}")
        _echo_judge(result.get("judge") or {})
    for name, row in result.get("conditions", {}).items():
        click.echo(f"  condition {name}: as asked {row['asked']:.3f} (unconditional {row['unconditional']:.3f}, "
                   f"held-out real {row['held_out']:.3f}; {row['samples']} samples)")
    if result.get("guidance"):
        _echo_guidance(result["guidance"])
    if "text" in result:
        _echo_text_figures(result["text"])


def _echo_guidance(curve: dict) -> None:
    """Adherence and the sample judge's accuracy against the guidance scale (``api.evaluate_guidance``)."""
    click.echo(f"  classifier-free guidance, {curve['samples']} samples per scale:")
    click.echo(f"    {'--guidance W':<34}{''.join(f'{w:>8g}' for w in curve['scales'])}")
    for name, shares in curve["adherence"].items():
        click.echo(f"    {name + ' as asked':<34}{''.join(f'{v:>8.3f}' for v in shares)}   "
                   f"(held-out real {curve['held_out'][name]:.3f})")
    click.echo(f"    {'judge accuracy (0.5 = real)':<34}{''.join(f'{v:>8.3f}' for v in curve['judge_accuracy'])}")


def _echo_text_figures(text: dict) -> None:
    if "skipped" in text:
        click.echo(f"  text: not read back: {text['skipped']}")
        return
    click.echo(f"  text, {text['lines']} {text['split']} lines read back by the run's recogniser (character "
               f"error rate; lower is better): real lines {text['real_cer']:.3f}")
    for key, row in text.items():
        if key.startswith("bias_"):
            extra = "".join(f", {k} {v:.3f}" for k, v in row.items() if k.startswith("dtw"))
            click.echo(f"    generated, bias {key[5:]}: {row['cer']:.3f} (against another line's text "
                       f"{row['cer_other_text']:.3f}{extra})")
    if "style_primed" in text:
        row = text["style_primed"]
        click.echo(f"    style-primed ({row['style_file']}), bias {row['bias']:g}: {row['cer']:.3f}")


JUDGE_ROWS = 10  # features shown by `evaluate`: the domain's highlights, then the lowest overlaps (--json: all)


def _echo_judge(verdict: dict) -> None:
    """The sample judge's verdict (``seqstudio.judge``) as a few lines under the metrics table."""
    if not verdict.get("available"):
        click.echo(f"  judge: {verdict.get('reason', 'no judge')}")
        return
    floor = verdict["floor"]
    click.echo(f"  judge ({verdict['unit']}, {verdict['per_side']} generated vs {verdict['per_side']} real, "
               f"{verdict['folds']} folds): a classifier tells them apart with balanced accuracy "
               f"{verdict['accuracy']:.3f} ±{verdict['accuracy_spread']:.3f} (0.5 = indistinguishable; "
               f"real vs real {floor['accuracy']:.3f} ±{floor['accuracy_spread']:.3f})")
    if verdict.get("reason"):
        click.echo(f"  judge: {verdict['reason']}")
    features = verdict["features"]
    shown = list(verdict.get("highlights", []))
    shown += sorted((n for n in features if n not in shown), key=lambda n: features[n].get("overlap", 1.0))
    shown = shown[:max(JUDGE_ROWS, len(verdict.get("highlights", [])))]
    click.echo(f"  {'judge feature':<22} {'overlap':>7} {'floor':>6}   {'generated':>15}   {'real':>15}")
    for name in shown:
        row = features[name]
        click.echo(f"  {name:<22} {row['overlap']:>7.3f} {row['floor_overlap']:>6.3f}   "
                   f"{row['generated_mean']:>7.3f} ±{row['generated_std']:<6.3f}   "
                   f"{row['reference_mean']:>7.3f} ±{row['reference_std']:<6.3f}")
    if len(features) > len(shown):
        click.echo(f"  ({len(features) - len(shown)} more judge features with --json)")
