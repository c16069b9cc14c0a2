"""E5-style prompt sets stored as YAML data (`prompts.yaml` here, or a file of your own).

    prompts = load_prompts()                       # the packaged set, checked
    spec = prompts.task_types["short_long"]
    text = render_brainstorm(spec, num_tasks=20)   # step 1: asks for a JSON list of task descriptions
    prompt, slots = render_example(spec, task="Given ...", language="de", target_language=None,
                                   rng=random.Random(0))  # step 2: asks for one JSON example

Placeholders are `$name` (string.Template). The loader rejects unknown placeholders, unused slots,
a task type with both or neither of `brainstorm` / `fixed_tasks`, and a `schema_task` outside the
pair schema's task names; errors name the file and the key.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from string import Template

from babel import Locale, UnknownLocaleError
from pydantic import Field, ValidationError, field_validator, model_validator

from rtrain.config.strict import StrictModel
from rtrain.data.schema import TASKS
from rtrain.errors import UserError

PROMPTS_FILE = Path(__file__).with_name("prompts.yaml")
BRAINSTORM_PLACEHOLDERS = frozenset({"num_tasks"})
EXAMPLE_PLACEHOLDERS = frozenset({"task", "language", "target_language"})
OUTPUT_KEYS = ("user_query", "positive_document", "hard_negative_document")


class PromptError(UserError, ValueError):
    """A prompt file that cannot be used; the message names the file, the key and the fix."""


def placeholders(text: str) -> set[str]:
    """The `$name` / `${name}` placeholders of a template; ValueError on a stray `$`."""
    names: set[str] = set()
    for match in Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise ValueError(f"stray '$' at character {match.start('invalid')}: write $$ for a literal dollar")
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
    return names


class TaskTypeSpec(StrictModel):
    """One task type: how to brainstorm its tasks (or its fixed tasks) and how to ask for one example."""

    schema_task: str
    summary: str
    bilingual: bool = False
    brainstorm: str | None = None
    fixed_tasks: list[str] = Field(default_factory=list)
    example: str
    slots: dict[str, list[str | int | float]] = Field(default_factory=dict)

    @field_validator("schema_task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"not a pair-schema task; use one of {list(TASKS)}")
        return value

    @field_validator("slots")
    @classmethod
    def _non_empty_slots(cls, value: dict[str, list[str | int | float]]) -> dict[str, list[str | int | float]]:
        empty = [name for name, values in value.items() if not values]
        if empty:
            raise ValueError(f"slot(s) {empty} have no values; give each slot a non-empty list")
        return value

    @model_validator(mode="after")
    def _check_templates(self) -> TaskTypeSpec:
        if (self.brainstorm is None) == (not self.fixed_tasks):
            raise ValueError("give exactly one of 'brainstorm' (a prompt) or 'fixed_tasks' (a list of descriptions)")
        if any(not t.strip() for t in self.fixed_tasks):
            raise ValueError("fixed_tasks holds an empty description")
        slot_names = set(self.slots)
        clash = slot_names & (EXAMPLE_PLACEHOLDERS | BRAINSTORM_PLACEHOLDERS)
        if clash:
            raise ValueError(f"slot name(s) {sorted(clash)} are built-in placeholders; rename the slot(s)")
        allowed = EXAMPLE_PLACEHOLDERS | slot_names
        if not self.bilingual:
            allowed = allowed - {"target_language"}
        used = placeholders(self.example)
        unknown = used - allowed
        if unknown:
            raise ValueError(f"example uses unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "language" not in used:
            raise ValueError("example must say which language to write in: use $language")
        if self.bilingual and "target_language" not in used:
            raise ValueError("a bilingual example must use $target_language (the document language)")
        unused = slot_names - used
        if unused:
            raise ValueError(f"slot(s) {sorted(unused)} are not used by the example prompt; use or remove them")
        if self.brainstorm is not None:
            extra = placeholders(self.brainstorm) - BRAINSTORM_PLACEHOLDERS
            if extra:
                raise ValueError(f"brainstorm uses unknown placeholder(s) {sorted(extra)}; allowed: ['num_tasks']")
        return self


class PromptSet(StrictModel):
    """A prompt file: a version and the task types by name."""

    version: int = 1
    task_types: dict[str, TaskTypeSpec] = Field(min_length=1)


@lru_cache(maxsize=8)
def _load(path: str) -> PromptSet:
    from rtrain.config.load import format_validation_error, load_yaml

    file = Path(path)
    if not file.is_file():
        raise PromptError(f"prompt file {file} does not exist; fix 'prompts' or leave it null for the packaged set")
    data = load_yaml(file)
    try:
        return PromptSet.model_validate(data)
    except ValidationError as err:
        raise PromptError(format_validation_error(err, PromptSet, str(file))) from None


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """The checked prompt set from `path` (default: the packaged `prompts.yaml`); PromptError if unusable."""
    return _load(str(Path(path).expanduser().resolve()) if path is not None else str(PROMPTS_FILE))


def language_name(code: str) -> str:
    """English name of a language code (`de` -> German, `pt-BR` -> Portuguese (Brazil)); ValueError if unknown."""
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"unknown language code {code!r}; use an ISO 639 / BCP-47 code such as en, de, pt-BR"
        ) from None


def render_brainstorm(spec: TaskTypeSpec, num_tasks: int) -> str:
    """Step 1 prompt: asks for `num_tasks` task descriptions as a JSON list."""
    if spec.brainstorm is None:
        raise ValueError("this task type has fixed tasks and no brainstorm prompt")
    return Template(spec.brainstorm).substitute(num_tasks=num_tasks).strip()


def render_example(
    spec: TaskTypeSpec, task: str, language: str, target_language: str | None, rng: random.Random
) -> tuple[str, dict[str, str]]:
    """Step 2 prompt for one example, and the slot values drawn for it (language codes become names)."""
    values = {name: str(rng.choice(options)) for name, options in sorted(spec.slots.items())}
    mapping = {"task": task, "language": language_name(language), **values}
    if spec.bilingual:
        if target_language is None:
            raise ValueError("a bilingual task type needs a target language")
        mapping["target_language"] = language_name(target_language)
    return Template(spec.example).substitute(mapping).strip(), values
