"""The graph's layer functions on small numpy weights, against the transformers ALBERT layer in PyTorch.

No TFLite conversion: the functions run eagerly in TensorFlow, so a wrong transpose, scale or
LayerNorm shows here in a second instead of as a verification failure after a conversion.
"""

import numpy as np
import pytest
import torch
import transformers

from edge_albert.converters import graph

BATCH, SEQ = 2, 5


@pytest.fixture(scope="module")
def albert_layer():
    from transformers.models.albert.modeling_albert import AlbertLayer

    config = transformers.AlbertConfig(vocab_size=40, embedding_size=8, hidden_size=16, num_attention_heads=4,
                                       intermediate_size=24, hidden_act="gelu_new", layer_norm_eps=1e-12,
                                       attn_implementation="eager")
    torch.manual_seed(0)
    layer = AlbertLayer(config).eval()
    with torch.no_grad():  # LayerNorms away from identity, so gamma/beta mistakes show
        for name, param in layer.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    weights = {name: value.detach().numpy().astype(np.float32) for name, value in layer.state_dict().items()}
    return config, layer, weights


def _hidden(config):
    return np.random.default_rng(1).standard_normal((BATCH, SEQ, config.hidden_size)).astype(np.float32)


def _torch_bias(mask):
    """transformers' additive 4-D mask for eager attention: 0 at tokens, a large negative at padding."""
    return torch.from_numpy((1.0 - mask[:, None, None, :]) * np.float32(np.finfo(np.float32).min))


def test_the_weight_names_the_graph_reads_are_the_transformers_layer_names(albert_layer):
    from edge_albert.hf.weights import SHARED_LAYER_MODULES, shapes_of

    config, _, weights = albert_layer
    assert {name: value.shape for name, value in weights.items()} == shapes_of(SHARED_LAYER_MODULES, config)


def test_attention_matches_transformers(albert_layer):
    config, layer, weights = albert_layer
    hidden = _hidden(config)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)
    dims = graph.LayerDims.of(config)
    ours = graph.attention(hidden, graph.attention_bias(mask, -10000.0), weights, dims).numpy()
    with torch.no_grad():
        theirs = layer.attention(torch.from_numpy(hidden), _torch_bias(mask))[0].numpy()
    valid = mask.astype(bool)  # padded query rows are not compared: nobody reads them
    np.testing.assert_allclose(ours[valid], theirs[valid], atol=1e-5)


def test_feed_forward_matches_transformers(albert_layer):
    config, layer, weights = albert_layer
    attended = _hidden(config)
    ours = graph.feed_forward(attended, weights, graph.LayerDims.of(config)).numpy()
    with torch.no_grad():
        ffn = layer.ff_chunk(torch.from_numpy(attended))
        theirs = layer.full_layer_layer_norm(ffn + torch.from_numpy(attended)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_shared_layer_matches_transformers_and_fails_with_a_wrong_weight(albert_layer):
    config, layer, weights = albert_layer
    hidden = _hidden(config)
    mask = np.ones((BATCH, SEQ), np.float32)
    dims = graph.LayerDims.of(config)
    ours = graph.shared_layer(hidden, graph.attention_bias(mask, -10000.0), weights, dims).numpy()
    with torch.no_grad():
        theirs = layer(torch.from_numpy(hidden), _torch_bias(mask))
    theirs = (theirs[0] if isinstance(theirs, tuple) else theirs).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    swapped = {**weights, "attention.query.weight": weights["attention.key.weight"]}
    wrong = graph.shared_layer(hidden, graph.attention_bias(mask, -10000.0), swapped, dims).numpy()
    assert np.abs(wrong - theirs).max() > 1e-3


def test_dense_uses_the_hugging_face_out_in_layout():
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)  # [out, in]
    x = np.ones((1, 4, 2), np.float32)
    out = graph.dense(x, kernel, np.zeros(3, np.float32)).numpy()
    assert out.shape == (1, 4, 3)
    np.testing.assert_array_equal(out[0, 0], kernel.sum(1))
