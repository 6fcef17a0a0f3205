"""Inference floor: loaded models that turn images into predictions."""
