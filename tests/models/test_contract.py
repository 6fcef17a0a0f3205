"""The shared model contract: every registered backbone gives (B, 5) finite logits, survives a
save/load round trip (fp16 storage) and is deterministic in eval mode; head and pooling variants."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from liverfib.errors import ConfigError
from liverfib.models.bundle import load_bundle, save_bundle
from liverfib.models.registry import list_models
from liverfib.models.staging import StagingNet, ordinal_to_probs

STAGES = (1, 2)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _batch(side: int = 64) -> torch.Tensor:
    return torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))


def _with_fitted_buffers(net: StagingNet) -> StagingNet:
    """Non-trivial standardisation buffers, as after training, so the round trip must keep them."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        net.feat_mean.copy_(0.1 * torch.randn(net.feat_dim, generator=g))
        net.feat_std.copy_(0.5 + torch.rand(net.feat_dim, generator=g))
    return net.eval()


def _round_trip(net: StagingNet, tmp_path: Path) -> torch.nn.Module:
    path = save_bundle(tmp_path / "m", net, task="us-staging", network={"name": "StagingNet", "args": net.config()},
                       classes=["F0", "F1", "F2", "F3", "F4"])
    return StagingNet.from_bundle(load_bundle(path))


@pytest.mark.parametrize("backbone", list_models())
def test_backbone_contract(backbone: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _with_fitted_buffers(StagingNet(backbone, pretrained=False, feature_stages=STAGES))
    x = _batch()

    assert net.pooled_features(x).shape == (2, net.feat_dim)
    with torch.inference_mode():
        out = net(x)
        again = net(x)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(again, out, rtol=0, atol=0)  # eval output is deterministic

    loaded = _round_trip(net, tmp_path)
    assert not loaded.training
    assert loaded.config() == net.config()
    with torch.inference_mode():
        reloaded = loaded(x)
    # float16 storage: weights keep ~3 significant digits
    torch.testing.assert_close(reloaded, out, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("head", ["linear", "mlp", "ordinal"])
def test_heads(head: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _with_fitted_buffers(StagingNet("tf_efficientnet_lite0", head=head, pretrained=False))
    x = _batch()
    with torch.inference_mode():
        out = net(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    if head == "ordinal":  # log-probabilities of a proper, ordered distribution
        probs = out.exp()
        torch.testing.assert_close(probs.sum(1), torch.ones(2), rtol=0, atol=1e-5)
        p_gt = 1.0 - probs.cumsum(1)[:, :-1]  # P(y > k)
        assert (p_gt[:, 1:] <= p_gt[:, :-1] + 1e-6).all()
    loaded = _round_trip(net, tmp_path)
    assert loaded.head_kind == head
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), out, rtol=1e-2, atol=1e-2)


def test_ordinal_to_probs_enforces_monotone_cumulative_probabilities() -> None:
    cum = torch.tensor([[-2.0, 3.0, 0.0, 1.0], [4.0, 2.0, 0.0, -2.0]])  # row 0 is not monotone
    probs = ordinal_to_probs(cum)
    assert probs.shape == (2, 5)
    assert (probs > 0).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(2), rtol=0, atol=1e-5)
    p_gt = 1.0 - probs.cumsum(1)[:, :-1]
    expected = torch.cummin(torch.sigmoid(cum), dim=1).values
    torch.testing.assert_close(p_gt, expected, rtol=0, atol=1e-5)
    # row 0: P(y > 0) = sigmoid(-2) caps every later threshold: F1..F3 get only the clamp floor
    assert probs[0, 1:4].max() < 1e-6
    assert float(probs[0, 4]) == pytest.approx(float(torch.sigmoid(torch.tensor(-2.0))), abs=1e-6)


def test_meanstd_pooling_adds_a_std_per_stage_channel(tmp_path: Path) -> None:
    mean = StagingNet("tf_efficientnet_lite0", feature_stages=STAGES, pretrained=False)
    both = _with_fitted_buffers(
        StagingNet("tf_efficientnet_lite0", feature_stages=STAGES, pooling="meanstd", pretrained=False)
    )
    channels = sum(both.encoder.feature_info[i]["num_chs"] for i in STAGES)  # 24 + 40
    assert channels == 64
    assert both.feat_dim == mean.feat_dim + channels == 1280 + 2 * channels
    x = _batch()
    with torch.inference_mode():
        feats = both.pooled_features(x)
        out = both(x)
    assert feats.shape == (2, both.feat_dim)
    assert (feats[:, 64:128] >= 0).all()  # the std block
    loaded = _round_trip(both, tmp_path)
    assert loaded.pooling == "meanstd"
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), out, rtol=1e-2, atol=1e-2)


def test_without_feature_stages_features_are_the_pre_logits() -> None:
    for backbone in ("tf_efficientnet_lite0", "mobilenetv3_large_100"):
        net = StagingNet(backbone, pretrained=False).eval()
        with torch.inference_mode():
            assert net.pooled_features(_batch()).shape == (2, net.feat_dim)


@pytest.mark.parametrize(
    ("kw", "hint"),
    [({"head": "ordinl"}, "Did you mean 'ordinal'?"), ({"pooling": "mean_std"}, "Did you mean 'meanstd'?")],
)
def test_unknown_head_or_pooling(kw: dict, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        StagingNet("tf_efficientnet_lite0", pretrained=False, **kw)
