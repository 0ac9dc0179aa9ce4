"""Losses: CCC against a numpy reference, masks, class-weighted cross entropy, CTC, weighted sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.train.losses import ccc, ccc_loss, class_weights, cross_entropy, ctc_loss, weighted_sum


def ccc_numpy(x: np.ndarray, y: np.ndarray) -> float:
    mx, my = x.mean(), y.mean()
    return 2 * np.mean((x - mx) * (y - my)) / (x.var() + y.var() + (mx - my) ** 2)


def test_ccc_matches_numpy_reference():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(64, 3))
    x = 0.7 * y + rng.normal(scale=0.5, size=(64, 3)) + np.array([0.2, -0.1, 0.0])
    got = ccc(torch.tensor(x), torch.tensor(y)).numpy()
    want = [ccc_numpy(x[:, k], y[:, k]) for k in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    loss = ccc_loss(torch.tensor(x), torch.tensor(y))
    assert loss.item() == pytest.approx(1 - np.mean(want), rel=1e-5)


def test_ccc_perfect_shifted_and_anti():
    y = torch.linspace(-1, 1, 10)
    assert ccc_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert ccc_loss(-y, y).item() == pytest.approx(2.0, abs=1e-6)
    # a constant bias is penalised, unlike Pearson correlation
    assert ccc_loss(y + 1.0, y).item() > 0.3


def test_ccc_loss_mask_drops_missing_targets():
    y = torch.tensor([[0.0, 1.0], [1.0, 5.0], [2.0, -3.0], [3.0, 0.0]])
    p = y.clone()
    p[0, 1] = 100.0  # wrong, but masked out
    mask = torch.tensor([[True, False], [True, True], [True, True], [True, True]])
    assert ccc_loss(p, y, mask=mask).item() == pytest.approx(0.0, abs=1e-6)
    assert ccc_loss(p, y).item() > 0.1


def test_ccc_loss_has_gradients():
    p = torch.randn(16, 3, requires_grad=True)
    ccc_loss(p, torch.randn(16, 3)).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_ccc_shape_errors():
    with pytest.raises(ValueError, match="differ"):
        ccc(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        ccc(torch.zeros(1), torch.zeros(1))


def test_class_weights_and_weighted_cross_entropy():
    w = class_weights([0, 0, 0, 1], 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    target = torch.tensor([0, 0, 1])
    plain = cross_entropy(logits, target)
    weighted = cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]))
    per = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert weighted.item() == pytest.approx(((per * torch.tensor([1.0, 1.0, 3.0])).sum() / 5).item())
    assert weighted.item() != pytest.approx(plain.item())
    assert cross_entropy(logits, torch.full((3,), -100)).item() == 0.0


def test_ctc_loss_prefers_the_right_transcript():
    T, C = 6, 4
    logits = torch.full((1, T, C), -5.0)
    for t, c in enumerate([1, 0, 2, 2, 0, 3]):  # emits 1, 2, 3 with blanks
        logits[0, t, c] = 5.0
    lp = logits.log_softmax(-1)
    lengths = torch.tensor([T])
    good = ctc_loss(lp, torch.tensor([[1, 2, 3]]), lengths, torch.tensor([3]))
    bad = ctc_loss(lp, torch.tensor([[3, 2, 1]]), lengths, torch.tensor([3]))
    assert good.item() < 0.1 < bad.item()


def test_ctc_reductions_per_character_and_per_utterance():
    torch.manual_seed(0)
    lp = torch.randn(2, 12, 5).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3, 4], [2, 3, 0, 0]])
    tl, il = torch.tensor([4, 2]), torch.tensor([12, 9])
    per = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, il, tl, reduction="none")
    assert ctc_loss(lp, targets, il, tl, reduction="utterance").item() == pytest.approx(per.mean().item())
    assert ctc_loss(lp, targets, il, tl).item() == pytest.approx((per / tl).mean().item())
    with pytest.raises(ValueError, match="reduction"):
        ctc_loss(lp, targets, il, tl, reduction="sum")


def test_weighted_sum_sa2sr_style():
    total, logs = weighted_sum({"ctc": torch.tensor(2.0), "ce": torch.tensor(0.5)}, {"ce": 200.0})
    assert total.item() == pytest.approx(102.0)
    assert logs == {"loss": pytest.approx(102.0), "loss/ctc": 2.0, "loss/ce": 0.5}
    with pytest.raises(ValueError, match="unknown"):
        weighted_sum({"ctc": torch.tensor(1.0)}, {"ce": 2.0})
