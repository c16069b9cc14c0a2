"""One error path (#15): a user's mistake ends in `rtrain CMD: error: ...`, exit 2, no traceback.

The fuzz tests corrupt a valid job's pair file (JSONL, Parquet), its YAML and its overrides in ways
that are always wrong, run `rtrain train` in-process and check: exit status 2, every printed line
names the file and line (or row, or key), no traceback, and nothing left on disk (the run's storage
folder did not exist before and does not exist after). Data is checked before Ray starts, so an
example costs milliseconds.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtrain
from rtrain.cli import main
from rtrain.errors import UserError, error_line, problems_message

from tiny import job_dict, make_tiny_causal_lm, make_tiny_model, own_lines, pair_rows

FUZZ = settings(  # seeded (the same examples on every run) and writing no example database
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
REQUIRED = ("id", "query", "positive", "task", "query_lang", "doc_lang")  # the pair schema's required strings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


def _project(root: Path, tiny: Path, data: Path) -> tuple[Path, Path]:
    """A job file training `tiny` on `data`, and the storage folder it would write (absent until it runs)."""
    storage = root / "runs"
    job = root / "job.yaml"
    job.write_text(yaml.safe_dump(job_dict(tiny, data, storage)), encoding="utf-8")
    return job, storage


def _fails_cleanly(capfd: pytest.CaptureFixture, argv: list[str], storage: Path, *where: str) -> list[str]:
    """Run `rtrain ARGV`; it must exit 2 with only `rtrain CMD: error:` lines naming `where`, and write nothing."""
    code = main(argv)
    err = capfd.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("full log: ")]
    assert lines and lines[0].startswith(f"rtrain {argv[0]}: error: "), err
    problems = lines[1:] or lines[:1]  # one problem: one line; several: a counted list under the first
    for line in (p for p in problems if not p.strip().startswith("... and ")):
        assert any(w in line for w in where), f"{where} not named in: {line}"
    assert not storage.exists(), f"left behind: {sorted(p.name for p in storage.rglob('*'))}"
    return lines


def test_every_error_class_is_a_user_error() -> None:
    """One base class: every `*Error` rtrain defines derives from UserError, so cli.main handles them all."""
    found = []
    for info in pkgutil.walk_packages(rtrain.__path__, "rtrain."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name and issubclass(cls, Exception) and name.endswith("Error"):
                found.append(cls)
    assert len(found) >= 10
    assert [c.__qualname__ for c in found if not issubclass(c, UserError)] == []


def test_messages_keep_one_line_per_problem() -> None:
    assert problems_message("job.yaml", ["train.lr = 1: unknown key"]) == "job.yaml: train.lr = 1: unknown key"
    many = problems_message("job.yaml", ["a: x", "b: y", "c: z"], limit=2)
    assert many == "job.yaml: 3 problem(s):\n  a: x\n  b: y\n  ... and 1 more"
    assert error_line("mine", UserError(many)).splitlines()[0] == "rtrain mine: error: job.yaml: 3 problem(s):"
    missing = FileNotFoundError(2, "No such file or directory", "/x/y.yaml")
    assert error_line("train", missing) == "rtrain train: error: /x/y.yaml: no such file or folder"


CORRUPTIONS = ("not_utf8", "cut_json", "not_an_object", "wrong_type", "empty", "missing_key")


def _corrupt_line(row: dict, kind: str, key: str, junk: bytes) -> bytes:
    """A JSONL line that is always wrong, in the way `kind` says."""
    if kind == "not_utf8":
        return json.dumps(row).encode()[:-1] + b"\xff" + junk + b"}"
    if kind == "cut_json":
        return json.dumps(row).encode()[:-1]
    if kind == "not_an_object":
        return json.dumps(list(row.values())).encode()
    bad = dict(row)
    if kind == "wrong_type":
        bad[key] = 7
    elif kind == "empty":
        bad[key] = "  "
    else:
        del bad[key]
    return json.dumps(bad).encode()


@FUZZ
@given(
    line=st.integers(min_value=1, max_value=24),
    kind=st.sampled_from(CORRUPTIONS),
    key=st.sampled_from(REQUIRED),
    junk=st.binary(max_size=8).map(lambda b: b.replace(b"\n", b"")),  # one line stays one line
    command=st.sampled_from(("train", "mine")),
)
def test_fuzz_jsonl_rows_fail_naming_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, tiny: Path, capfd: pytest.CaptureFixture, line, kind, key, junk, command
) -> None:
    root = tmp_path_factory.mktemp("jsonl")
    rows = pair_rows(24, negatives=1)
    raw = [json.dumps(r).encode() for r in rows]
    raw[line - 1] = _corrupt_line(rows[line - 1], kind, key, junk)
    data = root / "pairs.jsonl"
    data.write_bytes(b"\n".join(raw) + b"\n")
    job, storage = _project(root, tiny, data)
    if command == "mine":  # the same file mined: refused before the model loads, no output folder made
        storage = root / "mined"
        argv = ["mine", str(data), "--model", str(tiny), "--out", str(storage)]
    else:
        argv = ["train", str(job)]
    _fails_cleanly(capfd, argv, storage, f"{data}:{line}:")


@FUZZ
@given(
    kind=st.sampled_from(("truncate", "drop_column", "int_column", "null_value")),
    cut=st.floats(min_value=0.0, max_value=0.99),
    column=st.sampled_from(REQUIRED),
    row=st.integers(min_value=0, max_value=23),
)
def test_fuzz_parquet_fails_naming_file_and_row(
    tmp_path_factory: pytest.TempPathFactory, tiny: Path, capfd: pytest.CaptureFixture, kind, cut, column, row
) -> None:
    root = tmp_path_factory.mktemp("parquet")
    table = pa.Table.from_pylist(pair_rows(24, negatives=1))
    data = root / "pairs.parquet"
    where = [f"{data}: "]
    if kind == "drop_column":
        table = table.drop_columns([column])
    elif kind == "int_column":
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(range(24)))
    elif kind == "null_value":
        values = table[column].to_pylist()
        values[row] = None
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.string()))
        where = [f"{data} row {row}: "]
    pq.write_table(table, data)
    if kind == "truncate":
        data.write_bytes(data.read_bytes()[: int(cut * data.stat().st_size)])
    job, storage = _project(root, tiny, data)
    _fails_cleanly(capfd, ["train", str(job)], storage, *where)


# Leaves of a valid job with a value of the wrong type for each (what a typo in a value looks like).
WRONG_VALUES = {
    "train.learning_rate": "fast",
    "train.batch_size_per_worker": -3,
    "train.epochs": "two",
    "loss.temperature": [1],
    "loss.negatives_per_query": "one",
    "lora.r": 0,
    "scaling.num_workers": "x",
    "model.query_max_length": {"a": 1},
    "data.train_files": 5,
    "output.name": ["a", "b"],
}


@FUZZ
@given(
    key=st.sampled_from(sorted(WRONG_VALUES)),
    typo=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=10),
    how=st.sampled_from(("value", "unknown_key", "override_value", "override_key")),
)
def test_fuzz_job_yaml_and_overrides_fail_naming_the_key(
    tmp_path_factory: pytest.TempPathFactory, tiny: Path, capfd: pytest.CaptureFixture, key, typo, how
) -> None:
    root = tmp_path_factory.mktemp("yaml")
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pair_rows(24, negatives=1)))
    job, storage = _project(root, tiny, data)
    section, leaf = key.split(".")
    bad_key = f"{section}.{leaf}_{typo}"  # never a real key: no field name has a suffix of letters after its own
    argv = ["train", str(job)]
    if how in ("value", "unknown_key"):
        doc = yaml.safe_load(job.read_text())
        doc[section][f"{leaf}_{typo}" if how == "unknown_key" else leaf] = WRONG_VALUES[key]
        job.write_text(yaml.safe_dump(doc))
    else:
        argv.append(f"{bad_key if how == 'override_key' else key}={json.dumps(WRONG_VALUES[key])}")
    named = bad_key if how.endswith("key") else key
    lines = _fails_cleanly(capfd, argv, storage, f"{named} ")
    assert str(job) in lines[0]


@FUZZ
@given(
    line=st.integers(min_value=1, max_value=8),
    breaker=st.sampled_from(("[unclosed", "key: {a: 1", "\tindented: 1", '"open', "a: b: c", "\xff")),
)
def test_fuzz_broken_yaml_fails_naming_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, tiny: Path, capfd: pytest.CaptureFixture, line, breaker
) -> None:
    root = tmp_path_factory.mktemp("broken")
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pair_rows(24, negatives=1)))
    job, storage = _project(root, tiny, data)
    lines = job.read_text().splitlines()
    lines.insert(min(line, len(lines)), breaker)
    text = "\n".join(lines) + "\n"
    job.write_bytes(text.encode("latin-1") if breaker == "\xff" else text.encode())
    printed = _fails_cleanly(capfd, ["train", str(job)], storage, f"{job}:")
    assert re.match(rf"rtrain train: error: {re.escape(str(job))}:\d+(:\d+)?: ", printed[0]), printed[0]


def test_offline_hub_name_is_refused_before_ray_starts(
    tmp_path: Path, tiny: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#15: with HF_HUB_OFFLINE set, a hub name missing from the local cache fails on the driver, not in workers."""
    started: list[object] = []
    monkeypatch.setattr("rtrain.train.trainer.init_ray", started.append)  # Ray would start here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pair_rows(24, negatives=1)))
    job, storage = _project(tmp_path, tiny, data)
    lines = _fails_cleanly(capfd, ["train", str(job), "model.name_or_path=some-org/some-model"], storage, "some-org")
    assert "HF_HUB_OFFLINE is set" in lines[0] and str(tmp_path / "empty-cache") in lines[0]
    assert started == []


def test_unpadded_on_a_decoder_is_refused_before_ray_starts(
    tmp_path: Path, tiny: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#14: `model.unpadded` on a model without BERT's layout fails on the driver, from its config.json alone."""
    started: list[object] = []
    monkeypatch.setattr("rtrain.train.trainer.init_ray", started.append)
    lm = make_tiny_causal_lm(tmp_path / "lm", ["a tiny corpus for a tiny model"] * 4)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pair_rows(24, negatives=1)))
    job, storage = _project(tmp_path, tiny, data)
    argv = ["train", str(job), f"model.name_or_path={lm}", "model.pooling=last_token", "model.unpadded=true"]
    capfd.readouterr()  # the tiny model's save progress
    lines = _fails_cleanly(capfd, argv, storage, "model.unpadded")
    assert "LlamaModel has no embeddings" in lines[0] and "set model.unpadded=false" in lines[0], lines
    assert started == []


def test_workers_killed_for_memory_end_in_one_line_naming_the_settings(
    tmp_path: Path, tiny: Path, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch too large for the node: Ray's memory monitor kills the workers and `fit` raises; the user gets one
    line with the memory figures and the settings that shrink a worker, not Ray's traceback."""
    import ray.train

    ray_text = (
        "Training failed due to worker errors:\n[Rank 1 Error Snippet]:\nA worker health check failed.\n"
        "6 worker(s) were killed due to the node running low on memory. Memory on the node (IP: 10.0.0.2, ID: "
        "c0d5) was 22.58GB used / 23.54GB limit (0.959229)"
    )

    class KilledTrainer:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def fit(self) -> None:
            raise ray.train.WorkerGroupError(ray_text, {1: RuntimeError("health check failed")})

    monkeypatch.setattr("rtrain.train.trainer.init_ray", lambda cfg: None)
    monkeypatch.setattr("rtrain.train.trainer.build_rank_datasets", lambda *args: {})
    monkeypatch.setattr("rtrain.train.trainer.TorchTrainer", KilledTrainer)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pair_rows(24, negatives=1)))
    job, _ = _project(tmp_path, tiny, data)
    assert main(["train", str(job), "train.batch_size_per_worker=4"]) == 2
    err = own_lines(capfd.readouterr().err)
    errors = [line for line in err.splitlines() if "error" in line]  # rtrain's stage lines come before it
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith(
        "rtrain train: error: Ray killed the training workers: the node ran out of memory (22.58 GB used of "
        "23.54 GB). Shrink a worker's memory: set loss.cached: true (GradCache) with a small loss.mini_batch_size"
    ), err
    assert "train.batch_size_per_worker (now 4;" in errors[0]
    # any other worker failure keeps Ray's own error
    monkeypatch.setattr(
        KilledTrainer, "fit", lambda self: (_ for _ in ()).throw(ray.train.WorkerGroupError("boom", {}))
    )
    with pytest.raises(ray.train.WorkerGroupError):
        main(["train", str(job), "output.name=second"])
