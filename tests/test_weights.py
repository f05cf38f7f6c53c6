"""The weight table (hf/weights.py) against the transformers classes it describes.

Each supported architecture is built from a tiny AlbertConfig (random init, no network) and its
state_dict must hold exactly the table's names and shapes: a weight renamed or reshaped by a future
transformers fails here, not as a KeyError deep inside a conversion.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers

from edge_albert.converters import graph
from edge_albert.hf import weights
from edge_albert.hf.checkpoint import TASK_BY_ARCHITECTURE
from tests.checkpoints import ARCHITECTURES

# Every dimension different, so a shape that uses the wrong field cannot match by accident.
SHAPE = dict(vocab_size=41, embedding_size=6, hidden_size=20, num_attention_heads=4, intermediate_size=28,
             max_position_embeddings=33, type_vocab_size=3, num_hidden_layers=2)
NUM_LABELS = {"AlbertForQuestionAnswering": 2, "AlbertForTokenClassification": 5,
              "AlbertForSequenceClassification": 7, "AlbertModel": 2}


def _model(architecture: str):
    config = transformers.AlbertConfig(**SHAPE, num_labels=NUM_LABELS[architecture])
    torch.manual_seed(0)
    return getattr(transformers, architecture)(config).eval()


def _float_shapes(model) -> dict:
    """The state_dict as the checkpoint loader keeps it: floating-point tensors only."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if t.is_floating_point()}


def test_the_table_covers_exactly_the_supported_architectures():
    assert set(weights.HEAD_MODULES) == set(TASK_BY_ARCHITECTURE) == set(ARCHITECTURES.values())


@pytest.mark.parametrize("architecture", sorted(weights.HEAD_MODULES))
def test_table_names_and_shapes_are_the_transformers_state_dict(architecture):
    model = _model(architecture)
    table = {weights.state_dict_name(name, architecture): shape
             for name, shape in weights.expected_shapes(model.config, architecture).items()}
    assert table == _float_shapes(model)


@pytest.mark.parametrize("architecture", sorted(weights.HEAD_MODULES))
def test_graph_weight_groups_split_the_table_without_overlap(architecture):
    model = _model(architecture)
    stripped = {name[len(weights.BASE_MODEL_PREFIX):] if name.startswith(weights.BASE_MODEL_PREFIX) else name:
                t.detach().numpy() for name, t in model.state_dict().items() if t.is_floating_point()}
    checkpoint = SimpleNamespace(weights=stripped, config=model.config, architecture=architecture)
    groups = graph._weight_groups(checkpoint)
    layer_names = {weights.SHARED_LAYER_PREFIX + name for name in groups["shared_layer"]}
    names = [*groups["embedding"], *layer_names, *groups["head"]]
    assert len(names) == len(set(names))
    assert set(names) == set(weights.expected_shapes(model.config, architecture))
    # the layer functions take the shared layer group keyed as a transformers AlbertLayer is
    layer = model.get_submodule(weights.state_dict_name(weights.SHARED_LAYER_PATH, architecture))
    assert set(groups["shared_layer"]) == set(layer.state_dict())
    np.testing.assert_array_equal(groups["shared_layer"][weights.QUERY.weight],
                                  layer.attention.query.weight.detach().numpy())


def test_head_and_neuron_axes_are_the_axes_of_hidden_and_intermediate_width():
    model = _model("AlbertForSequenceClassification")
    for axes, width in ((weights.HEAD_AXES, SHAPE["hidden_size"]), (weights.NEURON_AXES, SHAPE["intermediate_size"])):
        for name, axis in axes.items():
            assert model.get_parameter(weights.shared_layer_name(name)).shape[axis] == width, name
    # the tensors that read the units (axis 1) belong to the modules compress gates
    assert {name for name, axis in weights.HEAD_AXES.items() if axis == 1} == {weights.ATTENTION_OUTPUT.weight}
    assert {name for name, axis in weights.NEURON_AXES.items() if axis == 1} == {weights.FFN_OUTPUT.weight}


def _run(layer, hidden):
    output = layer(hidden)
    return output[0] if isinstance(output, tuple) else output


def test_zeroing_a_heads_reading_columns_removes_exactly_that_head():
    """HEAD_AXES describes the layout transformers computes with: a head whose attention.dense
    columns are zero contributes nothing, whatever its query/key/value rows hold."""
    model = _model("AlbertForSequenceClassification")
    layer = model.get_submodule(weights.shared_layer_name())
    size = SHAPE["hidden_size"] // SHAPE["num_attention_heads"]
    hidden = torch.randn(2, 5, SHAPE["hidden_size"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for name, axis in weights.HEAD_AXES.items():
            if axis == 1:
                layer.get_parameter(name).narrow(axis, size, size).zero_()
        before = _run(layer, hidden)
        for name, axis in weights.HEAD_AXES.items():
            if axis == 0:
                layer.get_parameter(name).narrow(axis, size, size).normal_()
        after = _run(layer, hidden)
        assert torch.allclose(before, after, atol=1e-6)
        layer.get_parameter(weights.QUERY.weight).narrow(0, 0, size).normal_()  # head 0 still counts
        changed = _run(layer, hidden)
    assert not torch.allclose(before, changed, atol=1e-4)
