"""`LLMSynthConfig`: what `rtrain synth-llm` generates and which backend writes it.

    backend: {kind: openai, base_url: "http://vllm-head:8000/v1", model: Qwen/Qwen2.5-7B-Instruct,
              api_key_env: VLLM_API_KEY, concurrency: 32}
    task_types: [short_long, long_short, sts, bitext]   # names in the prompt file (default: all)
    languages: [en, de, sw]
    tasks_per_type: 20                # step 1: task descriptions brainstormed per task type
    examples_per_type_language: 100   # step 2: examples per (task type, language)
    max_attempts: 3                   # tries per prompt before an invalid reply is counted and skipped

`backend.kind` is `transformers` (a local model folder, `pkg://` path or hub name run through the
transformers text-generation pipeline) or `openai` (any OpenAI-compatible `/v1/chat/completions`
server: vLLM, Ray Serve LLM, ...). The API key is read from the environment variable *named* by
`api_key_env`; the key itself never appears in a config, a manifest or a log.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from rtrain.config.strict import StrictModel
from rtrain.synth.llm.prompts import language_name, load_prompts

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPENAI_KEYS = frozenset(
    {
        "base_url",
        "api_key_env",
        "timeout_s",
        "max_retries",
        "backoff_s",
        "concurrency",
        "json_mode",
        "max_response_mb",
        "allow_insecure_http",
    }
)
TRANSFORMERS_KEYS = frozenset({"device", "dtype", "batch_size"})


class BackendConfig(StrictModel):
    """Which LLM writes the data: `kind` plus that kind's options (setting another kind's option is an error).

    transformers: model (local folder, pkg://package/folder or hub name), device, dtype, batch_size.
    openai: model (the served name), base_url, api_key_env, timeout_s, max_retries, backoff_s,
    concurrency, json_mode.
    """

    kind: Literal["transformers", "openai"]
    model: str = Field(min_length=1)
    # transformers
    device: str = Field(default="auto", description="auto (cuda if available), cpu, cuda or cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(default=8, ge=1)
    # openai
    base_url: str | None = Field(
        default=None, description="e.g. http://localhost:8000/v1 (POSTs to .../chat/completions)"
    )
    api_key_env: str | None = Field(default=None, description="NAME of the environment variable holding the key")
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20, description="retries of 5xx/429/connection errors")
    backoff_s: float = Field(default=1.0, ge=0, description="first retry wait; doubles each retry (max 60 s)")
    concurrency: int = Field(default=8, ge=1, le=1024, description="requests in flight at once")
    json_mode: bool = Field(default=False, description="send response_format={type: json_object}")
    max_response_mb: float = Field(default=16.0, gt=0, description="a reply larger than this is an error")
    allow_insecure_http: bool = Field(
        default=False, description="send the API key over plain http to a host other than this machine"
    )

    @model_validator(mode="before")
    @classmethod
    def _hide_key_like_values(cls, data: Any) -> Any:
        """Mask an api_key_env that is not a variable name, and a user:password in base_url, so no error
        message can echo a key."""
        if isinstance(data, dict):
            value = data.get("api_key_env")
            if isinstance(value, str) and not _ENV_NAME.fullmatch(value):
                data = {**data, "api_key_env": f"<hidden: {len(value)} characters>"}
            url = data.get("base_url")
            if isinstance(url, str) and "@" in (urlsplit(url).netloc or ""):
                parts = urlsplit(url)
                data = {
                    **data,
                    "base_url": parts._replace(netloc="<hidden>@" + parts.netloc.rsplit("@", 1)[1]).geturl(),
                }
        return data

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "must be the NAME of an environment variable that holds the key (e.g. VLLM_API_KEY), "
                "never the key itself; export the key and name its variable here"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://localhost:8000/v1)")
        if value is not None and "@" in urlsplit(value).netloc:
            raise ValueError(
                "must not carry a user or password: export the key and name its variable in backend.api_key_env"
            )
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _options_match_kind(self) -> BackendConfig:
        foreign = sorted(self.model_fields_set & (TRANSFORMERS_KEYS if self.kind == "openai" else OPENAI_KEYS))
        if foreign:
            own = sorted(OPENAI_KEYS if self.kind == "openai" else TRANSFORMERS_KEYS)
            raise ValueError(
                f"backend option(s) {foreign} do not apply to kind {self.kind}; it takes model, {', '.join(own)}"
            )
        if self.kind == "openai" and not self.base_url:
            raise ValueError("backend.base_url is required for kind openai (e.g. http://localhost:8000/v1)")
        return self


class LLMSynthConfig(StrictModel):
    """Everything that decides the generated rows (with a deterministic backend, the same config gives the same rows).

    Row count: len(task_types) * len(languages) * examples_per_type_language are requested; the
    manifest reports how many were generated, retried and skipped (by reason). Bilingual task types
    (bitext) pair each query language with another language of `languages`, so they need two.
    """

    backend: BackendConfig
    prompts: str | None = Field(default=None, description="prompt YAML file; null = the packaged E5-style set")
    task_types: list[str] | None = Field(default=None, description="task types of the prompt file; null = all")
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    tasks_per_type: int = Field(default=20, ge=1, le=500)
    examples_per_type_language: int = Field(default=10, ge=1)
    max_attempts: int = Field(default=3, ge=1, le=20)
    max_new_tokens: int = Field(default=1024, ge=8)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    chunk_size: int = Field(default=256, ge=1, description="prompts handed to the backend per call")
    seed: int = 0

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        for code in value:
            language_name(code)
        duplicates = sorted({code for code in value if value.count(code) > 1})
        if duplicates:
            raise ValueError(f"language(s) {duplicates} listed twice; list each once")
        return value

    @model_validator(mode="after")
    def _check_task_types(self) -> LLMSynthConfig:
        prompts = load_prompts(self.prompts)
        available = list(prompts.task_types)
        if self.task_types is None:
            self.task_types = available
        unknown = [name for name in self.task_types if name not in available]
        if unknown or not self.task_types:
            raise ValueError(f"task_types {unknown or '[]'}: use names from the prompt file: {available}")
        bilingual = [name for name in self.task_types if prompts.task_types[name].bilingual]
        if bilingual and len(self.languages) < 2:
            raise ValueError(
                f"task type(s) {bilingual} pair two languages but languages={self.languages}; "
                "add a language or drop them from task_types"
            )
        return self

    @property
    def task_type_list(self) -> list[str]:
        """`task_types` after validation (always a list)."""
        return list(self.task_types or [])

    def requested(self) -> int:
        """Examples asked for in total."""
        return len(self.task_type_list) * len(self.languages) * self.examples_per_type_language
