"""Ray Tune studies over rtrain jobs: search spaces, a Train run per trial, results tables, ablation reports."""

from rtrain.tune.schema import AblationsConfig, Distribution, StudyConfig
from rtrain.tune.study import Study, load_study

__all__ = ["AblationsConfig", "Distribution", "Study", "StudyConfig", "load_study"]
