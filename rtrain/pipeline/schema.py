"""A pipeline file: its stages (synth, pairs, mine, train, eval, export), each with its inputs and output folder.

Paths are relative to `workdir`. Each stage reads only its `inputs` and writes only its `output`,
so any stage can be rerun, cached or inspected on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from rtrain.config.strict import StrictModel
from rtrain.mining.config import MineConfig
from rtrain.pairs.spec import PairsSpec, Source, load_spec
from rtrain.pipeline.cache import MARKERS
from rtrain.synth import SynthConfig


class _Section(StrictModel):
    """A section of the file: unknown keys are errors."""


class SynthStage(_Section):
    """Generate synthetic pairs: `<output>/train.parquet`, `heldout.parquet`, `manifest.json`."""

    output: str = "synth"
    config: SynthConfig = Field(default_factory=SynthConfig)


class PairsStage(_Section):
    """Build pairs from real corpora (`rtrain pairs`): `<output>/<source>.parquet` + `manifest.json`.

    Either `spec` (a SOURCE_SPEC YAML such as jobs/pairs/shared-corpora.yaml, plus `overrides`
    like `sources.0.max_rows=6000`) or inline `root` and `sources` as in a spec. Corpus paths are not
    under the workdir: relative ones are under the spec's `root` (default $RTRAIN_SHARED_DATA, else
    ../shared/data from the current folder).
    """

    output: str = "pairs"
    spec: str | None = Field(None, description="SOURCE_SPEC YAML, relative to the current folder.")
    overrides: list[str] = Field(default_factory=list, description="Overrides applied to `spec`.")
    root: str | None = None
    sources: list[Source] | None = None

    @model_validator(mode="after")
    def _spec_or_sources(self) -> PairsStage:
        if (self.spec is None) == (self.sources is None):
            raise ValueError("stages.pairs: set either `spec` (a SOURCE_SPEC file) or inline `sources`")
        if self.sources is None and self.root is not None:
            raise ValueError("stages.pairs: `root` belongs in the spec file; override it with overrides: [root=...]")
        if self.sources is not None and self.overrides:
            raise ValueError("stages.pairs: `overrides` apply to `spec`; edit the inline sources instead")
        self.resolved()  # a bad spec file fails when the pipeline is loaded
        return self

    def resolved(self) -> PairsSpec:
        """The spec this stage builds: the spec file with its overrides, or the inline sources."""
        if self.spec is not None:
            return load_spec(self.spec, self.overrides)
        return PairsSpec(root=self.root, sources=self.sources)

    @property
    def inputs(self) -> list[str]:
        """The spec file and every corpus file or folder, absolute, so the stage reruns when one changes."""
        spec = self.resolved()
        files = [str(Path(self.spec).resolve())] if self.spec else []
        return files + [str(spec.resolve_path(p)) for source in spec.sources for p in source.input_paths()]


class MineStage(_Section):
    """Mine hard negatives: `<output>/<input stem>.parquet` per input (negatives, pos_score, neg_scores), manifest.json.

    Relative `config.corpus` paths are relative to the workdir, like `inputs`.
    """

    inputs: list[str] = Field(default_factory=lambda: ["synth/train.parquet"], min_length=1)
    output: str = "mined"
    config: MineConfig


STAGE_SET_OUTPUT = ("storage_path", "name", "export")  # the train stage's run dir is its output; export is a stage


class TrainStage(_Section):
    """Train a job (rtrain.config.JobConfig without `output`, which the stage sets).

    The job's data is the stage's `inputs` (as `data.train_files`), or, when the job has
    `data.sources`, those sources with their files relative to the workdir (they are then the inputs).
    """

    inputs: list[str] | None = Field(
        None, description="Default: the files of job.data.sources, else synth/train.parquet."
    )
    output: str = "train"
    job: dict[str, Any] = Field(description="A training job's sections (model, lora, loss, train, scaling, ...).")

    @model_validator(mode="after")
    def _job_sets_no_stage_keys(self) -> TrainStage:
        data, output = self.job.get("data") or {}, self.job.get("output") or {}
        clash = [f"output.{k}" for k in STAGE_SET_OUTPUT if k in output]
        clash += ["data.train_files"] if "train_files" in data else []
        if clash:
            raise ValueError(f"stages.train.job sets {clash}: the stage sets these from its inputs and output")
        sources = data.get("sources") or []
        if sources and self.inputs is not None:
            raise ValueError("stages.train: drop `inputs` when the job has data.sources; their files are the inputs")
        if self.inputs is None:
            files = [f for s in sources if isinstance(s, dict) for f in s.get("files") or []]
            self.inputs = files if sources else ["synth/train.parquet"]
        return self

    def job_mapping(self, name: str, workdir: Path) -> dict[str, Any]:
        """The job named `name` with its data files made absolute under `workdir` (without `output`)."""
        job = {"name": name, **self.job}
        data = dict(job.get("data") or {})
        if data.get("sources"):  # source files are relative to the workdir
            data["sources"] = [
                {**s, "files": [str(workdir / f) for f in s.get("files") or []]} for s in data["sources"]
            ]
        else:
            data["train_files"] = [str(workdir / i) for i in self.inputs or []]
        return {**job, "data": data}


class FloresEval(_Section):
    """FLORES bitext mining (X -> English) from the shared sib200 subset, when that folder exists."""

    languages: list[str] = Field(min_length=1, description="FLORES codes, e.g. deu_Latn")
    split: Literal["train", "dev", "test"] = "dev"
    limit: int | None = Field(None, ge=1)
    root: str | None = Field(
        None,
        description="Folder of the subset; default: sib200_flores_subset in the shared-data folder "
        "($RTRAIN_SHARED_DATA, else <repo>/../shared/data)",
    )


class EvalStage(_Section):
    """Evaluate the base model and the trained one: held-out pairs (+ FLORES bitext), and/or an eval suite.

    `inputs` is `[heldout pairs, train run]`, or just `[train run]` when only a suite is run.
    """

    inputs: list[str] = Field(default_factory=lambda: ["synth/heldout.parquet", "train"], min_length=1, max_length=2)
    output: str = "eval"
    compare_base: bool = True
    flores: FloresEval | None = None
    suite: str | list[str] | None = Field(
        None,
        description="An eval suite YAML (see `rtrain eval`), e.g. jobs/suites/readme.yaml, or a list of them "
        "(e.g. a dev suite on held-out training-role data, then the eval suite).",
    )
    suite_overrides: list[str] = Field(
        default_factory=list, description="Overrides of the (first) suite, e.g. ['tasks.1.limit=50']."
    )
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _something_to_evaluate(self) -> EvalStage:
        if len(self.inputs) == 1 and (not self.suite or self.flores is not None):
            raise ValueError(
                "stages.eval: with one input (the train run) set `suite` and drop `flores`; "
                "held-out retrieval and FLORES need inputs [heldout pairs, train run]"
            )
        return self

    @property
    def suites(self) -> list[str]:
        return [self.suite] if isinstance(self.suite, str) else list(self.suite or [])


class ExportStage(_Section):
    """Export the run's best checkpoint (the latest when it never evaluated): a sentence-transformers model + card."""

    inputs: list[str] = Field(default_factory=lambda: ["train"], min_length=1, max_length=1)
    output: str = "model"


def output_problem(output: str) -> str | None:
    """Why `output` cannot be a stage's output folder (a stage deletes it before it reruns), or None."""
    path = Path(output)
    if path.is_absolute() or not path.parts or ".." in path.parts or path.parts[0] == MARKERS:
        return (
            f"{output!r} must be a folder strictly inside the workdir (relative, no '..', not '.', not {MARKERS}): "
            "a stage deletes its output folder before it reruns"
        )
    return None


class Stages(_Section):
    synth: SynthStage | None = None
    pairs: PairsStage | None = None
    mine: MineStage | None = None
    train: TrainStage | None = None
    eval: EvalStage | None = None
    export: ExportStage | None = None

    @model_validator(mode="after")
    def _outputs_apart(self) -> Stages:
        """Each output lies inside the workdir and apart from every other stage's (no folder inside another)."""
        outputs = {name: Path(stage.output) for name in type(self).model_fields if (stage := getattr(self, name))}
        problems = [
            f"stages.{name}.output = {problem}" for name, p in outputs.items() if (problem := output_problem(str(p)))
        ]
        if not problems:
            names = list(outputs)
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    pa, pb = outputs[a], outputs[b]
                    if pa == pb or pa in pb.parents or pb in pa.parents:
                        problems.append(
                            f"stages.{a}.output = {str(pa)!r} and stages.{b}.output = {str(pb)!r} overlap: each stage "
                            "deletes its own output before it reruns; give them separate folders"
                        )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PipelineConfig(_Section):
    """A pipeline: a name, a work folder and its stages (run in the order synth, pairs, mine, train, eval, export)."""

    name: str
    workdir: str = Field(description="Folder holding every stage's output, e.g. runs/quickstart")
    stages: Stages
