"""CLI glue for `rtrain submit` and `rtrain jobs` (registered in rtrain/cli.py).

    rtrain submit jobs/<job>.yaml --address http://HEAD:8265 [key.sub=value ...] [--follow]
    rtrain submit jobs/<job>.yaml --dry-run [overrides]      # the plan; nothing is sent
    rtrain jobs list|status ID|logs ID [--follow]|stop ID|fetch ID --out DIR   [--address URL]

Exit status: 0 on success (a followed job that SUCCEEDED), 1 when a followed job failed or was
stopped, 2 for a bad config, an unreachable cluster or a refused request.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="the cluster's dashboard, e.g. http://127.0.0.1:8265 (default: $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS)",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="send the Ray token over plain http to a host other than this machine (default: refused; use "
        "https:// or an SSH tunnel to 127.0.0.1)",
    )


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `rtrain submit`'s arguments on `parser` (overrides may also follow the options:
    `rtrain.cli.main` collects them)."""
    parser.add_argument("job", help="training job, pipeline or Tune YAML, e.g. jobs/xlmr-base-retrofit-cluster.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, validated here before submission")
    _address(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan (batch, steps, memory) and send nothing")
    parser.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="folder shipped as working_dir (default: .)")
    parser.add_argument(
        "--pip",
        action="append",
        default=[],
        metavar="REQ",
        help="pip requirement or requirements file installed for the job (repeatable)",
    )
    parser.add_argument(
        "--image", default=None, help="container image for the job (Ray image_uri; rtrain installed in it)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="send this variable from your environment to the job (repeatable; none is sent otherwise; Ray keeps "
        "it in the job record)",
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="more working_dir excludes")
    parser.add_argument("--max-file-mb", type=float, default=10.0, help="leave out files above this size (MiB)")
    parser.add_argument(
        "--staging-dir",
        default="/tmp/rtrain-staging",
        help="cluster folder a job with an s3:// / gs:// storage path writes to before upload "
        "(shared storage on multi-node clusters)",
    )
    parser.add_argument("--sync-every", type=float, default=300.0, help="seconds between uploads to a storage URI")
    parser.add_argument("--submission-id", default=None, help="job id to use (default: Ray picks one)")
    parser.add_argument("--entrypoint-num-cpus", type=float, default=None, help="CPUs reserved for the job's driver")
    parser.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node, for the plan's node count")
    parser.add_argument("--variant", default=None, help="a Tune file's variant (rtrain tune --variant)")


def run_submit(args: argparse.Namespace) -> int:
    """`rtrain submit`: validate, plan or submit, optionally follow."""
    from rtrain.cluster import jobs
    from rtrain.cluster.client import connect
    from rtrain.cluster.submit import SubmitOptions, submit_job

    options = SubmitOptions(
        address=args.address,
        project=args.project,
        pip=args.pip,
        image=args.image,
        env=args.env,
        excludes=args.exclude,
        max_file_mb=args.max_file_mb,
        staging_root=args.staging_dir,
        sync_every=args.sync_every,
        submission_id=args.submission_id,
        entrypoint_num_cpus=args.entrypoint_num_cpus,
        gpus_per_node=args.gpus_per_node,
        variant=args.variant,
        dry_run=args.dry_run,
        allow_insecure_http=args.allow_insecure_http,
    )
    submitted = submit_job(args.job, args.overrides, options)
    if submitted is None or not args.follow:
        return 0
    client, _ = connect(submitted.address, args.allow_insecure_http)
    final = jobs.follow(client, submitted.job_id)
    print(f"{submitted.job_id}: {final}")
    return 0 if final == "SUCCEEDED" else 1


def add_jobs_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `rtrain jobs`' actions on `parser`."""
    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="the cluster's submitted jobs, newest first")
    _address(p)
    p = actions.add_parser("status", help="a job's status, Ray's message (why it failed) and its outputs")
    p.add_argument("job_id")
    _address(p)
    p = actions.add_parser("logs", help="a job's logs")
    p.add_argument("job_id")
    p.add_argument("--follow", action="store_true", help="stream until the job ends; exit 1 unless it succeeded")
    _address(p)
    p = actions.add_parser("stop", help="stop a job")
    p.add_argument("job_id")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to end (0: do not wait)")
    _address(p)
    p = actions.add_parser("fetch", help="copy a job's outputs (run dir, or one part of it) here")
    p.add_argument("job_id")
    p.add_argument("--out", type=Path, required=True, help="local folder to copy into")
    p.add_argument("--part", default="", help="sub-folder of the run, e.g. model")
    _address(p)


def run_jobs(args: argparse.Namespace) -> int:
    """`rtrain jobs ACTION`: one SDK call (or a log stream) per action."""
    from rtrain.cluster import jobs
    from rtrain.cluster.client import connect

    client, _ = connect(args.address, args.allow_insecure_http)
    if args.action == "list":
        jobs.list_jobs(client)
    elif args.action == "status":
        jobs.status(client, args.job_id)
    elif args.action == "logs" and args.follow:
        final = jobs.follow(client, args.job_id)
        print(f"{args.job_id}: {final}")
        return 0 if final == "SUCCEEDED" else 1
    elif args.action == "logs":
        jobs.logs(client, args.job_id)
    elif args.action == "stop":
        final = jobs.stop(client, args.job_id, wait_s=args.wait)
        print(f"{args.job_id}: {final}")
    elif args.action == "fetch":
        jobs.fetch(client, args.job_id, args.out, sub=args.part)
    return 0


def add_scaling_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `rtrain scaling`'s arguments on `parser`."""
    from rtrain.cluster.scaling_model import Network

    net = Network()
    parser.add_argument("source", type=Path, help="a trained run dir (its step time is measured) or a job YAML")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides of the job, e.g. loss.cached=true")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 16, 32, 64], help="GPU counts to model")
    parser.add_argument(
        "--step-s", type=float, default=None, help="compute seconds of one worker's step (instead of a run's log)"
    )
    parser.add_argument("--gpus-per-node", type=int, default=net.gpus_per_node)
    parser.add_argument("--intra-node-gb-s", type=float, default=net.intra_node_gb_s, help="NCCL bus GB/s, one node")
    parser.add_argument(
        "--inter-node-gb-s", type=float, default=net.inter_node_gb_s, help="NCCL bus GB/s per GPU across nodes"
    )
    parser.add_argument("--latency-us", type=float, default=1e6 * net.latency_s, help="latency per ring hop (us)")


def run_scaling(args: argparse.Namespace) -> int:
    """`rtrain scaling`: the modelled table, with its inputs and assumptions stated above it."""
    from rich.console import Console
    from rich.table import Table

    from rtrain.cluster.memory import model_size
    from rtrain.cluster.scaling_model import HEADERS, Network, format_rows, load_source, measured_step, model_scaling
    from rtrain.config.load import ConfigError

    if any(n < 1 for n in args.gpus):
        raise ConfigError(f"--gpus {args.gpus}: every GPU count must be >= 1")
    job, run_dir = load_source(args.source, args.overrides)
    if run_dir is None and args.step_s is None:
        raise ConfigError(f"{args.source} is a job file: pass --step-s (one worker's compute seconds per step)")
    net = Network(args.gpus_per_node, args.intra_node_gb_s, args.inter_node_gb_s, args.latency_us * 1e-6)
    size = model_size(job, [args.source.resolve().parent / "configs", Path.cwd() / "jobs" / "configs"])
    console = Console()
    if args.step_s is not None:
        compute_s, where = args.step_s, f"--step-s {args.step_s:g}"
    else:
        measured = measured_step(run_dir, job, size, net)
        compute_s = measured.compute_s
        where = (
            f"{run_dir}: median step {1e3 * measured.step_s:.1f} ms over {measured.windows} log windows on "
            f"{measured.world} worker(s), data waits excluded; compute {1e3 * compute_s:.1f} ms after the modelled "
            "communication"
        )
    table = Table(title=f"rtrain scaling: {job.name} (a model, not a measurement)", caption="times in ms per step")
    for name in HEADERS:
        table.add_column(name, justify="right")
    for cells in format_rows(model_scaling(job, size, compute_s, args.gpus, net)):
        table.add_row(*cells)
    print(f"compute time: {where}")
    print(
        f"assumed network: {net.gpus_per_node} GPUs per node, {net.intra_node_gb_s:g} GB/s inside a node, "
        f"{net.inter_node_gb_s:g} GB/s per GPU across nodes, {1e6 * net.latency_s:g} us per ring hop; "
        "no overlap of communication with compute; per-worker batch fixed"
    )
    console.print(table)
    return 0
