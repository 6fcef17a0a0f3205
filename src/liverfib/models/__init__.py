"""Model floor: backbone registry, offline weights, staging network."""

from liverfib.models.registry import describe_models, get_spec, list_models, register_model

__all__ = ["describe_models", "get_spec", "list_models", "register_model"]
