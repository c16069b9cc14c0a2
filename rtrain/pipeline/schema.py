"""A pipeline file: the stages (synth -> train -> eval -> export), each with its inputs and output folder.

Paths are relative to `workdir`. Each stage reads only its `inputs` and writes only its `output`,
so any stage can be rerun, cached or inspected on its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtrain.synth import SynthConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynthStage(_Section):
    """Generate synthetic pairs: `<output>/train.parquet`, `heldout.parquet`, `manifest.json`."""

    output: str = "synth"
    config: SynthConfig = Field(default_factory=SynthConfig)


class TrainStage(_Section):
    """Train a job (rtrain.config.JobConfig without `data.train_files` and `output`, which the stage sets)."""

    inputs: list[str] = Field(default_factory=lambda: ["synth/train.parquet"], min_length=1)
    output: str = "train"
    job: dict[str, Any] = Field(description="A training job's sections (model, lora, loss, train, scaling, ...).")

    @model_validator(mode="after")
    def _job_sets_no_stage_keys(self) -> TrainStage:
        clash = [k for k in ("output",) if k in self.job] + (
            ["data.train_files"] if "train_files" in (self.job.get("data") or {}) else []
        )
        if clash:
            raise ValueError(f"stages.train.job sets {clash}: the stage sets these from its inputs and output")
        return self


class FloresEval(_Section):
    """FLORES bitext mining (X -> English) from the shared sib200 subset, when that folder exists."""

    languages: list[str] = Field(min_length=1, description="FLORES codes, e.g. deu_Latn")
    split: Literal["train", "dev", "test"] = "dev"
    limit: int | None = Field(None, ge=1)
    root: str | None = Field(None, description="Folder of the subset; default: $RTRAIN_FLORES_DIR or ../shared/data")


class EvalStage(_Section):
    """Evaluate the base model and the trained one: held-out synthetic retrieval (+ FLORES bitext)."""

    inputs: list[str] = Field(default_factory=lambda: ["synth/heldout.parquet", "train"], min_length=2, max_length=2)
    output: str = "eval"
    compare_base: bool = True
    flores: FloresEval | None = None
    batch_size: int = Field(64, ge=1)


class ExportStage(_Section):
    """Export the trained run's latest checkpoint as a sentence-transformers model with a card."""

    inputs: list[str] = Field(default_factory=lambda: ["train"], min_length=1, max_length=1)
    output: str = "model"


class Stages(_Section):
    synth: SynthStage | None = None
    train: TrainStage | None = None
    eval: EvalStage | None = None
    export: ExportStage | None = None


class PipelineConfig(_Section):
    """A pipeline: a name, a work folder and its stages (run in the order synth, train, eval, export)."""

    name: str
    workdir: str = Field(description="Folder holding every stage's output, e.g. runs/quickstart")
    stages: Stages
