"""`rtrain` command line: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rtrain.config.load import ConfigError, resolve_job
from rtrain.data.files import PairDataError
from rtrain.pipeline.cache import StageError


def _train(args: argparse.Namespace) -> int:
    from rtrain.train.trainer import resume_job, train

    if args.resume:
        cfg = resume_job(args.resume, args.overrides)
        outcome = train(cfg, resume=Path(args.resume).resolve())
    else:
        if not args.job:
            raise ConfigError("rtrain train needs a job file (e.g. jobs/tiny.yaml) or --resume RUN_DIR")
        outcome = train(resolve_job(args.job, args.overrides))
    print(f"run dir: {outcome.run_dir}")
    print(f"checkpoint: {outcome.checkpoint}")
    if outcome.model_dir:
        print(f"model: {outcome.model_dir}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rtrain.config.load import resolve
    from rtrain.pipeline import PipelineConfig, run_pipeline

    run_pipeline(resolve(PipelineConfig, args.pipeline, args.overrides), force=args.force)
    return 0


def _export(args: argparse.Namespace) -> int:
    from rtrain.export import export_model

    print(export_model(Path(args.run_dir), Path(args.out)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a job on Ray Train (a local Ray unless scaling.address is set)")
    p.add_argument("job", nargs="?", help="job YAML, e.g. jobs/tiny.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.max_steps=20")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its latest checkpoint")
    p.set_defaults(func=_train)

    p = sub.add_parser("run", help="run a pipeline (synth -> train -> eval -> export), skipping finished stages")
    p.add_argument("pipeline", help="pipeline YAML, e.g. jobs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", help="overrides, e.g. stages.train.job.train.epochs=2")
    p.add_argument("--force", action="store_true", help="rerun every stage even if it is up to date")
    p.set_defaults(func=_run)

    p = sub.add_parser("export", help="merge a run's latest checkpoint into a sentence-transformers model")
    p.add_argument("run_dir", help="run dir (or one checkpoint folder)")
    p.add_argument("--out", required=True, help="output model folder")
    p.set_defaults(func=_export)

    from rtrain.eval import command as eval_command

    p = sub.add_parser("eval", help="evaluate models on a local eval suite and/or mteb hub tasks")
    eval_command.add_arguments(p)
    p.set_defaults(func=eval_command.run)

    from rtrain.synth import command as synth_command

    p = sub.add_parser("synth", help="write template-based multilingual synthetic pairs")
    synth_command.add_arguments(p)
    p.set_defaults(func=synth_command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "resume", None) and args.job and "=" in args.job:
        args.overrides.insert(0, args.job)  # `rtrain train --resume DIR a.b=c`: the first override lands in `job`
        args.job = None
    try:
        return args.func(args)
    except (ConfigError, PairDataError, StageError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
