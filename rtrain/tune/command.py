"""CLI glue: `rtrain tune STUDY.yaml [--variant NAME] [--resume] [--retry-failed] [key=value ...]`.

A study file (has `search_space`) runs one study; an ablations file (has `studies`) runs its studies
and writes the findings report. Overrides are study keys (`max_concurrent_trials=2`,
`scheduler.grace_period=4`, `storage_path=/tmp/x`) or job keys for every trial (`job.train.max_steps=5`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rtrain import console
from rtrain.config.load import ConfigError, load_yaml

log = logging.getLogger("rtrain.tune")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `tune` subcommand's options on `parser`."""
    parser.add_argument(
        "study", help="study YAML (tuning/negatives.yaml) or ablations YAML (tuning/paper_ablations.yaml)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="study overrides, e.g. max_concurrent_trials=2, or job.<key>=value for every trial",
    )
    parser.add_argument("--variant", default=None, help="a variant the file defines, e.g. cluster")
    parser.add_argument(
        "--resume", dest="resume_study", action="store_true", help="continue an interrupted study where it stopped"
    )
    parser.add_argument("--retry-failed", action="store_true", help="with --resume: also rerun trials that failed")


def run(args: argparse.Namespace) -> int:
    """Run the study or ablations; 0 when every trial ran, 1 when any failed, 130 when interrupted."""
    if args.retry_failed and not args.resume_study:
        raise ConfigError("--retry-failed goes with --resume: rtrain tune STUDY --resume --retry-failed")
    if "studies" in load_yaml(args.study):
        from rtrain.tune.ablations import load_ablations
        from rtrain.tune.ablations_run import StudyInterrupted, run_ablations

        ablations = load_ablations(args.study, args.variant, args.overrides)
        try:
            report = run_ablations(ablations, resume=args.resume_study)
        except StudyInterrupted as err:
            log.warning(f"{err}: rtrain tune {args.study} --resume")
            return 130
        console.show(f"report: {report}")
        return 0

    from rtrain.tune.runner import run_study
    from rtrain.tune.study import load_study

    study = load_study(args.study, args.variant, args.overrides)
    outcome = run_study(study, resume=args.resume_study, retry_failed=args.retry_failed)
    table = outcome.table
    shown = [
        table.drop(columns=["run_dir"]).to_string(index=False, max_colwidth=40),
        f"study folder: {outcome.study_dir}",
    ]
    if outcome.best_job is not None:
        shown.append(f"best job: {outcome.best_job}  (rtrain train {outcome.best_job})")
    shown += [f"plot: {plot}" for plot in outcome.plots]
    console.show("\n".join(shown))
    if outcome.interrupted:
        again = " ".join(
            [
                f"rtrain tune {args.study}",
                *([f"--variant {args.variant}"] if args.variant else []),
                *args.overrides,
                "--resume",
            ]
        )
        log.warning(f"interrupted: continue with `{again}`")
        return 130
    failed = int((table["status"] == "failed").sum())
    if failed:
        log.warning(
            f"{failed} trial(s) failed; their errors are in the table and in {Path(outcome.study_dir) / 'trials'}"
        )
    return 1 if failed else 0
