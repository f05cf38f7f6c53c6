"""The Hugging Face ALBERT weight names and shapes: the one table everything that reads weights uses.

The checkpoint's shape check, the graph's weight groups and layer functions, the pruned-head
slicing and compress's pruning and importance gates all name weights through these Modules, so a
renamed weight in a future transformers is a one-line change here and fails tests/test_weights.py
(which compares the table with the state_dict of each supported transformers class).

Names are as the converter holds them: without the "albert." prefix (BASE_MODEL_PREFIX) that task
models put before the encoder's and the pooler's names; the shared layer's names are relative to
SHARED_LAYER_PREFIX. Shapes are functions of a config: the converter's AlbertConfigView or a
transformers AlbertConfig (the same field names). No torch, TensorFlow or numpy here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Tuple

# A task model (AlbertFor...) holds AlbertModel as `.albert`: its state_dict keys carry this
# prefix on everything but the task head (classifier, qa_outputs).
BASE_MODEL_PREFIX = "albert."
# The one shared layer (num_hidden_groups = inner_group_num = 1), as a module path of AlbertModel.
SHARED_LAYER_PATH = "encoder.albert_layer_groups.0.albert_layers.0"
SHARED_LAYER_PREFIX = SHARED_LAYER_PATH + "."

TABLE, LINEAR, NORM = "table", "linear", "norm"


@dataclass(frozen=True)
class Module:
    """One torch module of the Hugging Face ALBERT: its name and its parameters' shapes.

    TABLE: an embedding, weight only [rows, E]. LINEAR: weight [out, in] (HF layout) and bias [out].
    NORM: a LayerNorm, weight (gamma) and bias (beta) [D].
    """

    name: str
    kind: str
    size: Callable[[Any], Tuple[int, ...]]  # the weight's shape, from a config

    @property
    def weight(self) -> str:
        return f"{self.name}.weight"

    @property
    def bias(self) -> str:
        return f"{self.name}.bias"

    def shapes(self, config: Any) -> Dict[str, Tuple[int, ...]]:
        """{parameter name: shape} of this module for `config`."""
        weight = tuple(int(n) for n in self.size(config))
        if self.kind == TABLE:
            return {self.weight: weight}
        return {self.weight: weight, self.bias: weight[:1]}


def _square(config) -> Tuple[int, int]:
    return config.hidden_size, config.hidden_size


def _hidden(config) -> Tuple[int]:
    return (config.hidden_size,)


def _labels_by_hidden(config) -> Tuple[int, int]:
    return config.num_labels, config.hidden_size


# -- the factorized embedding: tables and LayerNorm at width E, then the E -> H projection ----------
WORD_EMBEDDINGS = Module("embeddings.word_embeddings", TABLE, lambda c: (c.vocab_size, c.embedding_size))
POSITION_EMBEDDINGS = Module("embeddings.position_embeddings", TABLE,
                             lambda c: (c.max_position_embeddings, c.embedding_size))
TOKEN_TYPE_EMBEDDINGS = Module("embeddings.token_type_embeddings", TABLE, lambda c: (c.type_vocab_size, c.embedding_size))
EMBEDDING_NORM = Module("embeddings.LayerNorm", NORM, lambda c: (c.embedding_size,))
EMBEDDING_PROJECTION = Module("encoder.embedding_hidden_mapping_in", LINEAR, lambda c: (c.hidden_size, c.embedding_size))
EMBEDDING_MODULES = (WORD_EMBEDDINGS, POSITION_EMBEDDINGS, TOKEN_TYPE_EMBEDDINGS, EMBEDDING_NORM, EMBEDDING_PROJECTION)

# -- the shared layer, names relative to SHARED_LAYER_PREFIX -------------------------------------
QUERY = Module("attention.query", LINEAR, _square)
KEY = Module("attention.key", LINEAR, _square)
VALUE = Module("attention.value", LINEAR, _square)
ATTENTION_OUTPUT = Module("attention.dense", LINEAR, _square)  # reads the heads' concatenated context
ATTENTION_NORM = Module("attention.LayerNorm", NORM, _hidden)
FFN = Module("ffn", LINEAR, lambda c: (c.intermediate_size, c.hidden_size))
FFN_OUTPUT = Module("ffn_output", LINEAR, lambda c: (c.hidden_size, c.intermediate_size))  # reads the neurons
OUTPUT_NORM = Module("full_layer_layer_norm", NORM, _hidden)
SHARED_LAYER_MODULES = (QUERY, KEY, VALUE, ATTENTION_OUTPUT, ATTENTION_NORM, FFN, FFN_OUTPUT, OUTPUT_NORM)

# Where the shared layer's attention heads and FFN neurons lie: {layer-relative parameter: axis}.
# Axis 0 makes the unit (weight rows, bias); axis 1 reads it (the next dense layer's columns), so
# zero columns there discard the unit's output exactly. Pruning slices or masks along these axes.
HEAD_AXES: Dict[str, int] = {QUERY.weight: 0, QUERY.bias: 0, KEY.weight: 0, KEY.bias: 0,
                             VALUE.weight: 0, VALUE.bias: 0, ATTENTION_OUTPUT.weight: 1}
NEURON_AXES: Dict[str, int] = {FFN.weight: 0, FFN.bias: 0, FFN_OUTPUT.weight: 1}

# -- the heads, per architecture ------------------------------------------------------------------
POOLER = Module("pooler", LINEAR, _square)  # part of AlbertModel: "albert.pooler" in task models
CLASSIFIER = Module("classifier", LINEAR, _labels_by_hidden)
QA_OUTPUTS = Module("qa_outputs", LINEAR, _labels_by_hidden)  # num_labels = 2: start and end
HEAD_MODULES: Dict[str, Tuple[Module, ...]] = {
    "AlbertForSequenceClassification": (POOLER, CLASSIFIER),
    "AlbertForQuestionAnswering": (QA_OUTPUTS,),
    "AlbertForTokenClassification": (CLASSIFIER,),
    "AlbertModel": (POOLER,),
}
_TASK_HEADS = (CLASSIFIER, QA_OUTPUTS)  # outside the base model of a task model


def shapes_of(modules: Iterable[Module], config: Any, prefix: str = "") -> Dict[str, Tuple[int, ...]]:
    """{prefix + parameter name: shape} of `modules` for `config`."""
    return {prefix + name: shape for module in modules for name, shape in module.shapes(config).items()}


def expected_shapes(config: Any, architecture: str) -> Dict[str, Tuple[int, ...]]:
    """Every weight the graph reads, by Hugging Face name (prefix stripped), with its shape."""
    return {**shapes_of(EMBEDDING_MODULES, config),
            **shapes_of(SHARED_LAYER_MODULES, config, SHARED_LAYER_PREFIX),
            **shapes_of(HEAD_MODULES[architecture], config)}


def state_dict_name(name: str, architecture: str) -> str:
    """The transformers state_dict key of a (prefix-stripped) name in a model of `architecture`."""
    in_task_head = any(name.startswith(module.name + ".") for module in _TASK_HEADS)
    return name if architecture == "AlbertModel" or in_task_head else BASE_MODEL_PREFIX + name


def shared_layer_name(name: str = "", architecture: str = "AlbertForSequenceClassification") -> str:
    """The state_dict key of a shared-layer parameter in a transformers model (compress's models
    are sequence classifiers); without a name, the layer's module path."""
    return state_dict_name(SHARED_LAYER_PREFIX + name if name else SHARED_LAYER_PATH, architecture)
