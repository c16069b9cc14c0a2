"""`rtrain` command line: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from rtrain import console
from rtrain.config.load import ConfigError, resolve_job
from rtrain.errors import USER_ERROR, UserError, error_line


def _train(args: argparse.Namespace) -> int:
    from rtrain.train.trainer import resume_job, train

    if args.resume:
        cfg = resume_job(args.resume, args.overrides)
        outcome = train(cfg, resume=Path(args.resume).resolve())
    else:
        if not args.job:
            raise ConfigError("rtrain train needs a job file (e.g. jobs/tiny.yaml) or --resume RUN_DIR")
        outcome = train(resolve_job(args.job, args.overrides))
    console.show(f"run dir: {outcome.run_dir}")
    console.show(f"checkpoint: {outcome.checkpoint}")
    if outcome.model_dir:
        console.show(f"model: {outcome.model_dir}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rtrain.config.load import resolve
    from rtrain.pipeline import PipelineConfig, run_pipeline

    cfg = resolve(PipelineConfig, args.pipeline, args.overrides)
    console.attach_log(Path(cfg.workdir) / console.LOG_NAME)
    run_pipeline(cfg, force=args.force, until=args.until)
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from rtrain.any_config import resolve_any
    from rtrain.config.describe import describe
    from rtrain.config.load import load_yaml, resolve
    from rtrain.pipeline import PipelineConfig

    data = load_yaml(args.file)
    if "stages" in data:
        config = resolve(PipelineConfig, args.file, args.overrides)
    elif args.overrides and {"search_space", "studies", "tasks", "sources", "backend"} & set(data):
        raise ConfigError(f"{args.file}: overrides apply to a job or a pipeline; edit this file instead")
    else:
        config = resolve_job(args.file, args.overrides) if args.overrides else resolve_any(args.file)
    print(describe(config), end="")
    return 0


def _export(args: argparse.Namespace) -> int:
    from rtrain.export import export_model

    print(export_model(Path(args.run_dir), Path(args.out)))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from rtrain.ledger import audit

    report = audit(Path(args.run_dir))
    print(report.text())
    return 0 if report.ok else 1


# Subcommands living next to their code: name -> (module, help, its add-arguments function, its run function).
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "eval": (
        "rtrain.eval.command",
        "evaluate models on a local eval suite and/or mteb hub tasks",
        "add_arguments",
        "run",
    ),
    "synth": ("rtrain.synth.command", "write template-based multilingual synthetic pairs", "add_arguments", "run"),
    "synth-llm": (
        "rtrain.synth.llm.command",
        "write LLM-generated pairs (E5-style prompts; local model or OpenAI-compatible server)",
        "add_arguments",
        "run",
    ),
    "pairs": (
        "rtrain.pairs.command",
        "turn real corpora (parallel, SQuAD, monolingual, pair files, HF datasets) into pairs",
        "add_arguments",
        "run",
    ),
    "mine": (
        "rtrain.mining.command",
        "mine hard negatives for pair files with any model (faiss, cached embeddings)",
        "add_arguments",
        "run",
    ),
    "tune": (
        "rtrain.tune.command",
        "run a Ray Tune study (a Ray Train run per trial) or the ablations report",
        "add_arguments",
        "run",
    ),
    "submit": (
        "rtrain.cluster.command",
        "validate a job here and submit it to a Ray cluster (Ray Job Submission SDK)",
        "add_submit_arguments",
        "run_submit",
    ),
    "scaling": (
        "rtrain.cluster.command",
        "model step time and scaling efficiency on N GPUs from a measured run (a model, not a measurement)",
        "add_scaling_arguments",
        "run_scaling",
    ),
    "jobs": (
        "rtrain.cluster.command",
        "status, logs [--follow], stop, list and fetch of jobs on a Ray cluster",
        "add_jobs_arguments",
        "run_jobs",
    ),
}


# Commands whose console shows only rtrain's own lines, a progress bar and result tables (the rest: a log file).
QUIET_COMMANDS = ("run", "train", "tune")
VERBOSE_HELP = "show everything on the console (library and Ray worker output), not only rtrain's lines"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtrain", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    from rtrain.config.describe import sections
    from rtrain.config.schema import JobConfig

    p = sub.add_parser(
        "train",
        help="train a job on Ray Train (a local Ray unless scaling.address is set)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"job sections (every key, default and description: rtrain config show JOB):\n{sections(JobConfig)}",
    )
    p.add_argument("job", nargs="?", help="job YAML, e.g. jobs/tiny.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.max_steps=20")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its latest checkpoint")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    p.set_defaults(func=_train)

    p = sub.add_parser("run", help="run a pipeline (synth, pairs, mine, train, eval, export), skipping finished stages")
    p.add_argument("pipeline", help="pipeline YAML, e.g. jobs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", help="overrides, e.g. stages.train.job.train.epochs=2")
    p.add_argument("--force", action="store_true", help="rerun every stage even if it is up to date")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage, e.g. --until mine to make the data only")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    p.set_defaults(func=_run)

    p = sub.add_parser("config", help="show a job or pipeline as validated: every key, its default and description")
    show = p.add_subparsers(dest="action", required=True).add_parser(
        "show", help="print the resolved file as commented YAML (a valid job file for a job)"
    )
    show.add_argument("file", help="job or pipeline YAML (any YAML under jobs/ or tuning/ without overrides)")
    show.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.max_steps=20")
    show.set_defaults(func=_config_show)

    p = sub.add_parser(
        "export",
        help="merge a run's best checkpoint (the latest when it never evaluated) into a sentence-transformers model",
    )
    p.add_argument("run_dir", help="run dir (or one checkpoint folder)")
    p.add_argument("--out", required=True, help="output model folder")
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "audit",
        help="prove from a run's ledger (output.ledger=true) that every planned row was trained on exactly once",
    )
    p.add_argument("run_dir", help="run dir")
    p.set_defaults(func=_audit)

    for name, (module, help_, add, run) in COMMANDS.items():
        command = importlib.import_module(module)
        p = sub.add_parser(
            name, help=help_, description=command.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        getattr(command, add)(p)
        p.set_defaults(func=getattr(command, run))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `rtrain CMD FILE --opt X a.b=c`: argparse leaves overrides that follow options unparsed
    stray = [w for w in extra if w.startswith("-") or "=" not in w or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*(args.overrides or []), *extra]
    if getattr(args, "resume", None) and args.job and "=" in args.job:
        args.overrides.insert(0, args.job)  # `rtrain train --resume DIR a.b=c`: the first override lands in `job`
        args.job = None
    quiet = args.command in QUIET_COMMANDS and not args.verbose
    session = (
        console.QuietConsole(title=f"rtrain {' '.join(sys.argv[1:] if argv is None else argv)}") if quiet else None
    )
    try:
        with session or console.plain_logging():
            code = args.func(args)
    except (UserError, FileNotFoundError) as err:  # a user's mistake: one line per problem, no traceback
        command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(error_line(command, err), file=sys.stderr)
        _point_to_log(session, failed=True)
        return USER_ERROR
    except BaseException:  # Python prints the traceback next; the log holds what led to it
        _point_to_log(session, failed=True)
        raise
    _point_to_log(session, failed=False)
    return code


def _point_to_log(session: console.QuietConsole | None, failed: bool) -> None:
    """Say where a quiet session's log file is (once it has one)."""
    if session is not None and session.log_path is not None:
        hint = " (library and Ray worker output; rerun with -v to see it here)" if failed else ""
        print(f"full log: {session.log_path}{hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
