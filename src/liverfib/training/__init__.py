"""Training: wires data, preprocessing, models and evaluation together (like pipeline.py)."""
