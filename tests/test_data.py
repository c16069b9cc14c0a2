"""Pair files: validation with file:line errors, tokenization and dynamic padding, the Ray Data stream."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rtrain.config import ModelConfig
from rtrain.data.files import PairDataError, validate_pair_files
from rtrain.data.schema import PAIR_SCHEMA, row_problems, rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer, text_hash

from tiny import pair_rows, write_jsonl


def test_valid_files_counted_by_task_and_language(tmp_path: Path) -> None:
    write_jsonl(pair_rows(10, negatives=2, seed=1), tmp_path / "a.jsonl")
    pq.write_table(rows_to_table(pair_rows(6, negatives=3, seed=2, lang="de")), tmp_path / "b.parquet")
    files, stats = validate_pair_files([str(tmp_path)], negatives_per_query=2)
    assert [f.name for f in files] == ["a.jsonl", "b.parquet"]
    assert stats.rows == 16 and stats.by_lang == {"en": 10, "de": 6} and stats.min_negatives == 2


def test_jsonl_problems_name_file_line_and_fix(tmp_path: Path) -> None:
    rows = pair_rows(5, negatives=1)
    rows[1]["query"] = ""
    del rows[2]["task"]
    rows[3]["negatives"] = "not a list"
    lines = [json.dumps(r) for r in rows]
    lines.insert(4, "{broken json")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PairDataError) as err:
        validate_pair_files([str(path)], negatives_per_query=1)
    msg = str(err.value)
    assert f"{path}:2: field 'query' is empty" in msg
    assert f"{path}:3: missing field 'task'" in msg
    assert f"{path}:4: field 'negatives' is str" in msg
    assert f"{path}:5: not valid JSON" in msg
    assert "4 problem(s)" in msg


def test_too_few_negatives_and_duplicate_ids(tmp_path: Path) -> None:
    rows = pair_rows(4, negatives=1)
    rows[3]["id"] = rows[0]["id"]
    path = write_jsonl(rows, tmp_path / "p.jsonl")
    with pytest.raises(PairDataError) as err:
        validate_pair_files([str(path)], negatives_per_query=2)
    msg = str(err.value)
    assert "has 1 negatives but loss.negatives_per_query=2" in msg
    assert "4 row(s) have fewer than loss.negatives_per_query=2" in msg and "lower loss.negatives_per_query" in msg
    assert f"repeats the id at {path}:1" in msg


def test_wrong_formats_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("a,b\n")
    with pytest.raises(PairDataError, match="not a pair file; expected one of"):
        validate_pair_files([str(tmp_path / "pairs.csv")], 0)
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(PairDataError, match="not a readable Parquet file"):
        validate_pair_files([str(tmp_path / "fake.parquet")], 0)
    pq.write_table(pa.table({"query": ["q"]}), tmp_path / "cols.parquet")
    with pytest.raises(PairDataError, match=r"missing column\(s\) \['id', 'positive'"):
        validate_pair_files([str(tmp_path / "cols.parquet")], 0)
    with pytest.raises(PairDataError, match="no such file or folder; check data.train_files"):
        validate_pair_files([str(tmp_path / "nope")], 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairDataError, match="folder holds no"):
        validate_pair_files([str(tmp_path / "empty")], 0)
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(PairDataError, match="the files are empty"):
        validate_pair_files([str(tmp_path / "e.jsonl")], 0)
    stage = tmp_path / "stage"  # a stage's output: pairs plus its manifest.json, which is not data
    write_jsonl(pair_rows(3), stage / "pairs.jsonl")
    (stage / "manifest.json").write_text(json.dumps({"rows": 3}))
    assert validate_pair_files([str(stage)], 0)[1].rows == 3


def test_row_problems_and_schema() -> None:
    row = pair_rows(1)[0]
    assert row_problems(row) == []
    assert row_problems({**row, "extra": 1}) == [f"unknown field(s) ['extra']; allowed: {PAIR_SCHEMA.names}"]
    assert "negatives[0] is ''" in row_problems({**row, "negatives": [""]})[0]


def test_tokenize_and_collate_pad_per_batch(tiny_model: Path) -> None:
    cfg = ModelConfig(name_or_path=str(tiny_model), query_prefix="query: ", query_max_length=8, passage_max_length=16)
    rows = pair_rows(4, negatives=3)
    rows[0]["instruction"] = "find the place"
    tokenizer = PairTokenizer(cfg, negatives_per_query=2)
    table = tokenizer(rows_to_table(rows))
    assert table.column_names == ["q_ids", "p_ids", "n_ids", "p_hash", "n_hash"]
    assert max(len(ids) for ids in table.column("q_ids").to_pylist()) <= 8  # truncated to query_max_length
    assert [len(n) for n in table.column("n_ids").to_pylist()] == [2, 2, 2, 2]  # the first k negatives
    assert table.column("p_hash").to_pylist()[0] == text_hash(rows[0]["positive"])
    decoded = tokenizer.tokenizer.decode(table.column("q_ids").to_pylist()[1], skip_special_tokens=True)
    assert decoded.startswith("query")
    numpy_batch = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    batch = PairCollator(pad_token_id=0, negatives_per_query=2)(numpy_batch)
    widths = [len(ids) for ids in table.column("p_ids").to_pylist()]
    assert batch["p_input_ids"].shape == (4, max(widths))  # padded to this batch's longest, not the max length
    assert batch["n_input_ids"].shape[0] == 8 and batch["n_hash"].shape == (8,)
    assert torch.equal(batch["p_attention_mask"].sum(1), torch.tensor(widths))


def test_ray_dataset_reads_mixed_formats_and_tokenizes(tiny_model: Path, tmp_path: Path, ray_local) -> None:
    from rtrain.config import resolve_job
    from rtrain.data.dataset import build_rank_datasets
    from rtrain.data.layout import plan_mix

    rows = pair_rows(6, negatives=2, seed=4)
    rows[0]["instruction"] = "find the place"
    pq.write_table(rows_to_table(rows), tmp_path / "a.parquet")
    write_jsonl(pair_rows(5, negatives=2, seed=5), tmp_path / "b.jsonl")  # no instruction key at all
    cfg = resolve_job(
        {
            "model": {"name_or_path": str(tiny_model)},
            "data": {"train_files": [str(tmp_path)]},
            "train": {"batch_size_per_worker": 1},
        }
    )
    plan = plan_mix(cfg, world=1, out_dir=tmp_path / "plan")
    out = build_rank_datasets(plan.files, cfg)["train_0"].take_all()
    assert len(out) == 11 and all(len(r["n_ids"]) == 1 for r in out)


def test_binary_lines_and_bad_scores_are_problems_naming_the_line(tmp_path: Path) -> None:
    good = pair_rows(1)[0]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        (json.dumps(good) + "\n").encode()
        + b"\xff\xfe\x00garbage\n"
        + (json.dumps({**good, "id": "b", "pos_score": "high", "neg_scores": [0.1, "x"]}) + "\n").encode()
    )
    with pytest.raises(PairDataError) as err:
        validate_pair_files([str(path)], negatives_per_query=0)
    text = str(err.value)
    assert f"{path}:2: not UTF-8 text" in text and "save the file as UTF-8" in text
    assert f"{path}:3: field 'pos_score' is 'high', expected a number or null" in text
    assert f"{path}:3: field 'neg_scores' is [0.1, 'x'], expected a list of numbers" in text
    assert row_problems({**good, "pos_score": 0.5, "neg_scores": [0.25, 1]}) == []
