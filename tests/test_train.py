"""End to end on 2 Ray Train workers with a 2-layer model: DeepSpeed ZeRO-2 + LoRA, DDP + GradCache with a
worker failure, resume of a crashed run, export to sentence-transformers, W&B offline, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sentence_transformers import SentenceTransformer

from rtrain.checkpoint import LOG_FILE, checkpoint_embedding_model, load_trainer_state
from rtrain.cli import main
from rtrain.config import ConfigError, resolve_job
from rtrain.data.files import PairDataError
from rtrain.train.trainer import train

from tiny import FAKE_WANDB_KEY, job_dict, pair_rows, write_jsonl


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines()]


def logged_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_log(run_dir) if "step" in r]


def all_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "ignore") for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def deepspeed_run(tiny_model: Path, tiny_pairs: Path, tmp_path_factory: pytest.TempPathFactory, ray_local):
    """2 workers, DeepSpeed ZeRO-2, LoRA, 3 epochs, W&B offline, export at the end."""
    storage = tmp_path_factory.mktemp("ds")
    cfg = resolve_job(
        job_dict(
            tiny_model,
            tiny_pairs,
            storage,
            train={"epochs": 3, "learning_rate": 5e-3},
            logging={"wandb": True, "project": "rtrain-tests"},
            model={"query_prefix": "query: ", "passage_prefix": "passage: "},
        )
    )
    return cfg, train(cfg)


def test_deepspeed_lora_run_learns_and_checkpoints(deepspeed_run) -> None:
    cfg, outcome = deepspeed_run
    log = [r for r in read_log(outcome.run_dir) if "step" in r]
    steps_per_epoch = 256 // 2 // 8  # rows // workers // batch
    assert [r["step"] for r in log][-1] == 3 * steps_per_epoch
    last_epoch = [r["loss"] for r in log if r["step"] > 2 * steps_per_epoch]  # a mean: one batch's loss is noisy
    assert sum(last_epoch) / len(last_epoch) < 0.6 * log[0]["loss"], [r["loss"] for r in log]
    assert all(0.0 <= r["data_wait_frac"] <= 1.0 and r["pairs_per_s"] > 0 and r["tokens_per_s"] > 0 for r in log)
    assert load_trainer_state(outcome.checkpoint) == {"step": 48, "batches_done": 48}
    assert (outcome.checkpoint / "adapter" / "adapter_model.safetensors").is_file()
    shards = sorted(p.name for p in (outcome.checkpoint / "deepspeed").glob("*optim_states.pt"))
    assert len(shards) == 2, shards  # one ZeRO shard per worker, merged into one checkpoint folder
    assert outcome.metrics["step"] == 48


def test_export_matches_rtrain_encoder_in_sentence_transformers(deepspeed_run) -> None:
    _, outcome = deepspeed_run
    texts = ["where is the red car of paris", "in oslo there is a blue lamp", "green bird"]
    st = SentenceTransformer(str(outcome.model_dir), device="cpu", local_files_only=True)
    ours = checkpoint_embedding_model(outcome.run_dir, merge=False)  # the unmerged LoRA encoder
    for kind, prompt in (("query", "query"), ("document", "document")):
        a = st.encode(texts, prompt_name=prompt, normalize_embeddings=False)
        b = ours.encode(texts, kind)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() >= 0.9999, cos
    card = (outcome.model_dir / "README.md").read_text()
    assert "LoRA (r=4, alpha=8" in card and "| loss |" in card
    assert (outcome.model_dir / "adapter" / "adapter_config.json").is_file()


def test_wandb_offline_run_and_no_secret_anywhere(deepspeed_run) -> None:
    _, outcome = deepspeed_run
    runs = list((outcome.run_dir / "wandb_files").rglob("offline-run-*"))
    assert len(runs) == 1, runs  # rank 0 only
    assert "data_mix" in all_text(runs[0])  # the realised mix is part of the run's config
    assert FAKE_WANDB_KEY not in all_text(outcome.run_dir)


def test_scaling_model_times_a_trained_run(deepspeed_run, capsys: pytest.CaptureFixture[str]) -> None:
    """`rtrain scaling RUN`: the step time measured in the run's log, extrapolated to more workers."""
    from rtrain.cluster.memory import model_size
    from rtrain.cluster.scaling_model import Network, measured_step

    cfg, outcome = deepspeed_run
    measured = measured_step(outcome.run_dir, cfg, model_size(cfg), Network())
    log = [r for r in read_log(outcome.run_dir) if r.get("pairs_per_s")]
    assert measured.world == 2 and measured.windows == len(log) - 1 >= 2
    steps = sorted(16 / r["pairs_per_s"] * (1 - r["data_wait_frac"]) for r in log[1:])
    assert steps[0] <= measured.step_s <= steps[-1] and 0 < measured.compute_s <= measured.step_s
    assert main(["scaling", str(outcome.run_dir), "--gpus", "1", "2", "16"]) == 0
    out = capsys.readouterr().out
    assert f"median step {1e3 * measured.step_s:.1f} ms over {measured.windows} log windows on 2 worker(s)" in out
    assert "100.0%" in out and "a model, not a measurement" in out


def test_bad_inputs_fail_before_workers_start(tiny_model: Path, tiny_pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist: fix model.name_or_path"):
        train(resolve_job(job_dict(tmp_path / "no-model", tiny_pairs, tmp_path)))
    with pytest.raises(ConfigError, match="cannot fill one optimizer step"):
        train(resolve_job(job_dict(tiny_model, tiny_pairs, tmp_path, train={"batch_size_per_worker": 200})))
    assert not (tmp_path / "run").exists()  # a run that failed its checks leaves no run dir: the rerun is new
    bad_rows = tmp_path / "bad.jsonl"
    bad_rows.write_text(tiny_pairs.read_text().splitlines()[0] + "\n" + '{"query": 3}\n')
    with pytest.raises(PairDataError, match=r"bad\.jsonl:2"):
        train(resolve_job(job_dict(tiny_model, bad_rows, tmp_path)))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="missing-suite.yaml"):
        train(
            resolve_job(
                job_dict(tiny_model, tiny_pairs, tmp_path, eval={"suite": str(tmp_path / "missing-suite.yaml")})
            )
        )
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "x").write_text("other job")
    with pytest.raises(ConfigError, match="already exists: continue it with --resume"):
        train(resolve_job(job_dict(tiny_model, tiny_pairs, tmp_path)))
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2


def test_eval_during_training_scores_the_base_keeps_the_best_and_anchors(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    heldout = write_jsonl(pair_rows(40, negatives=2, seed=7), tmp_path / "heldout.jsonl")
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "tiny", "tasks": [{"kind": "retrieval_pairs", "path": str(heldout)}]}))
    cfg = resolve_job(
        job_dict(
            tiny_model,
            tiny_pairs,
            tmp_path,
            train={
                "backend": "ddp",
                "max_steps": 6,
                "checkpoint_every_steps": 100,
                "learning_rate": 5e-3,
                "log_every_steps": 3,
            },
            loss={"negatives_per_query": 1, "base_anchor": 0.5},
            eval={"suite": str(suite), "every_steps": 3},
            output={"num_checkpoints_to_keep": 1},
        )
    )
    outcome = train(cfg)
    reports = {int(p.name.split("_")[1]) for p in (outcome.run_dir / "eval").glob("step_*")}
    assert reports == {0, 3, 6}  # the base before the first step, every 3 steps and at the end, on rank 0 only
    metrics = json.loads((outcome.checkpoint / "metrics.json").read_text())
    task_keys = [k for k in metrics if k.startswith("eval/")]
    assert len(task_keys) == 1 and metrics["eval_score"] == pytest.approx(metrics[task_keys[0]])
    assert 0.0 < metrics["eval_score"] <= 1.0
    assert outcome.metrics["eval_score"] == pytest.approx(metrics["eval_score"])
    assert len(list(outcome.run_dir.glob("checkpoint_*/trainer_state.json"))) == 1  # the best is kept
    log = read_log(outcome.run_dir)
    evals = {r["step"]: r["eval_score"] for r in log if "eval_score" in r}
    assert set(evals) == {0, 3, 6}
    chosen = outcome.selection
    assert chosen is not None and chosen.base_score == pytest.approx(evals[0])
    assert chosen.score == pytest.approx(max(evals.values()))
    assert chosen.step == load_trainer_state(outcome.checkpoint)["step"]
    anchor = [r["anchor_loss"] for r in log if "anchor_loss" in r]
    assert len(anchor) == 2 and all(a > 0 for a in anchor)  # logged at steps 3 and 6; LoRA moved off the base
    card = (outcome.model_dir / "README.md").read_text()
    assert chosen.describe() in card and "InfoNCE + base anchor (weight 0.5)" in card


def test_eval_config_refuses_zero3() -> None:
    with pytest.raises(ConfigError, match="use deepspeed.zero_stage <= 2"):
        resolve_job(
            {
                "model": {"name_or_path": "m"},
                "data": {"train_files": ["x"]},
                "deepspeed": {"zero_stage": 3},
                "eval": {"suite": "s.yaml"},
            }
        )


def test_export_replaces_only_its_own_folder_and_only_once_the_new_model_is_whole(
    deepspeed_run, tmp_path: Path
) -> None:
    from rtrain.config import ConfigError
    from rtrain.export import export_model

    _, outcome = deepspeed_run
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8 keep")
    with pytest.raises(ConfigError, match="holds files rtrain export did not write"):
        export_model(outcome.run_dir, foreign)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    a_file = tmp_path / "model.txt"
    a_file.write_text("keep")
    with pytest.raises(ConfigError, match="is a file or a symlink"):
        export_model(outcome.run_dir, a_file)
    out = tmp_path / "model"
    export_model(outcome.run_dir, out)
    (out / "stale.bin").write_text("from the first export")
    export_model(outcome.run_dir, out)  # an earlier export is replaced whole
    assert not (out / "stale.bin").exists() and (out / "modules.json").is_file() and (out / ".rtrain-export").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
