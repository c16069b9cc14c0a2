"""A study's search space and search algorithm as Ray Tune objects."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray import tune
from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher

from rtrain.config.load import ConfigError
from rtrain.tune.schema import Distribution, SchedulerConfig, StudyConfig
from rtrain.tune.study import bundle_label


def _gamma_sampler(alpha: float) -> Any:
    """A Tune `sample_from` drawing Gamma(alpha, 1) (one axis of a Dirichlet-distributed mix)."""

    def draw(_spec: Any) -> float:
        return float(np.random.gamma(alpha))

    return tune.sample_from(draw)


def to_domain(key: str, dist: Distribution) -> Any:
    """One axis as a Tune domain; bundle axes (no dot in the key) range over their labels."""
    values = [bundle_label(v) for v in dist.values] if "." not in key else dist.values
    kind = dist.kind
    if kind == "grid":
        return tune.grid_search(values)
    if kind == "choice":
        return tune.choice(values)
    if kind == "uniform":
        return tune.uniform(*dist.uniform)  # type: ignore[misc]
    if kind == "loguniform":
        return tune.loguniform(*dist.loguniform)  # type: ignore[misc]
    if kind == "randint":
        lo, hi = dist.randint  # type: ignore[misc]
        return tune.randint(lo, hi + 1)  # Tune's upper bound is exclusive; the study's is inclusive
    return _gamma_sampler(dist.dirichlet)  # type: ignore[arg-type]


def param_space(cfg: StudyConfig) -> dict[str, Any]:
    """The Tuner's param_space: one flat entry per search-space key."""
    return {key: to_domain(key, dist) for key, dist in cfg.search_space.items()}


def search_algorithm(cfg: StudyConfig) -> SearchAlgorithm | Searcher:
    """grid/random: Tune's BasicVariantGenerator (seeded); optuna/hyperopt: their searchers, when installed.

    The generator caps its own concurrency; Tune caps a Searcher's from TuneConfig.max_concurrent_trials.
    """
    if cfg.search_alg in ("grid", "random"):
        return BasicVariantGenerator(random_state=cfg.seed, max_concurrent=cfg.max_concurrent_trials)
    try:
        if cfg.search_alg == "optuna":
            from ray.tune.search.optuna import OptunaSearch

            searcher: Searcher = OptunaSearch(seed=cfg.seed)
        else:
            from ray.tune.search.hyperopt import HyperOptSearch

            searcher = HyperOptSearch(random_state_seed=cfg.seed)
    except (ImportError, AssertionError) as err:
        raise ConfigError(
            f"search_alg {cfg.search_alg!r} needs its package: pip install {cfg.search_alg} "
            f"(or use search_alg: random) [{err}]"
        ) from None
    return searcher


def scheduler(cfg: SchedulerConfig) -> Any:
    """ASHA over `time_attr` (metric and mode come from the TuneConfig), or None for FIFO."""
    if cfg.type == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=cfg.time_attr,
        grace_period=cfg.grace_period,
        max_t=cfg.max_t,
        reduction_factor=cfg.reduction_factor,
        brackets=cfg.brackets,
    )
