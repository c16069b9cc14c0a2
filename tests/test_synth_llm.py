"""rtrain.synth.llm: E5-style LLM generation through a tiny in-process causal LM and a fake OpenAI server."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from transformers import LogitsProcessor

from rtrain.cli import main as cli_main
from rtrain.config.load import ConfigError, resolve
from rtrain.data.files import validate_pair_files
from rtrain.data.schema import row_problems
from rtrain.synth.llm import BackendError, LLMSynthConfig, generate_llm, make_backend
from rtrain.synth.llm.generate import DUPLICATE, NO_TASKS
from rtrain.synth.llm.parse import (
    MISSING_KEYS,
    NO_JSON,
    NOT_LIST,
    NOT_TEXT,
    SAME_TEXT,
    InvalidOutput,
    parse_example,
    parse_tasks,
)
from rtrain.synth.llm.prompts import (
    PROMPTS_FILE,
    PromptError,
    load_prompts,
    placeholders,
    render_brainstorm,
    render_example,
)

from tiny import make_tiny_causal_lm

KEY_ENV = "RTRAIN_TEST_LLM_KEY"
SECRET = "test-secret-7f3a9c1e5b"  # must reach the server's Authorization header and nothing else
CHAT = "{% for m in messages %}### {{ m['role'] }}:\n{{ m['content'] }}\n{% endfor %}### assistant:\n"

# A prompt file with plain markers, so the fake server and the forced LM can read prompts reliably.
TEST_PROMPTS = {
    "version": 1,
    "task_types": {
        "ask": {
            "schema_task": "qa",
            "summary": "question -> answer",
            "brainstorm": "BRAINSTORM $num_tasks question tasks. Reply with a JSON list.",
            "example": "EXAMPLE type=ask lang=$language color=$color task=$task",
            "slots": {"color": ["red", "green", "blue"]},
        },
        "same": {
            "schema_task": "sts",
            "summary": "similar texts",
            "fixed_tasks": ["Retrieve similar text."],
            "example": "EXAMPLE type=same lang=$language task=$task",
        },
        "pairs": {
            "schema_task": "bitext",
            "summary": "translations",
            "bilingual": True,
            "fixed_tasks": ["Retrieve the translation."],
            "example": "EXAMPLE type=pairs lang=$language target=$target_language task=$task",
        },
    },
}
BRAINSTORMED = ["Given a city, find its museums.", "Given a dish, find recipes."]


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump(TEST_PROMPTS))
    return path


def valid_reply(kind: str, lang: str, tag: str) -> str:
    body = {
        "user_query": f"q {kind} {lang} {tag}",
        "positive_document": f"p {tag} ü",
        "hard_negative_document": f"n {tag}",
    }
    return f"Here it is:\n```json\n{json.dumps(body, ensure_ascii=False)}\n```\nAnything else?"


class FakeOpenAI:
    """OpenAI-compatible /v1/chat/completions on loopback, answering by the markers in the prompt.

    First request: HTTP 500 once. BRAINSTORM: a task list in prose. German: always invalid (the
    reason depends on the task type). French: the first `french_faults` example requests get broken
    JSON. English `same`: one constant reply (duplicates). Else a valid reply unique per (prompt, seed).
    """

    def __init__(self, french_faults: int = 2, status: int | None = None, all_invalid: bool = False) -> None:
        self.french_faults = french_faults
        self.status = status
        self.all_invalid = all_invalid
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.failed_once = False
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.requests.append(body)
            if not self.failed_once:
                self.failed_once = True
                return 500, {"error": "warming up"}
            if self.status is not None:
                return self.status, {"error": {"message": "model 'nope' does not exist"}}
            french_fault = "lang=French" in prompt and self.french_faults > 0
            self.french_faults -= int(french_fault)
        kind = re.search(r"type=(\w+)", prompt)
        lang = re.search(r"lang=(\w+)", prompt)
        if prompt.startswith("BRAINSTORM"):
            text = f"Sure! Tasks:\n{json.dumps(BRAINSTORMED + [''])}"
        elif self.all_invalid or french_fault:
            text = '{"user_query": "broken'
        elif lang and lang.group(1) == "German":
            text = {"same": "I cannot help with that.", "ask": '{"user_query": "only"}'}.get(
                kind.group(1) if kind else "",
                '{"user_query": "", "positive_document": "p", "hard_negative_document": "n"}',
            )
        elif kind and lang and (kind.group(1), lang.group(1)) == ("same", "English"):
            text = valid_reply("same", "English", "constant")
        else:
            tag = hashlib.sha256(f"{prompt}|{body['seed']}".encode()).hexdigest()[:10]
            text = valid_reply(kind.group(1) if kind else "?", lang.group(1) if lang else "?", tag)
        usage = {"prompt_tokens": 10, "completion_tokens": 5}
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}], "usage": usage}


@contextmanager
def serve_raw(respond: Callable[[BaseHTTPRequestHandler, bytes], None]) -> Iterator[tuple[str, list[str | None]]]:
    """A server on 127.0.0.1 whose every POST is answered by `respond(handler, body)`; yields its /v1 URL and
    the Authorization headers it received."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers.get("Authorization"))
            respond(self, body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(fake: FakeOpenAI) -> Iterator[str]:
    """Run `fake` on 127.0.0.1 in a thread; yields its /v1 base URL."""

    def respond(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with fake.lock:
            fake.auth.append(handler.headers.get("Authorization"))
        if handler.path == "/v1/chat/completions":
            status, payload = fake.reply(json.loads(body))
        else:
            status, payload = 404, {"error": handler.path}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    with serve_raw(respond) as (url, _):
        yield url


def openai_cfg(url: str, prompt_file: Path, **fields: Any) -> LLMSynthConfig:
    backend = {
        "kind": "openai",
        "base_url": url,
        "model": "fake-model",
        "api_key_env": KEY_ENV,
        "backoff_s": 0.0,
        "concurrency": 4,
        **fields.pop("backend", {}),
    }
    data = {
        "backend": backend,
        "prompts": str(prompt_file),
        "languages": ["en", "de", "fr"],
        "tasks_per_type": 5,
        "examples_per_type_language": 3,
        "max_attempts": 3,
        **fields,
    }
    return resolve(LLMSynthConfig, data)


def read_rows(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "train.parquet").to_pylist()


def test_parse_finds_json_around_prose_and_names_reasons() -> None:
    ok = parse_example('Sure: {"user_query": " q ", "positive_document": "p", "hard_negative_document": "n"} done {')
    assert ok == {"user_query": "q", "positive_document": "p", "hard_negative_document": "n"}
    assert parse_example('{"a": 1} then {"user_query": "q", "positive_document": "p", "hard_negative_document": "n"}')
    assert parse_tasks('list: ["a", "", "a", " b ", 3]', limit=5) == ["a", "b"]
    assert parse_tasks('["a", "b", "c"]', limit=2) == ["a", "b"]
    cases = {
        "no json at all": NO_JSON,
        '{"user_query": "q", "positive_document": "p"': NO_JSON,
        '{"user_query": "q", "positive_document": "p"}': MISSING_KEYS,
        '{"user_query": 3, "positive_document": "p", "hard_negative_document": "n"}': NOT_TEXT,
        '{"user_query": "q", "positive_document": " p", "hard_negative_document": "p "}': SAME_TEXT,
    }
    for text, reason in cases.items():
        with pytest.raises(InvalidOutput) as err:
            parse_example(text)
        assert err.value.reason == reason, text
    with pytest.raises(InvalidOutput) as err:
        parse_tasks('[1, {"a": 2}, ""]', limit=3)
    assert err.value.reason == NOT_LIST


def test_packaged_prompts_cover_the_e5_task_types_and_render() -> None:
    import random

    prompts = load_prompts()
    assert set(prompts.task_types) == {"short_long", "long_short", "short_short", "long_long", "sts", "bitext"}
    for name, spec in prompts.task_types.items():
        if spec.brainstorm is not None:
            text = render_brainstorm(spec, 7)
            assert "7" in text and "JSON list" in text and "$" not in text, name
        prompt, slots = render_example(
            spec, "Given X, find Y.", "de", "sw" if spec.bilingual else None, random.Random(1)
        )
        assert "German" in prompt and "$" not in prompt and set(slots) == set(spec.slots), name
        assert all(key in prompt for key in ("user_query", "positive_document", "hard_negative_document")), name
        assert ("Swahili" in prompt) == spec.bilingual, name
    assert placeholders("a $x ${y} $$z") == {"x", "y"}


def test_config_and_prompt_file_errors_name_the_key(tmp_path: Path) -> None:
    base = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    cases = [
        ({"backend": base, "tasks_per_typ": 3}, "tasks_per_typ = 3: unknown key"),
        ({"backend": {**base, "kind": "vllm"}}, "backend.kind = 'vllm': Input should be 'transformers' or 'openai'"),
        ({"backend": {**base, "concurency": 4}}, "backend.concurency = 4: unknown key"),
        ({"backend": {**base, "device": "cpu"}}, "['device'] do not apply to kind openai"),
        ({"backend": {"kind": "openai", "model": "m"}}, "backend.base_url is required"),
        (
            {"backend": {**base, "base_url": "localhost:8000"}},
            "backend.base_url = 'localhost:8000': must start with http",
        ),
        ({"backend": base, "languages": ["en", "qq-zz"]}, "unknown language code 'qq-zz'"),
        ({"backend": base, "task_types": ["sts", "nope"]}, "task_types ['nope']: use names from the prompt file"),
        ({"backend": base, "task_types": ["bitext"], "languages": ["en"]}, "['bitext'] pair two languages"),
        ({"backend": base, "max_attempts": 0}, "max_attempts = 0"),
    ]
    for data, expected in cases:
        with pytest.raises(ConfigError) as err:
            resolve(LLMSynthConfig, data)
        assert expected in str(err.value), (expected, str(err.value))
    with pytest.raises(ConfigError) as err:
        resolve(LLMSynthConfig, {"backend": {**base, "api_key_env": "sk-" + SECRET}})
    assert "api_key_env" in str(err.value) and SECRET not in str(err.value)

    bad = json.loads(json.dumps(TEST_PROMPTS))
    bad["task_types"]["ask"]["example"] += " $mood"
    bad["task_types"]["same"]["schema_task"] = "chat"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(PromptError) as perr:
        load_prompts(path)
    text = str(perr.value)
    assert str(path) in text and "task_types.ask" in text and "['mood']" in text
    assert "task_types.same.schema_task = 'chat': not a pair-schema task" in text
    with pytest.raises(ConfigError, match="prompt file .*missing.yaml does not exist"):
        resolve(LLMSynthConfig, {"backend": base, "prompts": str(tmp_path / "missing.yaml")})


def test_openai_backend_retries_counts_skips_and_sends_the_key_from_env(
    tmp_path: Path,
    prompt_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_internet: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake = FakeOpenAI(french_faults=2)
    with serve(fake) as url:
        cfg = openai_cfg(url, prompt_file)
        manifest = generate_llm(cfg, tmp_path / "out")
    # 3 types x 3 languages x 3 examples; German always invalid (3 reasons), 2 English `same` duplicates
    assert manifest["requested"] == 27
    assert manifest["skipped"] == {DUPLICATE: 2, MISSING_KEYS: 3, NO_JSON: 3, NOT_TEXT: 3}
    assert manifest["generated"] == 27 - 11
    assert manifest["retried"] == 9 * 2 + 2  # German: 2 re-prompts each; French: 2 broken replies
    assert manifest["attempts"] == 27 + manifest["retried"]
    assert manifest["brainstorm"] == {
        "attempts": 1,
        "retried": 0,
        "failed": {},
        "tasks": {"ask": BRAINSTORMED, "same": ["Retrieve similar text."], "pairs": ["Retrieve the translation."]},
    }
    stats = manifest["backend_stats"]
    assert stats["http_retries"] == 1 and stats["requests"] == len(fake.requests) == 1 + 1 + manifest["attempts"]
    assert stats["completion_tokens"] == 5 * (len(fake.requests) - 1)
    assert fake.auth == [f"Bearer {SECRET}"] * len(fake.requests)
    assert {r["model"] for r in fake.requests} == {"fake-model"} and "response_format" not in fake.requests[0]
    assert len({r["seed"] for r in fake.requests[1:]}) == len(fake.requests) - 1  # a new seed for every prompt
    out_text = (tmp_path / "out" / "manifest.json").read_text() + caplog.text
    assert SECRET not in out_text and KEY_ENV in out_text
    assert {s["reason"] for s in manifest["invalid_samples"]} <= {NO_JSON, MISSING_KEYS, NOT_TEXT}

    rows = read_rows(tmp_path / "out")
    assert len(rows) == manifest["generated"] and all(not row_problems(r) for r in rows)
    files, stats_ = validate_pair_files([str(tmp_path / "out" / "train.parquet")], negatives_per_query=1)
    assert stats_.rows == len(rows) and stats_.by_task == {"qa": 6, "sts": 4, "bitext": 6}
    assert {r["source"] for r in rows} == {"llm:fake-model"}
    assert {r["query_lang"] for r in rows} == {"en", "fr"}
    for row in rows:
        assert len(row["negatives"]) == 1 and row["instruction"]
        if row["task"] == "bitext":
            assert row["doc_lang"] != row["query_lang"] and row["doc_lang"] in cfg.languages
            assert row["instruction"] == "Retrieve the translation."
        else:
            assert row["doc_lang"] == row["query_lang"]
        if row["task"] == "qa":
            assert row["instruction"] in BRAINSTORMED
    assert manifest["by_task_type"]["same"] == {"requested": 9, "generated": 4}


def test_openai_rows_are_deterministic_per_seed_whatever_chunking(
    tmp_path: Path, prompt_file: Path, monkeypatch: pytest.MonkeyPatch, no_internet: None
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    digests = {}
    for name, seed, chunk, concurrency in [("a", 5, 256, 4), ("b", 5, 4, 1), ("c", 6, 256, 4)]:
        with serve(FakeOpenAI(french_faults=0)) as url:
            cfg = openai_cfg(url, prompt_file, seed=seed, chunk_size=chunk, backend={"concurrency": concurrency})
            digests[name] = generate_llm(cfg, tmp_path / name)["sha256"]
    assert (tmp_path / "a" / "train.parquet").read_bytes() == (tmp_path / "b" / "train.parquet").read_bytes()
    assert digests["a"] == digests["b"] != digests["c"]


def test_openai_backend_failures_stop_with_a_clear_error(
    tmp_path: Path, prompt_file: Path, monkeypatch: pytest.MonkeyPatch, no_internet: None
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(BackendError, match=f"environment variable {KEY_ENV} .* is not set"):
        make_backend(openai_cfg("http://127.0.0.1:9/v1", prompt_file).backend)
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake = FakeOpenAI(status=401)
    with serve(fake) as url, pytest.raises(BackendError) as err:
        generate_llm(openai_cfg(url, prompt_file), tmp_path / "a")
    assert "HTTP 401" in str(err.value) and KEY_ENV in str(err.value) and SECRET not in str(err.value)
    assert len(fake.requests) == 2  # the 500 was retried, the 401 was not
    with serve(FakeOpenAI()) as url:
        dead = url  # the server is gone after this block: connections are refused
    with pytest.raises(BackendError, match="failed 3 time\\(s\\), last: .*Connection"):
        generate_llm(openai_cfg(dead, prompt_file, backend={"max_retries": 2}), tmp_path / "b")
    assert not (tmp_path / "b" / "manifest.json").exists()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A random 2-layer Llama with a chat template; torch on one thread meanwhile (on a busy 2-core
    machine, two threads make each tiny generation step ~20x slower)."""
    import torch

    corpus = [PROMPTS_FILE.read_text(), yaml.safe_dump(TEST_PROMPTS), valid_reply("ask", "English", "0123456789")] * 20
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), corpus, chat_template=CHAT)
    finally:
        torch.set_num_threads(threads)


def test_transformers_garbage_is_retried_then_skipped_and_counted(tiny_lm: Path, tmp_path: Path) -> None:
    cfg = resolve(
        LLMSynthConfig,
        {
            "backend": {"kind": "transformers", "model": str(tiny_lm), "device": "cpu", "batch_size": 4},
            "task_types": ["short_long", "sts"],
            "languages": ["en"],
            "examples_per_type_language": 3,
            "max_attempts": 2,
            "max_new_tokens": 12,
            "temperature": 1.0,
        },
    )
    manifest = generate_llm(cfg, tmp_path)
    assert manifest["generated"] == 0 and manifest["requested"] == 6
    assert manifest["brainstorm"]["attempts"] == 2 and sum(manifest["brainstorm"]["failed"].values()) == 1
    assert manifest["brainstorm"]["tasks"]["short_long"] == []
    skipped = dict(manifest["skipped"])
    assert skipped.pop(NO_TASKS) == 3  # short_long never got task descriptions: its examples were not asked for
    assert sum(skipped.values()) == 3 and set(skipped) <= {NO_JSON, MISSING_KEYS, NOT_TEXT, SAME_TEXT}
    assert manifest["attempts"] == 6 and manifest["retried"] == 3
    assert manifest["backend_stats"] == {"kind": "transformers", "chat_template": True, "prompts": 8, "calls": 4}
    assert manifest["model"] == tiny_lm.name and pq.read_table(tmp_path / "train.parquet").num_rows == 0


class ForceReplies(LogitsProcessor):
    """A LogitsProcessor that makes any LM spell `reply_for(decoded prompt)` then EOS: the real pipeline runs,
    but the output is chosen by the test. Detects each new generate call by its inputs not extending the last ones."""

    def __init__(self, tokenizer: Any, reply_for: Callable[[str], str]) -> None:
        self.tok = tokenizer
        self.reply_for = reply_for
        self.prev: Any = None
        self.start = 0
        self.targets: list[list[int]] = []
        self.prompts: list[str] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        prev = self.prev
        same_call = (
            prev is not None
            and prev.shape[0] == input_ids.shape[0]
            and prev.shape[1] + 1 == input_ids.shape[1]
            and torch.equal(input_ids[:, :-1], prev)
        )
        if not same_call:
            self.start = input_ids.shape[1]
            self.targets = []
            for row in input_ids:
                prompt = self.tok.decode(row, skip_special_tokens=True)
                self.prompts.append(prompt)
                self.targets.append(
                    self.tok.encode(self.reply_for(prompt), add_special_tokens=False) + [self.tok.eos_token_id]
                )
        self.prev = input_ids.clone()
        step = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, float("-inf"))
        for b, target in enumerate(self.targets):
            forced[b, target[min(step, len(target) - 1)]] = 0.0
        return forced


def test_transformers_pipeline_with_forced_json_writes_valid_rows(
    tiny_lm: Path, prompt_file: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from rtrain.synth.llm.transformers_backend import TransformersBackend

    count = {"examples": 0}

    def reply_for(prompt: str) -> str:
        if "BRAINSTORM" in prompt:
            return json.dumps(BRAINSTORMED)
        count["examples"] += 1
        if count["examples"] == 1:
            return "no JSON, sorry"  # the first example prompt is answered badly once: one retry
        return valid_reply("x", "y", f"{count['examples']:03d}")

    cfg = resolve(
        LLMSynthConfig,
        {
            "backend": {"kind": "transformers", "model": str(tiny_lm), "device": "cpu", "batch_size": 4},
            "prompts": str(prompt_file),
            "languages": ["en", "de"],
            "examples_per_type_language": 2,
            "max_attempts": 2,
            "max_new_tokens": 120,
            "temperature": 0.7,
        },
    )
    forcer = ForceReplies(AutoTokenizer.from_pretrained(tiny_lm), reply_for)
    manifest = generate_llm(cfg, tmp_path, backend=TransformersBackend(cfg.backend, logits_processors=[forcer]))
    assert manifest["requested"] == manifest["generated"] == 12 and manifest["skipped"] == {}
    assert manifest["retried"] == 1 and manifest["attempts"] == 13
    assert manifest["brainstorm"]["tasks"]["ask"] == BRAINSTORMED
    assert all(p.startswith("### user:\n") and p.rstrip().endswith("### assistant:") for p in forcer.prompts)
    rows = read_rows(tmp_path)
    assert all(not row_problems(r) for r in rows) and {r["source"] for r in rows} == {f"llm:{tiny_lm.name}"}
    assert sorted(r["query"] for r in rows) == sorted(f"q x y {n:03d}" for n in range(2, 14))
    assert all(r["positive"].endswith(" ü") for r in rows)  # byte-level decoding round-trips non-ASCII


def test_cli_end_to_end_against_the_fake_server(
    tmp_path: Path, prompt_file: Path, monkeypatch: pytest.MonkeyPatch, no_internet: None, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    config = tmp_path / "llm.yaml"
    with serve(FakeOpenAI(french_faults=0)) as url:
        backend = {"kind": "openai", "base_url": url, "model": "fake-model", "api_key_env": KEY_ENV, "backoff_s": 0}
        config.write_text(yaml.safe_dump({"backend": backend, "prompts": str(prompt_file), "languages": ["en", "fr"]}))
        out = tmp_path / "out"
        code = cli_main(
            [
                "synth-llm",
                "--config",
                str(config),
                "--out",
                str(out),
                "examples_per_type_language=2",
                "backend.json_mode=true",
                "task_types=[ask,pairs]",
            ]
        )
        printed = capsys.readouterr()
        assert code == 0, printed.err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["generated"] == manifest["requested"] == 8 and manifest["config"]["backend"]["json_mode"]
        assert "rtrain synth-llm" in printed.out and "total" in printed.out and SECRET not in printed.out + printed.err
        validate_pair_files([str(out / "train.parquet")], negatives_per_query=1)

        assert cli_main(["synth-llm", "--config", str(config), "--out", str(out), "retries=3"]) == 2
        assert "retries = 3: unknown key" in capsys.readouterr().err
    with serve(FakeOpenAI(all_invalid=True)) as url:
        code = cli_main(
            [
                "synth-llm",
                "--config",
                str(config),
                "--out",
                str(tmp_path / "none"),
                f"backend.base_url={url}",
                "task_types=[same]",
                "max_attempts=1",
                "examples_per_type_language=1",
            ]
        )
        assert code == 1 and "no valid example in 2 replies" in capsys.readouterr().err


def test_the_http_client_keeps_the_key_home_and_bounds_each_request(
    prompt_file: Path, monkeypatch: pytest.MonkeyPatch, no_internet: None
) -> None:
    import time

    monkeypatch.setenv(KEY_ENV, SECRET)
    generate = {"max_new_tokens": 8, "temperature": 0.0, "seeds": [1]}

    def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    with serve_raw(lambda h, _: send(h, 200, b"{}")) as (elsewhere, stolen):
        with serve_raw(lambda h, _: send(h, 307, b"", Location=f"{elsewhere}/chat/completions")) as (url, seen):
            backend = make_backend(openai_cfg(url, prompt_file).backend)
            with pytest.raises(BackendError, match="redirect to .* does not follow redirects"):
                backend.generate(["p"], **generate)
        assert seen == [f"Bearer {SECRET}"] and stolen == []  # the key never reached the other server

    with serve_raw(lambda h, _: send(h, 200, b"x" * 300_000)) as (url, seen):
        cfg = openai_cfg(url, prompt_file, backend={"max_response_mb": 0.1}).backend
        with pytest.raises(BackendError, match=r"exceeds backend\.max_response_mb=0\.1"):
            make_backend(cfg).generate(["p"], **generate)
        assert len(seen) == 1  # no retry: the same request would get the same reply

    def drip(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Headers at once, then a byte every 0.2 s for ~10 s."""
        handler.send_response(200)
        handler.send_header("Content-Length", "50")
        handler.end_headers()
        for _ in range(50):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    with serve_raw(drip) as (url, seen):
        cfg = openai_cfg(url, prompt_file, backend={"timeout_s": 1.0, "max_retries": 0}).backend
        started = time.monotonic()
        with pytest.raises(BackendError, match="last: TimeoutError"):
            make_backend(cfg).generate(["p"], **generate)
        assert time.monotonic() - started < 5  # the deadline is per request, not per socket read

    with pytest.raises(BackendError, match="plain http would send the API key in clear text to 10.9.8.7"):
        make_backend(openai_cfg("http://10.9.8.7:8000/v1", prompt_file).backend)
    make_backend(openai_cfg("http://10.9.8.7:8000/v1", prompt_file, backend={"allow_insecure_http": True}).backend)
    with pytest.raises(ConfigError) as err:
        openai_cfg("http://user:hunter2@10.9.8.7:8000/v1", prompt_file)
    assert "must not carry a user or password" in str(err.value) and "hunter2" not in str(err.value)
