"""`rtrain scaling`: the N-GPU step-time model's bytes, ring times and table; its errors (no Ray, no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtrain.cli import main
from rtrain.cluster.memory import ModelSize
from rtrain.cluster.scaling_model import Network, communication_s, model_scaling, ring_seconds, step_volume
from rtrain.config.load import resolve_job

from tiny import job_dict, own_lines

ROOT = Path(__file__).resolve().parents[1]
SIZE = ModelSize("hand", total_params=1_000_000, trainable_params=10_000, hidden_size=64, num_layers=2, num_heads=2)


def _job(tmp_path: Path, **sections):
    return resolve_job(job_dict(tmp_path / "model", tmp_path / "pairs.jsonl", tmp_path, **sections))


def test_volume_counts_every_gathered_text_and_the_trainable_gradients(tmp_path: Path) -> None:
    job = _job(
        tmp_path, train={"batch_size_per_worker": 8, "gradient_accumulation_steps": 3}, loss={"negatives_per_query": 2}
    )
    volume = step_volume(job, SIZE)
    assert volume.embeddings_per_worker == 3 * 8 * (2 + 2) * 64 * 4  # micro-batches x pairs x texts x dim x fp32
    assert volume.gathers_per_step == 3 and volume.gradient_bytes == 10_000 * 4
    cached = step_volume(_job(tmp_path, loss={"cached": True, "mini_batch_size": 4}), SIZE)
    assert cached.gathers_per_step == 1  # GradCache gathers the whole batch's embeddings once
    alone = step_volume(_job(tmp_path, loss={"gather_across_workers": False}), SIZE)
    assert alone.embeddings_per_worker == 0 and alone.gathers_per_step == 0


def test_ring_time_is_zero_alone_and_uses_the_slowest_link_across_nodes() -> None:
    net = Network(gpus_per_node=4, intra_node_gb_s=100.0, inter_node_gb_s=10.0, latency_s=1e-5)
    assert ring_seconds(1e9, 1, net) == 0.0
    assert ring_seconds(1e9, 4, net) == pytest.approx(3 / 4 * 1e9 / 100e9 + 3e-5)
    assert ring_seconds(1e9, 8, net, passes=2) == pytest.approx(2 * (7 / 8 * 1e9 / 10e9 + 7e-5))


def test_efficiency_is_one_on_one_gpu_and_falls_as_workers_are_added(tmp_path: Path) -> None:
    net = Network(gpus_per_node=8)
    job = _job(tmp_path)
    rows = model_scaling(job, SIZE, compute_s=0.01, gpus=[1, 2, 8, 16, 64], net=net)
    assert rows[0].efficiency == 1.0 and rows[0].step_s == 0.01
    assert [r.global_batch for r in rows] == [8 * n for n in (1, 2, 8, 16, 64)]  # 8 pairs per worker
    effs = [r.efficiency for r in rows]
    assert all(a > b for a, b in zip(effs, effs[1:])), effs
    gather, grads = communication_s(step_volume(job, SIZE), 16, net)
    assert rows[3].step_s == pytest.approx(0.01 + gather + grads) and rows[3].nodes == 2


def test_cli_models_a_job_file_and_names_its_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scaling", str(ROOT / "jobs/xlmr-base-retrofit-cluster.yaml"), "--step-s", "0.5", "--gpus", "1", "64"])
    out = capsys.readouterr().out
    assert code == 0
    assert "a model, not a measurement" in out and "assumed network: 8 GPUs per node" in out
    assert "16,384" not in out and "8,192" in out  # 64 workers x 128 pairs, no accumulation
    assert "100.0%" in out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = ROOT / "jobs/xlmr-base-retrofit-cluster.yaml"
    assert main(["scaling", str(job)]) == 2
    assert own_lines(capsys.readouterr().err) == (
        f"rtrain scaling: error: {job} is a job file: pass --step-s (one worker's compute seconds per step)\n"
    )
    assert main(["scaling", str(tmp_path)]) == 2
    assert "no job.yaml; give a run dir" in capsys.readouterr().err
    assert main(["scaling", str(job), "--step-s", "1", "--gpus", "0"]) == 2
    assert "every GPU count must be >= 1" in capsys.readouterr().err
