"""The SA2SR emotion regressor: shapes, lengths and masks carried through every block."""

from __future__ import annotations

import pytest
import torch

from emovox.heads.regressor import (EmotionRegressor, MaskedConv1d, RegressorConfig, masked_normalize,
                                    mean_var_pool)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kernel,stride", [(6, 3), (3, 2)])
def test_masked_conv_lengths_and_zero_padding(kernel, stride):
    torch.manual_seed(0)
    conv = MaskedConv1d(8, 5, kernel, stride)
    x = torch.randn(3, 40, 8, generator=_gen())
    lengths = torch.tensor([40, 17, 1])
    y, out_len = conv(x, lengths)
    expect = [-(-n // stride) for n in (40, 17, 1)]  # ceil
    assert out_len.tolist() == expect
    assert y.shape == (3, -(-40 // stride), 5)
    for i, n in enumerate(expect):
        assert torch.all(y[i, n:] == 0)
        assert y[i, :n].abs().sum() > 0


def test_masked_conv_ignores_what_is_in_the_padding():
    torch.manual_seed(0)
    conv = MaskedConv1d(4, 6, 6, 3)
    x = torch.randn(1, 30, 4, generator=_gen())
    lengths = torch.tensor([20])
    y1, _ = conv(x, lengths)
    x2 = x.clone()
    x2[:, 20:] = 100.0
    y2, _ = conv(x2, lengths)
    assert torch.allclose(y1, y2)


def test_masked_normalize_statistics():
    x = torch.randn(2, 12, 3, generator=_gen()) * 4 + 7
    lengths = torch.tensor([12, 5])
    y = masked_normalize(x, lengths)
    for i, n in enumerate((12, 5)):
        v = y[i, :n]
        assert torch.allclose(v.mean(0), torch.zeros(3), atol=1e-5)
        assert torch.allclose(v.var(0, unbiased=False), torch.ones(3), atol=1e-3)
        assert torch.all(y[i, n:] == 0)


def test_mean_var_pool_uses_valid_frames_only():
    x = torch.zeros(1, 6, 2)
    x[0, :4, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    x[0, 4:] = 50.0
    pooled = mean_var_pool(x, torch.tensor([4]))
    assert pooled.shape == (1, 4)
    assert pooled[0, 0].item() == pytest.approx(2.5)
    assert pooled[0, 2].item() == pytest.approx(1.25)  # population variance of 1..4
    assert pooled[0, 1].item() == 0.0 and pooled[0, 3].item() == 0.0


def test_regressor_shapes_defaults_and_padding_invariance():
    torch.manual_seed(0)
    reg = EmotionRegressor(32).eval()
    c = reg.cfg
    assert (c.kernels, c.strides, c.heads, c.channels, c.negative_slope, c.outputs) == ((6, 3), (3, 2), 4, 64, 0.3, 3)
    assert reg.attention.num_heads == 4 and reg.attention.embed_dim == 64
    assert reg.out.in_features == 128
    states = torch.randn(3, 50, 32, generator=_gen())
    lengths = torch.tensor([50, 23, 4])
    out = reg(states, lengths)
    assert out.shape == (3, 3)
    frames, flen = reg.frames(states, lengths)
    assert frames.shape == (3, EmotionRegressor.output_frames(50), 64)
    assert flen.tolist() == [EmotionRegressor.output_frames(n) for n in (50, 23, 4)]
    # an item alone (no padding) gives the same output as inside the padded batch
    for i, n in enumerate(lengths.tolist()):
        alone = reg(states[i:i + 1, :n], torch.tensor([n]))
        assert torch.allclose(alone, out[i:i + 1], atol=1e-5), i
    # garbage in the padding changes nothing
    noisy = states.clone()
    noisy[1, 23:] = 1e3
    assert torch.allclose(reg(noisy, lengths), out, atol=1e-5)


def test_regressor_categorical_outputs_and_gradients():
    torch.manual_seed(0)
    reg = EmotionRegressor(16, RegressorConfig(outputs=8))
    states = torch.randn(4, 30, 16, requires_grad=True)
    logits = reg(states, torch.tensor([30, 30, 12, 7]))
    assert logits.shape == (4, 8)
    logits.logsumexp(-1).sum().backward()
    assert states.grad is not None and states.grad[2, 12:].abs().sum() == 0
    assert states.grad[2, :12].abs().sum() > 0
