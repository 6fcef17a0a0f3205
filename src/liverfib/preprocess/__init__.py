"""Preprocess floor: pure transforms on arrays / images (no I/O)."""

from liverfib.preprocess.fan import FanGeometry, detect_fan, find_overlay_text

__all__ = ["FanGeometry", "detect_fan", "find_overlay_text"]
