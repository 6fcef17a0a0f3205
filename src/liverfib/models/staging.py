"""Staging network: a timm backbone, multi-scale pooled features, a linear/MLP/ordinal head.

Fibrosis is a texture finding, so besides the final 1×1 features the network can pool
intermediate stages (``feature_stages``) before the head. Features are standardised with buffers
(``feat_mean``/``feat_std``) fitted on training data, so a linear head fitted outside torch
(logistic regression on frozen features) and a fine-tuned head share one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from liverfib.models.registry import get_spec
from liverfib.models.weights import timm_state_dict

__all__ = ["HEADS", "POOLINGS", "StagingNet", "ordinal_to_probs"]

HEADS = ("linear", "mlp", "ordinal")
#: Pooling of intermediate stages: mean, or mean and standard deviation (texture statistics).
POOLINGS = ("mean", "meanstd")


def ordinal_to_probs(cum_logits: torch.Tensor) -> torch.Tensor:
    """``(B, K-1)`` cumulative logits P(y > k) -> ``(B, K)`` class probabilities (CORAL-style)."""
    p_gt = torch.sigmoid(cum_logits)
    # enforce monotone P(y>0) >= P(y>1) >= ...
    p_gt = torch.cummin(p_gt, dim=1).values
    ones = torch.ones_like(p_gt[:, :1])
    zeros = torch.zeros_like(p_gt[:, :1])
    upper = torch.cat([ones, p_gt], dim=1)
    lower = torch.cat([p_gt, zeros], dim=1)
    return (upper - lower).clamp_min(1e-7)


class StagingNet(nn.Module):
    """``(B, 3, S, S)`` ImageNet-normalised images -> ``(B, K)`` class logits (log-probabilities
    for the ordinal head)."""

    def __init__(
        self,
        backbone: str = "tf_efficientnet_lite0",
        n_classes: int = 5,
        head: str = "linear",
        feature_stages: Sequence[int] = (),
        pretrained: bool = True,
        dropout: float = 0.3,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        import timm

        spec = get_spec(backbone)
        if head not in HEADS:
            from liverfib.errors import unknown_choice

            raise unknown_choice("head", head, HEADS)
        self.backbone_name = backbone
        self.head_kind = head
        self.n_classes = n_classes
        self.feature_stages = tuple(int(i) for i in feature_stages)
        if pooling not in POOLINGS:
            from liverfib.errors import unknown_choice

            raise unknown_choice("pooling", pooling, POOLINGS)
        self.pooling = pooling
        self.encoder = timm.create_model(spec.timm_name, pretrained=False, num_classes=0)
        if pretrained and spec.weight_loader is not None:
            mapped = timm_state_dict(spec.timm_name, spec.weight_loader)
            mapped = {k: v for k, v in mapped.items() if not k.startswith("classifier.")}
            self.encoder.load_state_dict(mapped, strict=True)
        channels = [self.encoder.feature_info[i]["num_chs"] for i in self.feature_stages]
        per_stage = 2 if pooling == "meanstd" else 1
        # the pre-logits width: MobileNetV3 has a conv head after its last stage (960 -> 1280)
        head_dim = getattr(self.encoder, "head_hidden_size", None) or self.encoder.num_features
        self.feat_dim = int(head_dim + per_stage * sum(channels))
        self.register_buffer("feat_mean", torch.zeros(self.feat_dim))
        self.register_buffer("feat_std", torch.ones(self.feat_dim))
        out = n_classes - 1 if head == "ordinal" else n_classes
        if head == "mlp":  # the published head: dropout -> FC -> BN -> ReLU -> FC
            self.head: nn.Module = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(self.feat_dim, 256),
                nn.BatchNorm1d(256),
                nn.ReLU(),
                nn.Linear(256, out),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feat_dim, out))

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> raw pooled features ``(B, F)`` (before standardisation)."""
        if not self.feature_stages:
            return self.encoder(x)
        final, inter = self.encoder.forward_intermediates(x, indices=list(self.feature_stages))
        pooled = [t.mean(dim=(2, 3)) for t in inter]
        if self.pooling == "meanstd":  # texture statistics: spatial std of each channel
            pooled += [t.std(dim=(2, 3)) for t in inter]
        pooled.append(self.encoder.forward_head(final, pre_logits=True))
        return torch.cat(pooled, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return (self.pooled_features(x) - self.feat_mean) / self.feat_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.features(x))
        if self.head_kind == "ordinal":
            return torch.log(ordinal_to_probs(z))
        return z

    @classmethod
    def from_config(cls, config: Any) -> StagingNet:
        """An untrained network from :meth:`config`'s dict (no ImageNet weights are loaded)."""
        return cls(config["backbone"], n_classes=config["n_classes"], head=config["head"],
                   feature_stages=config["feature_stages"], pooling=config.get("pooling", "mean"), pretrained=False)

    @classmethod
    def from_bundle(cls, bundle: Any) -> StagingNet:
        """The network a ``us-staging`` bundle describes, its weights loaded (eval mode)."""
        args = bundle.network["args"]
        return bundle.load_into(cls.from_config(args), args["backbone"])

    def config(self) -> dict:
        return {
            "backbone": self.backbone_name,
            "n_classes": self.n_classes,
            "head": self.head_kind,
            "feature_stages": list(self.feature_stages),
            "pooling": self.pooling,
        }
