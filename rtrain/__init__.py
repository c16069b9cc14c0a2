"""rtrain: retrofit small multilingual embedding models for retrieval on Ray Train + DeepSpeed."""

__version__ = "0.1.0"
