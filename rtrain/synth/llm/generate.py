"""`generate_llm(cfg, out_dir)`: brainstorm tasks, prompt for examples, write pair-schema rows.

Step 1 asks the LLM, once per brainstorming task type, for `tasks_per_type` task descriptions (STS
and bitext use fixed descriptions). Step 2 asks, for every (task type, language, index), for one
example; its prompt draws a task description and slot values from an RNG seeded by that triple, and
every request carries a seed derived from (seed, example, attempt), so a deterministic server gives
the same rows for the same config. A reply that is not the JSON asked for is re-prompted (new seed)
up to `max_attempts` times, then counted under its reason and skipped; a row repeating an earlier
(query, positive) is skipped as `duplicate`. Output: `<out>/train.parquet` and `manifest.json`
(requested / generated / retried / skipped by reason, backend, model, timings), written last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.data.schema import rows_to_table
from rtrain.synth.generate import _counts, _write_parquet
from rtrain.synth.llm.backends import BackendError, GenerationBackend
from rtrain.synth.llm.config import LLMSynthConfig
from rtrain.synth.llm.make import make_backend
from rtrain.synth.llm.parse import InvalidOutput, parse_example, parse_tasks
from rtrain.synth.llm.prompts import TaskTypeSpec, load_prompts, render_brainstorm, render_example

log = logging.getLogger(__name__)
GENERATOR_VERSION = "1.0.0"
FILE = "train.parquet"
MANIFEST = "manifest.json"
NO_TASKS = "no_task_descriptions"  # the task type's brainstorm never gave valid JSON
DUPLICATE = "duplicate"
MAX_INVALID_SAMPLES = 5


def derive_seed(seed: int, key: str, attempt: int) -> int:
    """A request seed in [0, 2**31) fixed by the config seed, the prompt's key and the attempt number."""
    digest = hashlib.sha256(f"{seed}|{key}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class Tally:
    """Counts over one step: prompts sent, re-prompts, skips by reason, a few rejected replies."""

    sent: int = 0
    retried: int = 0
    skipped: Counter = field(default_factory=Counter)
    invalid_samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One example to ask for."""

    key: str
    task_type: str
    lang: str
    target_lang: str | None
    task: str
    prompt: str


def prompt_until_valid(
    backend: GenerationBackend,
    prompts: Sequence[str],
    keys: Sequence[str],
    parse: Callable[[str], Any],
    cfg: LLMSynthConfig,
    tally: Tally,
) -> list[Any | None]:
    """Parsed replies in prompt order; None where every one of `max_attempts` replies was invalid."""
    results: list[Any | None] = [None] * len(prompts)
    reasons: list[str] = [""] * len(prompts)
    pending = list(range(len(prompts)))
    for attempt in range(1, cfg.max_attempts + 1):
        if not pending:
            break
        seeds = [derive_seed(cfg.seed, keys[i], attempt) for i in pending]
        replies = backend.generate(
            [prompts[i] for i in pending], max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seeds=seeds
        )
        if len(replies) != len(pending):
            raise BackendError(f"the backend returned {len(replies)} replies for {len(pending)} prompts")
        tally.sent += len(pending)
        failed: list[int] = []
        for i, reply in zip(pending, replies):
            try:
                results[i] = parse(reply)
            except InvalidOutput as err:
                reasons[i] = err.reason
                failed.append(i)
                if len(tally.invalid_samples) < MAX_INVALID_SAMPLES:
                    tally.invalid_samples.append(
                        {"key": keys[i], "attempt": attempt, "reason": err.reason, "reply": reply[:300]}
                    )
        if attempt < cfg.max_attempts:
            tally.retried += len(failed)
        pending = failed
    for i in pending:
        tally.skipped[reasons[i]] += 1
    return results


def brainstorm(
    backend: GenerationBackend, cfg: LLMSynthConfig, specs: dict[str, TaskTypeSpec], tally: Tally
) -> dict[str, list[str]]:
    """Task descriptions per task type: brainstormed (empty list if every reply was invalid) or fixed."""
    asking = [name for name in cfg.task_type_list if specs[name].brainstorm is not None]
    prompts = [render_brainstorm(specs[name], cfg.tasks_per_type) for name in asking]
    parsed = prompt_until_valid(
        backend, prompts, [f"brainstorm/{n}" for n in asking], lambda t: parse_tasks(t, cfg.tasks_per_type), cfg, tally
    )
    found = dict(zip(asking, parsed))
    return {name: list(found.get(name) or specs[name].fixed_tasks) for name in cfg.task_type_list}


def plan_jobs(
    cfg: LLMSynthConfig, specs: dict[str, TaskTypeSpec], tasks: dict[str, list[str]], skipped: Counter
) -> list[Job]:
    """Every example prompt in output order (task type, language, index); task types without tasks are skipped."""
    jobs: list[Job] = []
    for name in cfg.task_type_list:
        spec = specs[name]
        for lang in cfg.languages:
            if not tasks[name]:
                skipped[NO_TASKS] += cfg.examples_per_type_language
                continue
            others = [other for other in cfg.languages if other != lang]
            for i in range(cfg.examples_per_type_language):
                rng = random.Random(f"{cfg.seed}:{name}:{lang}:{i}")
                task = rng.choice(tasks[name])
                target = rng.choice(others) if spec.bilingual else None
                prompt, _ = render_example(spec, task, lang, target, rng)
                jobs.append(Job(f"{name}-{lang}-{i:06d}", name, lang, target, task, prompt))
    return jobs


def _row(job: Job, example: dict[str, str], schema_task: str, source: str) -> dict[str, Any]:
    return {
        "id": f"llm-{job.key}",
        "query": example["user_query"],
        "positive": example["positive_document"],
        "negatives": [example["hard_negative_document"]],
        "task": schema_task,
        "query_lang": job.lang,
        "doc_lang": job.target_lang or job.lang,
        "source": source,
        "instruction": job.task,
    }


def generate_llm(
    cfg: LLMSynthConfig, out_dir: str | Path, *, backend: GenerationBackend | None = None
) -> dict[str, Any]:
    """Generate into `out_dir` and return the manifest (also written as manifest.json).

    `backend` replaces the one `cfg.backend` describes (e.g. a TransformersBackend built with
    logits processors); BackendError if the backend fails for good.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an old manifest must not vouch for a file being replaced
    specs = load_prompts(cfg.prompts).task_types
    backend = backend if backend is not None else make_backend(cfg.backend)
    source = f"llm:{backend.model_name}"

    step1 = Tally()
    tasks = brainstorm(backend, cfg, specs, step1)
    brainstorm_s = time.perf_counter() - started

    step2 = Tally()
    jobs = plan_jobs(cfg, specs, tasks, step2.skipped)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    generated_by_type: Counter = Counter()
    for start in range(0, len(jobs), cfg.chunk_size):
        chunk = jobs[start : start + cfg.chunk_size]
        examples = prompt_until_valid(
            backend, [j.prompt for j in chunk], [j.key for j in chunk], parse_example, cfg, step2
        )
        for job, example in zip(chunk, examples):
            if example is None:
                continue
            pair = (example["user_query"], example["positive_document"])
            if pair in seen:
                step2.skipped[DUPLICATE] += 1
                continue
            seen.add(pair)
            rows.append(_row(job, example, specs[job.task_type].schema_task, source))
            generated_by_type[job.task_type] += 1
        log.info("synth-llm: %d/%d example prompts done, %d rows", start + len(chunk), len(jobs), len(rows))
    examples_s = time.perf_counter() - started - brainstorm_s

    table = rows_to_table(rows)
    digest = _write_parquet(table, out / FILE)
    per_type = cfg.examples_per_type_language * len(cfg.languages)
    manifest = {
        "generator": "rtrain.synth.llm",
        "generator_version": GENERATOR_VERSION,
        "backend": cfg.backend.kind,
        "model": backend.model_name,
        "source": source,
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "requested": cfg.requested(),
        "generated": len(rows),
        "retried": step2.retried,
        "attempts": step2.sent,
        "skipped": dict(sorted(step2.skipped.items())),
        "by_task_type": {n: {"requested": per_type, "generated": generated_by_type[n]} for n in cfg.task_type_list},
        "brainstorm": {
            "attempts": step1.sent,
            "retried": step1.retried,
            "failed": dict(sorted(step1.skipped.items())),
            "tasks": tasks,
        },
        "invalid_samples": step1.invalid_samples + step2.invalid_samples,
        "backend_stats": backend.stats(),
        "file": FILE,
        "sha256": digest,
        "splits": {"train": {"file": FILE, "sha256": digest, **_counts(table)}},
        "timings_s": {
            "brainstorm": round(brainstorm_s, 3),
            "examples": round(examples_s, 3),
            "total": round(time.perf_counter() - started, 3),
        },
    }
    tmp = out / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return manifest
