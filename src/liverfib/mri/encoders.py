"""2D slice encoders shared by the MRI staging networks (multi-phase fusion and per-slice).

``(B, 3, N, N)`` in [0, 1] (three adjacent axial slices as channels) -> feature map ``(B, C, h, w)``.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["ENCODERS", "build_encoder"]

#: Encoder names accepted by :func:`build_encoder`.
ENCODERS: tuple[str, ...] = ("small_cnn", "tf_efficientnet_lite0")
EncoderName = Literal["small_cnn", "tf_efficientnet_lite0"]


def build_encoder(name: str, *, width: int = 16, pretrained: bool = False) -> Any:
    """A torch ``nn.Module`` with ``out_channels``: a small random-init CNN (``width`` base channels,
    stride 8) or timm ``tf_efficientnet_lite0`` (``pretrained`` loads the offline ImageNet weights)."""
    import torch
    from torch import nn

    from liverfib.errors import unknown_choice

    class SmallCNN(nn.Module):
        def __init__(self, w: int) -> None:
            super().__init__()

            def block(i: int, o: int, s: int) -> nn.Sequential:
                return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

            self.body = nn.Sequential(block(3, w, 2), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 2 * w, 1),
                                      block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 1))
            self.out_channels = 4 * w

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    class LiteEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            import timm

            self.body = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="")
            if pretrained:
                from liverfib.models.weights import lite_loader, timm_state_dict

                mapped = timm_state_dict("tf_efficientnet_lite0", lite_loader(0))
                self.body.load_state_dict({k: v for k, v in mapped.items() if not k.startswith("classifier.")})
            self.out_channels = self.body.num_features
            self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body.forward_features((x - self.mean) / 0.5)

    if name == "small_cnn":
        return SmallCNN(width)
    if name == "tf_efficientnet_lite0":
        return LiteEncoder()
    raise unknown_choice("MRI encoder", name, ENCODERS)
