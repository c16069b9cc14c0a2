"""Study files: a base training job, a search space over its dotted keys, how to search, and where results go.

A study YAML (`rtrain tune tuning/<study>.yaml`) validates as `StudyConfig`; a file of several
studies plus a report (`tuning/paper_ablations.yaml`) validates as `AblationsConfig`. Both forbid
unknown keys. Whether each search-space key is a real job key is checked against the base job by
`rtrain.tune.study.load_study`, which resolves the job once per candidate value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rtrain.checkpoint import SCORE
from rtrain.config.strict import StrictModel
from rtrain.synth.config import SynthConfig

DIST_KINDS = ("grid", "choice", "uniform", "loguniform", "randint", "dirichlet")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Section(StrictModel):
    """A section of the file: unknown keys are errors."""


class Distribution(_Section):
    """One search-space axis; set exactly one kind.

    - `grid: [a, b, c]`: every value, crossed with the other grid axes (Tune's grid_search).
    - `choice: [a, b]`: one value drawn per trial.
    - `uniform: [lo, hi]`, `loguniform: [lo, hi]` (lo > 0): a float drawn per trial.
    - `randint: [lo, hi]`: an integer in lo..hi, both included.
    - `dirichlet: alpha`: a Gamma(alpha, 1) draw. Give each source weight of a mix its own axis:
      the trainer normalises weights, so together they are one Dirichlet(alpha) draw of the mix.
    """

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None
    dirichlet: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        given = [k for k in DIST_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of {', '.join(DIST_KINDS)}; got {given or 'none'}")
        kind = given[0]
        if kind in ("grid", "choice") and not getattr(self, kind):
            raise ValueError(f"{kind}: [] is empty: list at least one value")
        if kind in ("uniform", "loguniform", "randint"):
            lo, hi = getattr(self, kind)
            if kind == "randint" and lo > hi:
                raise ValueError(f"randint: [{lo}, {hi}]: lo must be <= hi")
            if kind != "randint" and lo >= hi:
                raise ValueError(f"{kind}: [{lo}, {hi}]: lo must be < hi")
            if kind == "loguniform" and lo <= 0:
                raise ValueError(f"loguniform: [{lo}, {hi}]: both bounds must be > 0 (use uniform for 0)")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DIST_KINDS if getattr(self, k) is not None)

    @property
    def values(self) -> list[Any]:
        """The values a trial can get, or the bounds of a range (used to validate the job keys)."""
        kind = self.kind
        if kind == "dirichlet":
            return [1.0]
        return list(getattr(self, kind))


class SchedulerConfig(_Section):
    """Early stopping across trials. ASHA compares trials at rungs of `time_attr` (default: optimizer step)."""

    type: Literal["none", "asha", "pbt"] = "none"
    time_attr: str = Field("step", description="Reported counter the rungs are placed on.")
    grace_period: int = Field(1, ge=1, description="No trial is stopped before this many time_attr units.")
    max_t: int = Field(1_000_000, ge=1, description="Trials stop here; default: let every trial finish its plan.")
    reduction_factor: float = Field(2.0, gt=1.0, description="Keep 1 / reduction_factor of trials at each rung.")
    brackets: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _no_pbt(self) -> SchedulerConfig:
        if self.type == "pbt":
            raise ValueError(
                "scheduler.type = 'pbt' does not work with Ray Train v2 trials: PBT copies one trial's Tune "
                "checkpoint into another, but a Train run inside a trial reports metrics to Tune, not "
                "checkpoints; use 'asha' (early stopping) or 'none'"
            )
        if self.grace_period > self.max_t:
            raise ValueError(f"scheduler.grace_period={self.grace_period} exceeds max_t={self.max_t}")
        return self


class TrialResources(_Section):
    """What each trial reserves; unset fields keep the base job's `scaling` section."""

    num_workers: int | None = Field(None, ge=1, description="Ray Train workers per trial (scaling.num_workers).")
    cpus_per_worker: float | None = Field(None, gt=0.0, description="scaling.cpus_per_worker")
    use_gpu: bool | None = Field(None, description="scaling.use_gpu: one GPU per worker")
    driver_cpus: float = Field(
        0.01, gt=0.0, description="CPU reserved for the trial function that launches the TorchTrainer."
    )


class WandbSettings(_Section):
    """One W&B run per trial (rank 0 of its Train run), grouped by study; offline without WANDB_API_KEY."""

    enabled: bool | None = Field(None, description="Sets logging.wandb for every trial; None keeps the job's.")
    project: str | None = Field(None, description="Sets logging.project; None keeps the job's.")
    group: str | None = Field(None, description="W&B group; default: the study name.")


class StudyConfig(_Section):
    """One study: trials of a base job with search-space values applied as dotted-key overrides."""

    name: str = Field(pattern=NAME_PATTERN, description="Study folder name under storage_path.")
    description: str = ""
    base_job: str | dict[str, Any] = Field(
        description="A job YAML (e.g. jobs/minilm_lora.yaml, or a pipeline whose train stage is used), "
        "relative to the working directory or to this file; or an inline job mapping."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Dotted job keys set for every trial, e.g. {train.max_steps: 20}."
    )
    synth: dict[str, SynthConfig] = Field(
        default_factory=dict,
        description="Synthetic datasets generated once before the trials (cached by config under "
        "<storage_path>/_data); '{synth.NAME}' in any job value is replaced by the folder.",
    )
    search_space: dict[str, Distribution] = Field(
        min_length=1,
        description="Dotted job key -> distribution. A key without a dot names a bundle: its grid/choice "
        "values are mappings of dotted keys set together.",
    )
    search_alg: Literal["grid", "random", "optuna", "hyperopt"] = "grid"
    num_samples: int = Field(1, ge=1, description="Trials drawn (random/optuna/hyperopt) or grid repeats.")
    seed: int = Field(0, description="Seed of the search algorithm's draws.")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    metric: str = Field(
        SCORE, description="Reported metric to optimise: eval_score (the eval suite), eval/<task>, loss."
    )
    mode: Literal["max", "min"] = "max"
    target: float | None = Field(None, description="Metric value whose first crossing gives time_to_target_s.")
    trial: TrialResources = Field(default_factory=TrialResources)
    max_concurrent_trials: int = Field(1, ge=1)
    max_failures: int = Field(1, ge=0, description="Retries of a failed trial (it resumes from its last checkpoint).")
    time_budget_s: float | None = Field(None, gt=0.0, description="Stop starting and running trials after this.")
    storage_path: str = Field("runs/tune", description="The study lives in <storage_path>/<name>.")
    wandb: WandbSettings = Field(default_factory=WandbSettings)
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named variants (e.g. cluster): mappings merged over this file by `--variant NAME`.",
    )

    @field_validator("search_space")
    @classmethod
    def _keys_and_bundles(cls, space: dict[str, Distribution]) -> dict[str, Distribution]:
        for key, dist in space.items():
            if not key or any(part == "" or part.strip() != part for part in key.split(".")):
                raise ValueError(f"search_space key {key!r} is not a dotted job key like loss.temperature")
            if "." not in key:
                if dist.kind not in ("grid", "choice"):
                    raise ValueError(f"search_space.{key} is a bundle (no dot): give it grid or choice of mappings")
                bad = [v for v in dist.values if not isinstance(v, dict) or not v]
                if bad:
                    raise ValueError(
                        f"search_space.{key}: a bundle's values must be non-empty mappings of dotted job keys "
                        f"(e.g. {{loss.negatives_per_query: 3, loss.temperature: 0.02}}), got {bad[0]!r}"
                    )
        return space

    @model_validator(mode="after")
    def _alg_fits_space(self) -> StudyConfig:
        kinds = {key: dist.kind for key, dist in self.search_space.items()}
        if self.search_alg == "grid":
            other = {k: v for k, v in kinds.items() if v != "grid"}
            if other:
                raise ValueError(
                    f"search_alg 'grid' runs every grid value; {other} draw at random: "
                    "make them grid axes or set search_alg: random"
                )
        if self.search_alg in ("optuna", "hyperopt"):
            bad = {k: v for k, v in kinds.items() if v in ("grid", "dirichlet")}
            if bad:
                raise ValueError(
                    f"search_alg {self.search_alg!r} cannot sample {bad}: use choice instead of grid, "
                    "or search_alg: random for dirichlet weights"
                )
        if self.scheduler.type == "asha" and self.metric == self.scheduler.time_attr:
            raise ValueError(
                f"scheduler.time_attr and metric are both {self.metric!r}; ASHA needs a counter and a score"
            )
        return self


class StudyRef(_Section):
    """One study of an ablations file: its YAML and study-level overrides (`key=value`, `job.<key>=value`)."""

    path: str
    overrides: list[str] = Field(default_factory=list)


class AblationStudies(_Section):
    """The three studies behind the method's three findings."""

    negatives: StudyRef = Field(description="Sweeps loss.negatives_per_query (0 = in-batch negatives only).")
    diversity: StudyRef = Field(description="Crosses data.num_tasks with data.num_languages at a fixed budget.")
    data_scale: StudyRef = Field(description="Sweeps data.max_rows in a geometric series.")


class AblationsConfig(_Section):
    """Run several studies in turn, then write one report that tests the method's findings on their numbers."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    studies: AblationStudies
    variant: str | None = Field(None, description="The variant of every study to run (e.g. cluster).")
    storage_path: str = Field("runs/tune", description="Studies live in <storage_path>/<name>/<study>.")
    report_dir: str = Field(description="Folder for the report: README.md, PNG plots and each study's CSV.")
    compare_base: bool = Field(True, description="Score the untrained base model with the same eval suite.")
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
