"""Explain floor: class-activation maps (pytorch-grad-cam), their faithfulness, CAM pseudo-masks."""

from liverfib.explain.cam import CAM_METHODS, CamResult, cam_statistics, compute_cams
from liverfib.explain.pseudo_masks import THRESHOLD_HELP, cam_to_mask

__all__ = ["CAM_METHODS", "CamResult", "compute_cams", "cam_statistics", "cam_to_mask", "THRESHOLD_HELP"]
