"""Cluster jobs without a cluster: configs parse with the keys Ray / KubeRay need, entrypoints name valid
job files, recipe plans add up, bad configs never reach the network, secrets never reach output or files."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from rtrain.any_config import resolve_any
from rtrain.cli import main
from rtrain.cluster import jobs as jobs_mod
from rtrain.cluster.memory import GIB, model_size
from rtrain.cluster.package import entrypoint, runtime_env
from rtrain.cluster.plan import build_plan
from rtrain.cluster.spec import prepare_job
from rtrain.cluster.storage import SyncState, sync_tree
from rtrain.cluster.submit import config_dirs
from rtrain.config import ConfigError, resolve_job

from tiny import FAKE_WANDB_KEY, pair_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
RECIPES = {
    "xlmr-base-retrofit-cluster.yaml": {"world": 32, "batch": 4096, "zero": 2, "base": 278_043_648, "nodes": 4},
    "xlmr-large-retrofit-cluster.yaml": {"world": 64, "batch": 8192, "zero": 3, "base": 559_890_432, "nodes": 8},
}
ENTRY = re.compile(r"rtrain\s+(?:train|run|tune|submit)\s+(?:--\S+\s+)*(\S+\.ya?ml)")


def _launcher(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize(
    "name,gpu_types",
    [
        ("aws.yaml", {"p5.48xlarge", "p4d.24xlarge"}),
        ("gcp.yaml", {"a3-highgpu-8g", "a2-highgpu-8g"}),
    ],
)
def test_launcher_configs_follow_rays_schema(name: str, gpu_types: set[str]) -> None:
    import jsonschema
    import ray.autoscaler

    config = _launcher(name)
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)  # exactly what `ray up` checks first
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # a CPU head that takes no training work
    workers = {k: v for k, v in types.items() if k != config["head_node_type"]}
    machine = {
        k: v["node_config"].get("InstanceType") or v["node_config"].get("machineType") for k, v in workers.items()
    }
    assert set(machine.values()) == gpu_types  # 8 x H100 and 8 x A100 per node
    assert all(
        v["min_workers"] == 0 < v["max_workers"] <= config["max_workers"] for v in workers.values()
    )  # autoscaling
    assert config["file_mounts"]["/home/ray/rtrain"] == "."
    setup = "\n".join(config["setup_commands"])
    assert "pip install -q -e /home/ray/rtrain" in setup and "deepspeed" in setup and "torch" in setup
    assert any("/mnt/shared" in c for c in config["initialization_commands"])  # shared storage on every node
    assert "-v /mnt/shared:/mnt/shared" in config["docker"]["run_options"]
    assert any("ray start --head" in c and "RAY_AUTH_MODE=token" in c for c in config["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])


def _ray_cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for path in sorted((CLUSTER / "kuberay").glob("*.yaml")):
        for doc in _docs(path):
            if doc["kind"] == "RayCluster":
                specs.append((path.name, doc["spec"]))
            elif doc["kind"] == "RayJob":
                specs.append((path.name, doc["spec"]["rayClusterSpec"]))
    return specs


def test_kuberay_manifests_have_what_kuberay_needs() -> None:
    import ray

    kinds = {doc["kind"]: doc for path in (CLUSTER / "kuberay").glob("*.yaml") for doc in _docs(path)}
    assert set(kinds) == {"RayCluster", "RayJob", "PersistentVolumeClaim"}
    pvc = kinds["PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod mounts the same checkpoints
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-py311-gpu" in dockerfile
    for doc in (kinds["RayCluster"], kinds["RayJob"]):
        assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
    specs = _ray_cluster_specs()
    assert len(specs) == 2
    for name, spec in specs:
        assert spec["rayVersion"] == ray.__version__, name
        assert spec["authOptions"] == {"mode": "token"}, name
        pods = [spec["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in spec["workerGroupSpecs"]]
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
        for pod in pods:
            claims = {
                v["name"]: v["persistentVolumeClaim"]["claimName"]
                for v in pod["volumes"]
                if "persistentVolumeClaim" in v
            }
            assert claims == {"shared": pvc["metadata"]["name"]}, name
            container = pod["containers"][0]
            assert {"name": "shared", "mountPath": "/mnt/shared"} in container["volumeMounts"], name
            assert container["image"].endswith(f":{ray.__version__}-py311-gpu")
        for group in spec["workerGroupSpecs"]:
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
            res = group["template"]["spec"]["containers"][0]["resources"]
            assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "8", name
    job = kinds["RayJob"]["spec"]
    assert job["entrypoint"].startswith("rtrain train jobs/") and job["shutdownAfterJobFinishes"] is True
    assert yaml.safe_load(job["runtimeEnvYAML"]) == {"working_dir": "/workspace/rtrain"}


def test_every_entrypoint_names_a_valid_job_file() -> None:
    found: list[str] = []
    for path in sorted(p for p in CLUSTER.rglob("*") if p.is_file()):
        found += [m.group(1) for m in ENTRY.finditer(path.read_text())]
    for ref in found:
        rel = re.sub(r"^/(workspace|home/ray)/rtrain/", "", ref)
        if "<" in rel:
            continue  # a usage pattern such as jobs/<job>.yaml
        assert (ROOT / rel).is_file(), f"{ref} (named in cluster/) does not exist"
        resolve_any(ROOT / rel)
    assert "jobs/xlmr-base-retrofit-cluster.yaml" in found  # the RayJob's and the launcher docs' job


def test_local_sh_stops_only_what_it_started(tmp_path: Path) -> None:
    script = CLUSTER / "local.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    code = [line.split("#", 1)[0] for line in script.read_text().splitlines()]
    assert not any(re.search(r"\bray stop\b", line) for line in code), "never `ray stop`: it kills every Ray here"
    text = "\n".join(code)
    assert 'ray start "$@"' in text and "--head" in text and '--address="127.0.0.1:$PORT"' in text
    assert "setsid" in text and '--temp-dir="$DIR"' in text
    env = {**os.environ, "RTRAIN_LOCAL_DIR": str(tmp_path / "nothing-here")}
    down = subprocess.run(["bash", str(script), "down"], env=env, capture_output=True, text=True)
    assert down.returncode != 0 and "nothing to stop" in down.stderr
    usage = subprocess.run(["bash", str(script), "sideways"], capture_output=True, text=True)
    assert usage.returncode != 0 and "up|down|status" in usage.stderr


def test_local_sh_never_runs_its_state_file_nor_deletes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    script = CLUSTER / "local.sh"
    text = "\n".join(line.split("#", 1)[0] for line in script.read_text().splitlines())
    assert "--node-ip-address=127.0.0.1" in text and "source " not in text
    # a state file holding code is refused, and the code never runs
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    pwned = tmp_path / "pwned"
    (state_dir / "rtrain-local.env").write_text(f"HEAD_PGID=$(touch {pwned})\n")
    env = {**os.environ, "RTRAIN_LOCAL_DIR": str(state_dir)}
    down = subprocess.run(["bash", str(script), "down"], env=env, capture_output=True, text=True)
    assert down.returncode != 0 and "is not a process group id" in down.stderr and not pwned.exists()
    # a folder of the user's: `up` refuses it when it holds other files, `down` never deletes it
    home = tmp_path / "mine"
    home.mkdir()
    (home / "thesis.tex").write_text("keep")
    env = {**os.environ, "RTRAIN_LOCAL_DIR": str(home), "RTRAIN_LOCAL_PORT": "46999"}
    up = subprocess.run(["bash", str(script), "up"], env=env, capture_output=True, text=True)
    assert up.returncode != 0 and "holds files 'up' did not write" in up.stderr
    (home / "rtrain-local.env").write_text("HEAD_PGID=999999\nWORKER_PGID=999998\n")
    down = subprocess.run(["bash", str(script), "down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert (home / "thesis.tex").read_text() == "keep" and not (home / "rtrain-local.env").exists()
    link = tmp_path / "link"
    link.symlink_to(home)
    up = subprocess.run(
        ["bash", str(script), "up"], env={**env, "RTRAIN_LOCAL_DIR": str(link)}, text=True, capture_output=True
    )
    assert up.returncode != 0 and "is a symlink" in up.stderr


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_plans(recipe: str) -> None:
    want = RECIPES[recipe]
    spec = prepare_job(ROOT / "jobs" / recipe)
    job = spec.train_job
    plan = build_plan(job, config_dirs(spec, ROOT))
    assert plan.memory_error is None and plan.model is not None and plan.memory is not None
    assert (plan.world_size, plan.global_batch, plan.nodes, plan.accumulation) == (
        want["world"],
        want["batch"],
        want["nodes"],
        1,
    )
    assert plan.steps == job.train.max_steps and job.scaling.use_gpu and job.loss.cached
    k = job.loss.negatives_per_query
    assert k >= 3 and plan.candidates_per_query == want["batch"] * (1 + k)
    assert plan.tokens_per_step == want["batch"] * (job.model.query_max_length + (1 + k) * job.model.passage_max_length)
    m = plan.model
    hidden, inter, layers = m.hidden_size, 4 * m.hidden_size, m.num_layers
    lora = layers * job.lora.r * (4 * 2 * hidden + 2 * (hidden + inter))  # q, k, v, attn-out + MLP in and out
    assert m.trainable_params == lora and m.total_params == want["base"] + lora
    mem = plan.memory
    assert mem.precision == "bf16" and mem.sharding == f"ZeRO-{want['zero']} over {want['world']} workers"
    expected_weights = m.total_params * 2 // (want["world"] if want["zero"] == 3 else 1)
    assert mem.weights == expected_weights
    assert mem.optimizer == m.trainable_params * 12 // want["world"]  # fp32 master + Adam m, v, sharded
    assert 1 * GIB < mem.total < 40 * GIB  # fits an 80 GB H100 (and a 40 GB A100) with room to spare


def test_dry_run_prints_the_plan_and_touches_no_network(no_network: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["submit", str(ROOT / "jobs" / "xlmr-base-retrofit-cluster.yaml"), "--dry-run", "train.max_steps=10"])
    out = capsys.readouterr().out
    assert code == 0
    for line in (
        "world size          32 workers (GPU, 6 CPU each), 4 node(s) at 8 GPUs",
        "global batch        4096 pairs per optimizer step",
        "steps               10 (train.max_steps)",
        "memory per GPU      ~",
        "ZeRO-2 over 32 workers",
        "python -m rtrain.cli train .rtrain/train.yaml",
    ):
        assert line in out, line


def _job(tmp_path: Path, **output: Any) -> Path:
    job = {
        "name": "t",
        "model": {"name_or_path": "m"},
        "data": {"train_files": ["/data/pairs.jsonl"]},
        "output": {"storage_path": str(tmp_path / "runs"), **output},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_bad_config_is_refused_before_any_connection(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr("rtrain.cluster.submit.connect", lambda address, *_: calls.append(address))
    job = _job(tmp_path)
    assert main(["submit", str(job), "--address", "http://10.0.0.9:8265", "train.lr=3", "loss.temperature=-1"]) == 2
    err = capsys.readouterr().err
    assert "train.lr = 3: unknown key" in err and "loss.temperature = -1" in err and "2 problem(s)" in err
    assert main(["submit", str(_job(tmp_path, storage_path="runs")), "--address", "http://10.0.0.9:8265"]) == 2
    assert "output.storage_path='runs' is relative" in capsys.readouterr().err
    assert main(["submit", str(ROOT / "jobs" / "suites" / "quick.yaml"), "--address", "http://10.0.0.9:8265"]) == 2
    assert "not something to run on a cluster" in capsys.readouterr().err
    assert calls == []


def test_dry_run_checks_local_data_as_train_would(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """#15: --dry-run (and submit) validate every row of data on this machine; cluster-only paths are named."""
    monkeypatch.chdir(tmp_path)  # the project: relative data paths travel with it
    rows = pair_rows(12, negatives=1)
    write_jsonl(rows, tmp_path / "data" / "pairs.jsonl")
    job = yaml.safe_load(_job(tmp_path).read_text())
    job["data"] = {"train_files": ["data/pairs.jsonl"]}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    assert main(["submit", "job.yaml", "--dry-run"]) == 0
    assert re.search(
        r"^data +12 rows usable of 12 read from 1 path\(s\), every row validated here$",
        (capsys.readouterr().out),
        re.MULTILINE,
    )
    rows[4]["positive"] = ""
    write_jsonl(rows, tmp_path / "data" / "pairs.jsonl")
    assert main(["submit", "job.yaml", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("rtrain submit: error: data/pairs.jsonl:5: field 'positive' is empty")
    assert main(["submit", "job.yaml", "--dry-run", "data.train_files=[data/nope.jsonl]"]) == 2
    assert "data files ['data/nope.jsonl'] do not exist under" in capsys.readouterr().err
    assert main(["submit", "job.yaml", "--dry-run", "data.train_files=[/cluster/only.jsonl]"]) == 0
    assert "not checked here: /cluster/only.jsonl not on this machine" in capsys.readouterr().out


def test_unreachable_address_is_named_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    assert main(["jobs", "list", "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{port}" in err and "cluster/local.sh up" in err and "ssh -L 8265:127.0.0.1:8265" in err


class FakeClient:
    """Records submit_job and keeps a copy of the working_dir it was handed (deleted after submission)."""

    def __init__(self, snapshot: Path) -> None:
        self.snapshot, self.kwargs = snapshot, {}

    def submit_job(self, **kwargs: Any) -> str:
        import shutil

        self.kwargs = kwargs
        if "working_dir" in kwargs["runtime_env"]:
            shutil.copytree(kwargs["runtime_env"]["working_dir"], self.snapshot)
        return "raysubmit_fake"


def test_submission_ships_the_validated_config_and_never_the_secrets(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    for rel, size in (
        (".git/config", 10),
        ("runs/old/ckpt.bin", 10),
        ("src/__pycache__/x.pyc", 10),
        ("notes.txt", 10),
        ("big.bin", 3 * 1024**2),
        ("data/pairs.parquet", 10),
        ("src/keep.py", 10),
        (".env", 10),  # credential files never travel, though no ignore file names them
        (".netrc", 10),
        (".ssh/id_rsa", 10),
        (".aws/credentials", 10),
        ("deploy/server.pem", 10),
        ("src/id_ed25519", 10),
    ):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(b"x" * size)
    (project / ".gitignore").write_text("data/\n*.log\n")
    job = _job(project, name="fixed")
    fake = FakeClient(tmp_path / "shipped")
    monkeypatch.setattr("rtrain.cluster.submit.connect", lambda address, *_: (fake, "http://fake:8265"))
    monkeypatch.setenv("RTRAIN_OTHER_SECRET", "other-secret-value-123")
    code = main(
        [
            "submit",
            str(job),
            "--project",
            str(project),
            "--env",
            "RTRAIN_OTHER_SECRET",
            "--max-file-mb",
            "1",
            "--address",
            "http://fake:8265",
            "train.max_steps=7",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    env = fake.kwargs["runtime_env"]
    assert env["env_vars"] == {"RTRAIN_OTHER_SECRET": "other-secret-value-123"}  # only what --env names
    assert fake.kwargs["entrypoint"] == "python -m rtrain.cli train .rtrain/train.yaml"
    assert fake.kwargs["metadata"]["rtrain_outputs"] == str(project / "runs" / "fixed")
    shipped = fake.snapshot
    assert resolve_job(shipped / ".rtrain" / "train.yaml") == resolve_job(job, ["train.max_steps=7"])
    assert (shipped / "notes.txt").is_file() and (shipped / "rtrain" / "cli.py").is_file()  # rtrain travels along
    assert (shipped / "src" / "keep.py").is_file()
    for left_out in (
        ".git",
        "runs",
        "src/__pycache__",
        "big.bin",
        "data",
        ".gitignore",
        ".env",
        ".netrc",
        ".ssh",
        ".aws",
        "deploy/server.pem",
        "src/id_ed25519",
    ):
        assert not (shipped / left_out).exists(), left_out
    assert "big.bin (3.0 MiB)" in captured.out and "submitted raysubmit_fake" in captured.out
    assert "env passed through (values not shown): RTRAIN_OTHER_SECRET" in captured.out
    assert "note: WANDB_API_KEY is set here but not sent" in captured.out
    for secret in (FAKE_WANDB_KEY, "other-secret-value-123"):
        assert secret not in captured.out + captured.err
        assert not [p for p in shipped.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert main(["submit", str(job), "--env", "RTRAIN_UNSET_VAR", "--address", "http://fake:8265"]) == 2
    assert "RTRAIN_UNSET_VAR: not set in your environment" in capsys.readouterr().err


def test_job_status_and_logs_hide_secret_values(capsys: pytest.CaptureFixture[str]) -> None:
    from ray.job_submission import JobStatus

    info = SimpleNamespace(
        status=JobStatus.FAILED,
        message=f"failed; last logs: key={FAKE_WANDB_KEY}",
        entrypoint="python -m rtrain.cli train x",
        start_time=1_700_000_000_000,
        end_time=1_700_000_100_000,
        driver_exit_code=2,
        runtime_env={"working_dir": "gcs://_ray_pkg_x.zip", "env_vars": {"WANDB_API_KEY": FAKE_WANDB_KEY}},
        metadata={"rtrain_outputs": "/mnt/shared/rtrain/runs/x"},
    )
    client = SimpleNamespace(
        get_job_info=lambda job_id: info, get_job_logs=lambda job_id: f"wandb key {FAKE_WANDB_KEY}\n"
    )
    assert jobs_mod.status(client, "raysubmit_x") == "FAILED"
    jobs_mod.logs(client, "raysubmit_x")
    out = capsys.readouterr().out
    assert FAKE_WANDB_KEY not in out and "env_vars: WANDB_API_KEY (values hidden)" in out
    assert "wandb key ****" in out and "/mnt/shared/rtrain/runs/x" in out and re.search(r"exit code\s+2", out)


def test_jobs_list_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    from ray.job_submission import JobStatus

    states = iter([JobStatus.RUNNING, JobStatus.STOPPED])
    rows = [
        SimpleNamespace(
            submission_id="raysubmit_old",
            status=JobStatus.SUCCEEDED,
            start_time=1_700_000_000_000,
            metadata={"rtrain_kind": "train", "rtrain_job": "jobs/a.yaml", "rtrain_outputs": "/mnt/shared/a"},
        ),
        SimpleNamespace(submission_id=None, status=JobStatus.SUCCEEDED, start_time=1_700_000_500_000, metadata=None),
        SimpleNamespace(
            submission_id="raysubmit_new", status=JobStatus.RUNNING, start_time=1_700_000_900_000, metadata={}
        ),
    ]
    client = SimpleNamespace(
        list_jobs=lambda: rows, stop_job=lambda job_id: True, get_job_status=lambda job_id: next(states)
    )
    assert jobs_mod.list_jobs(client) == 2  # drivers started without the Jobs API are not listed
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "ID", "STATUS", "STARTED", "KIND", "JOB", "FILE", "OUTPUTS"]
    assert lines[1].startswith("raysubmit_new") and "jobs/a.yaml" in lines[2] and "/mnt/shared/a" in lines[2]
    assert jobs_mod.stop(client, "raysubmit_new", wait_s=5) == "STOPPED"
    assert "raysubmit_new: stop requested" in capsys.readouterr().out


def test_uri_storage_uploads_from_inside_the_job(tmp_path: Path) -> None:
    bucket = f"file://{tmp_path}/bucket"
    spec = prepare_job(
        _job(tmp_path, name="r1"), [f"output.storage_path={bucket}/runs"], staging_root=str(tmp_path / "stage")
    )
    assert spec.outputs == f"{bucket}/runs/r1" and spec.staging == f"{tmp_path}/stage/r1"
    assert spec.train_job.output.storage_path == str(tmp_path / "stage")  # the job writes to staging on the cluster
    entry = shlex.split(entrypoint(spec, ".rtrain/train.yaml", sync_every=0.2))
    assert entry[:3] == ["python", "-m", "rtrain.cluster.entry"] and entry[-5:] == [
        "python",
        "-m",
        "rtrain.cli",
        "train",
        ".rtrain/train.yaml",
    ]
    assert entry[entry.index("--sync-to") + 1] == spec.outputs
    # Run the wrapper around a stand-in command that writes a run, then fails: the upload still happens.
    writer = (
        f"import pathlib,sys; d=pathlib.Path({spec.staging!r}); (d/'checkpoint_1').mkdir(parents=True);"
        "(d/'checkpoint_1'/'state.json').write_text('{}'); (d/'train_log.jsonl').write_text('x'); sys.exit(3)"
    )
    cmd = [
        sys.executable,
        "-m",
        "rtrain.cluster.entry",
        "--sync-from",
        spec.staging,
        "--sync-to",
        spec.outputs,
        "--sync-every",
        "0.2",
        "--",
        sys.executable,
        "-c",
        writer,
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    uploaded = tmp_path / "bucket" / "runs" / "r1"
    assert (uploaded / "checkpoint_1" / "state.json").is_file() and (uploaded / "train_log.jsonl").read_text() == "x"


def test_image_jobs_carry_the_config_in_the_entrypoint(tmp_path: Path) -> None:
    spec = prepare_job(_job(tmp_path, name="img"))
    entry = shlex.split(entrypoint(spec, ".rtrain/train.yaml", inline=True))
    config = base64.urlsafe_b64decode(entry[entry.index("--config-b64") + 1]).decode()
    assert resolve_job(yaml.safe_load(config)) == spec.train_job and entry[-1] == "{config}"
    env = runtime_env(None, {"WANDB_API_KEY": "k"}, image="registry/rtrain:1")
    assert env == {"image_uri": "registry/rtrain:1", "env_vars": {"WANDB_API_KEY": "k"}}
    with pytest.raises(ConfigError, match="--image and --pip cannot be combined"):
        runtime_env(None, {}, pip=["x"], image="registry/rtrain:1")
    # The wrapper writes the config and substitutes its path.
    show = [
        sys.executable,
        "-m",
        "rtrain.cluster.entry",
        *entry[3 : entry.index("--") + 1],
        sys.executable,
        "-c",
        "import sys; print(open(sys.argv[1]).read())",
        "{config}",
    ]
    done = subprocess.run(show, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and yaml.safe_load(done.stdout)["output"]["name"] == "img"


def test_pipelines_submit_as_rtrain_run(tmp_path: Path) -> None:
    spec = prepare_job(ROOT / "jobs" / "quickstart.yaml", [f"workdir={tmp_path}/qs"])
    assert spec.kind == "run" and spec.outputs == f"{tmp_path}/qs" and spec.train_job is not None
    assert entrypoint(spec, ".rtrain/run.yaml") == "python -m rtrain.cli run .rtrain/run.yaml"
    with pytest.raises(ConfigError, match="workdir='runs/quickstart' is relative"):
        prepare_job(ROOT / "jobs" / "quickstart.yaml")


def test_tune_studies_ship_as_they_are_with_their_overrides(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    (project / "tuning").mkdir(parents=True)
    job = yaml.safe_load(_job(tmp_path, name="base").read_text())
    job["eval"] = {"suite": str(tmp_path / "suite.yaml"), "every_steps": 2}
    (project / "tuning" / "base.yaml").write_text(yaml.safe_dump(job))
    study = {
        "name": "lr",
        "base_job": "base.yaml",
        "storage_path": str(tmp_path / "tune"),  # base job next to it
        "search_space": {"train.learning_rate": {"grid": [1e-3, 5e-3]}},
    }
    (project / "tuning" / "lr.yaml").write_text(yaml.safe_dump(study))
    fake = FakeClient(tmp_path / "shipped")
    monkeypatch.setattr("rtrain.cluster.submit.connect", lambda address, *_: (fake, "http://fake:8265"))
    monkeypatch.chdir(project)
    assert main(["submit", "tuning/lr.yaml", "--address", "http://fake:8265", "max_concurrent_trials=1"]) == 0
    assert fake.kwargs["entrypoint"] == "python -m rtrain.cli tune tuning/lr.yaml max_concurrent_trials=1"
    assert (fake.snapshot / "tuning" / "base.yaml").is_file() and not (fake.snapshot / ".rtrain").exists()
    assert fake.kwargs["metadata"]["rtrain_outputs"] == str(tmp_path / "tune")
    capsys.readouterr()
    assert main(["submit", "tuning/lr.yaml", "--dry-run", "max_concurrent_trials=0"]) == 2
    assert "max_concurrent_trials" in capsys.readouterr().err
    assert main(["submit", "tuning/lr.yaml", "--dry-run", "storage_path=runs/tune"]) == 2
    assert "storage_path='runs/tune' is relative" in capsys.readouterr().err
    assert main(["submit", "tuning/lr.yaml", "--dry-run"]) == 0
    assert "the plan is the study's base job" in capsys.readouterr().out


def test_sync_is_incremental_and_model_configs_need_no_weights(tmp_path: Path) -> None:
    src = tmp_path / "run"
    (src / "a").mkdir(parents=True)
    (src / "a" / "f.txt").write_text("1")
    state = SyncState()
    uri = f"file://{tmp_path}/dest"
    assert sync_tree(src, uri, state) == 1 and sync_tree(src, uri, state) == 0
    (src / "g.txt").write_text("2")
    assert sync_tree(src, uri, state) == 1 and (tmp_path / "dest" / "g.txt").read_text() == "2"
    job = resolve_job({"model": {"name_or_path": "FacebookAI/xlm-roberta-base"}, "data": {"train_files": ["x"]}})
    with pytest.raises(ConfigError, match="no config.json here"):
        model_size(job, [tmp_path])  # not local, not cached, not shipped there: a clear error, no download
    assert model_size(job, [ROOT / "jobs" / "configs"]).total_params > 278e6


def test_a_token_never_travels_over_plain_http_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtrain.cluster.client import ClusterError, check_transport, connect, resolve_address

    token = {"Authorization": "Bearer t"}
    with pytest.raises(ClusterError, match="plain http would send your Ray token in clear text to head.example"):
        check_transport(resolve_address("head.example:8265"), token)  # a bare address becomes http://
    check_transport("https://head.example:8265", token)
    check_transport("http://127.0.0.1:8265", token)
    check_transport("http://head.example:8265", {})  # no token, nothing to leak
    check_transport("http://head.example:8265", token, allow_insecure_http=True)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret-token-value")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ClusterError, match="--allow-insecure-http"):
        connect("http://10.1.2.3:8265")
