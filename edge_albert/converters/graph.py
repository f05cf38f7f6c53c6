"""ALBERT as a TensorFlow graph, built explicitly from Hugging Face weights.

Read top to bottom: the weight groups (names from hf/weights.py), the embedding, the ONE shared layer, the heads, and the
two encoder forms. The shared layer's weights are stored once in the .tflite. In the `loop`
form the layer runs inside a tf.while_loop (one WHILE op) whose body holds the weights as its
own constants, so XNNPACK packs them once at run time, fp16 ones included (their DEQUANTIZE
stays in the body); the `unrolled` form captures single constants in num_hidden_layers calls
(needed for full-int8 calibration and for delegates that cannot run WHILE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from ..contract import INPUT_NAMES, TASKS
from ..early_exit import CALLS_OUTPUT, ExitRule
from ..quantization import DEFAULT_GRAPH_FORM, DEFAULT_MAX_SEQ_LEN, FLOAT_MASK_BIAS, GRAPH_FORMS, LOOP, UNROLLED
from ..hf.checkpoint import AlbertCheckpoint
from ..hf.quiet import import_tensorflow
from ..hf.weights import (ATTENTION_NORM, ATTENTION_OUTPUT, CLASSIFIER, EMBEDDING_MODULES, EMBEDDING_NORM,
                      EMBEDDING_PROJECTION, FFN, FFN_OUTPUT, HEAD_MODULES, KEY, OUTPUT_NORM, POOLER,
                      POSITION_EMBEDDINGS, QA_OUTPUTS, QUERY, SHARED_LAYER_MODULES, SHARED_LAYER_PREFIX,
                      TOKEN_TYPE_EMBEDDINGS, VALUE, WORD_EMBEDDINGS, Module)

# The names (inputs, outputs per task) and the mask bias per mode come from the contract and the
# modes table; re-exported here for the graph's readers.
OUTPUT_NAMES: Dict[str, tuple] = {task: spec.output_names for task, spec in TASKS.items()}


@dataclass(frozen=True)
class GraphOptions:
    form: str = DEFAULT_GRAPH_FORM
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN
    mask_bias: float = FLOAT_MASK_BIAS
    # Loop form, text classification only: stop each row's loop when this rule fires. The rule's
    # value becomes a scalar signature input (the manifest holds the converted default).
    early_exit: Optional[ExitRule] = None


def output_names(task: str, early_exit: Optional[ExitRule] = None) -> tuple:
    """The signature's output names: the task's, plus the calls run per row for early exit."""
    return OUTPUT_NAMES[task] + ((CALLS_OUTPUT,) if early_exit is not None else ())


def _weight_groups(checkpoint: AlbertCheckpoint) -> Dict[str, Dict[str, np.ndarray]]:
    """Split the checkpoint's tensors into embedding, shared layer and head, keyed by HF name
    (the shared layer's relative to SHARED_LAYER_PREFIX, as in a transformers AlbertLayer)."""
    w = checkpoint.weights

    def group(modules, prefix: str = "") -> Dict[str, np.ndarray]:
        return {name: w[prefix + name] for module in modules for name in module.shapes(checkpoint.config)}

    return {"embedding": group(EMBEDDING_MODULES),
            "shared_layer": group(SHARED_LAYER_MODULES, SHARED_LAYER_PREFIX),
            "head": group(HEAD_MODULES[checkpoint.architecture])}


# -- the layers, as functions of tensors and weights (unit-tested against transformers) --------


@dataclass(frozen=True)
class LayerDims:
    """What a shared layer needs besides its weights, from the checkpoint's config."""

    num_heads: int
    head_size: int
    hidden: int
    eps: float
    activation: str

    @classmethod
    def of(cls, config) -> "LayerDims":
        """From an AlbertCheckpoint's config or a transformers AlbertConfig.

        Pruned heads (PRUNED_HEADS_KEY) are already sliced out of the weights: fewer heads, same head size.
        """
        kept_heads = getattr(config, "kept_heads", None)
        num_heads = len(kept_heads) if kept_heads is not None else config.num_attention_heads
        return cls(num_heads, config.hidden_size // config.num_attention_heads, config.hidden_size,
                   config.layer_norm_eps, config.hidden_act)


def _tf():
    return import_tensorflow()


def dense(x, kernel, bias):
    """x[..., in] @ kernel[out, in]^T + bias -> [..., out]: Hugging Face layout, lowered to FULLY_CONNECTED."""
    tf = _tf()
    in_features = kernel.shape[1]
    flat = tf.reshape(x, [-1, in_features])
    out = tf.matmul(flat, kernel, transpose_b=True) + bias
    return tf.reshape(out, tf.concat([tf.shape(x)[:-1], [kernel.shape[0]]], axis=0))


def linear(x, weights: dict, module: Module):
    """`dense` with the module's weight and bias from `weights` (a group keyed by HF name)."""
    return dense(x, weights[module.weight], weights[module.bias])


def norm(x, weights: dict, module: Module, eps: float):
    """`layer_norm` with the module's gamma (weight) and beta (bias) from `weights`."""
    return layer_norm(x, weights[module.weight], weights[module.bias], eps)


def layer_norm(x, gamma, beta, eps: float):
    """LayerNorm over the last axis; x[..., D], gamma/beta [D]."""
    tf = _tf()
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = tf.reduce_mean(centered * centered, axis=-1, keepdims=True)
    # gamma scales the (dynamic) inverse deviation rather than the output, so the converter
    # cannot fold it into the next dense layer's weights: in the unrolled form that fold makes a
    # second copy of the query/key/value weights for the calls that follow a LayerNorm.
    return centered * (tf.math.rsqrt(variance + eps) * gamma) + beta


def embed(emb: dict, input_ids, token_type_ids, eps: float):
    """ids [batch, seq] -> hidden [batch, seq, H]: word + position + token type, LayerNorm, E -> H projection."""
    tf = _tf()
    seq_len = tf.shape(input_ids)[1]
    # Looked up with 1-D ids and reshaped back: the form of TFLite's EMBEDDING_LOOKUP, which the
    # int4 path turns this GATHER into (AI Edge Quantizer quantizes that op, not GATHER).
    table = emb[WORD_EMBEDDINGS.weight]
    words = tf.reshape(tf.gather(table, tf.reshape(input_ids, [-1])),
                       tf.concat([tf.shape(input_ids), tf.shape(table)[1:]], 0))
    # A gather (not a slice) so that dynamic-range quantization stores the table as int8.
    positions = tf.expand_dims(tf.gather(emb[POSITION_EMBEDDINGS.weight], tf.range(seq_len)), 0)
    token_types = tf.gather(emb[TOKEN_TYPE_EMBEDDINGS.weight], token_type_ids)
    x = norm(words + positions + token_types, emb, EMBEDDING_NORM, eps)
    return linear(x, emb, EMBEDDING_PROJECTION)


def attention_bias(attention_mask, mask_value: float):
    """mask [batch, seq] (1 = token) -> bias [batch, 1, 1, seq] added to the attention scores."""
    tf = _tf()
    mask = tf.cast(attention_mask, tf.float32)
    # Broadcast over heads and query positions; a reshape, since TFLite lacks new-axis slices.
    return tf.reshape((1.0 - mask) * mask_value, [tf.shape(mask)[0], 1, 1, tf.shape(mask)[1]])


def split_heads(x, num_heads: int, head_size: int):
    """[batch, seq, H] -> [batch, heads, seq, head_size]."""
    tf = _tf()
    batch, seq_len = tf.shape(x)[0], tf.shape(x)[1]
    x = tf.reshape(x, [batch, seq_len, num_heads, head_size])
    return tf.transpose(x, [0, 2, 1, 3])


def attention(hidden_states, mask_bias, layer: dict, dims: LayerDims):
    """Self-attention with its residual and LayerNorm: [batch, seq, H] -> [batch, seq, H]."""
    tf = _tf()
    batch, seq_len = tf.shape(hidden_states)[0], tf.shape(hidden_states)[1]
    query = split_heads(linear(hidden_states, layer, QUERY), dims.num_heads, dims.head_size)
    key = split_heads(linear(hidden_states, layer, KEY), dims.num_heads, dims.head_size)
    value = split_heads(linear(hidden_states, layer, VALUE), dims.num_heads, dims.head_size)
    scores = tf.matmul(query, key, transpose_b=True) * (1.0 / math.sqrt(dims.head_size)) + mask_bias
    context = tf.matmul(tf.nn.softmax(scores, axis=-1), value)  # [batch, heads, seq, head_size]
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, seq_len, dims.num_heads * dims.head_size])
    return norm(hidden_states + linear(context, layer, ATTENTION_OUTPUT), layer, ATTENTION_NORM, dims.eps)


def feed_forward(attended, layer: dict, dims: LayerDims):
    """H -> I (activation) -> H, residual and LayerNorm: [batch, seq, H] -> [batch, seq, H]."""
    ffn = linear(_activation(dims.activation)(linear(attended, layer, FFN)), layer, FFN_OUTPUT)
    return norm(ffn + attended, layer, OUTPUT_NORM, dims.eps)


def shared_layer(hidden_states, mask_bias, layer: dict, dims: LayerDims):
    """One ALBERT layer (attention + FFN); the same weights for every call. [batch, seq, H] -> same."""
    return feed_forward(attention(hidden_states, mask_bias, layer, dims), layer, dims)


def pooled(sequence_output, head: dict):
    """[batch, seq, H] -> [batch, H]: tanh(dense) of the first token."""
    return _tf().tanh(linear(sequence_output[:, 0], head, POOLER))


def classify(sequence_output, head: dict):
    """[batch, seq, H] -> logits [batch, num_labels]."""
    return linear(pooled(sequence_output, head), head, CLASSIFIER)


def task_heads(task: str, sequence_output, head: dict) -> dict:
    """The task's named outputs (contract.TASKS) from the encoder's [batch, seq, H]."""
    if task == "text-classification":
        return {"logits": classify(sequence_output, head)}
    if task == "token-classification":
        return {"logits": linear(sequence_output, head, CLASSIFIER)}
    if task == "question-answering":
        logits = linear(sequence_output, head, QA_OUTPUTS)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
    return {"last_hidden_state": sequence_output, "pooler_output": pooled(sequence_output, head)}


def unrolled_encoder(hidden_states, mask_bias, layer: dict, dims: LayerDims, depth: int):
    """`depth` calls of the shared layer, each capturing the same constants `layer`."""
    for _ in range(depth):
        hidden_states = shared_layer(hidden_states, mask_bias, layer, dims)
    return hidden_states


def loop_encoder(hidden_states, mask_bias, layer_constants, dims: LayerDims, depth: int):
    """`depth` calls of the shared layer inside one WHILE; `layer_constants()` makes its weights in the body."""
    tf = _tf()

    def body(index, states):
        # The body makes its own constants instead of capturing the outer ones: captured
        # weights become WHILE operands, and fp16 ones are then dequantized in the main graph,
        # out of XNNPACK's reach; constants of the body stay (with their DEQUANTIZE) inside it.
        return index + 1, shared_layer(states, mask_bias, layer_constants(), dims)

    _, hidden_states = tf.while_loop(
        lambda index, _: index < depth,
        body,
        [tf.constant(0), hidden_states],
        shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None, dims.hidden])],
        maximum_iterations=depth,
    )
    return hidden_states


def early_exit_encoder(hidden_states, mask_bias, exit_value, rule: ExitRule, layer_constants, head: dict,
                       dims: LayerDims, depth: int) -> dict:
    """The WHILE runs until every row's rule has fired (or `depth` calls); a row keeps the logits and
    call count of the call where its rule fired, so it gets the answer it would get alone.

    hidden [batch, seq, H] -> {"logits": [batch, num_labels], CALLS_OUTPUT: [batch] int32}.
    `layer_constants()` makes the shared layer's weights inside the body, as the plain loop does.
    """
    tf = _tf()
    batch = tf.shape(hidden_states)[0]
    num_labels = int(head[CLASSIFIER.weight].shape[0])

    def body(index, states, done, exit_logits, calls, previous, streak):
        states = shared_layer(states, mask_bias, layer_constants(), dims)
        logits = classify(states, head)
        call = index + 1
        if rule.kind == "patience":
            label = tf.argmax(logits, axis=-1, output_type=tf.int32)
            streak = tf.where(tf.equal(label, previous), streak + 1, tf.zeros_like(streak))
            previous = label
            fires = streak >= exit_value
        else:
            log_probs = tf.nn.log_softmax(logits, axis=-1)
            fires = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1) < exit_value
        fires = tf.logical_or(fires, call >= depth)
        running = tf.logical_not(done)
        exit_logits = tf.where(tf.expand_dims(running, -1), logits, exit_logits)
        calls = tf.where(running, tf.fill([batch], call), calls)
        return call, states, tf.logical_or(done, fires), exit_logits, calls, previous, streak

    state = [tf.constant(0), hidden_states, tf.zeros([batch], tf.bool), tf.zeros([batch, num_labels]),
             tf.zeros([batch], tf.int32), tf.fill([batch], -1), tf.zeros([batch], tf.int32)]
    vector = tf.TensorShape([None])
    results = tf.while_loop(
        lambda index, _states, done, *rest: tf.logical_and(index < depth, tf.logical_not(tf.reduce_all(done))),
        body,
        state,
        shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, None, dims.hidden]), vector,
                          tf.TensorShape([None, num_labels]), vector, vector, vector],
        maximum_iterations=depth,
    )
    return {"logits": results[3], CALLS_OUTPUT: results[4]}


# -- the module: constants, the encoder form, the signature ------------------------------------


@dataclass(frozen=True)
class AlbertConstants:
    """The checkpoint's weights as float32 constants named `<group>/<HF name with />`."""

    embedding: dict
    layer: dict  # made once: the unrolled form's calls all capture these
    head: dict
    layer_group: Dict[str, np.ndarray]  # the shared layer's arrays, for `layer_constants`

    @classmethod
    def of(cls, checkpoint: AlbertCheckpoint) -> "AlbertConstants":
        groups = _weight_groups(checkpoint)
        embedding = _constants(groups["embedding"], "embedding")
        layer = _constants(groups["shared_layer"], "shared_layer")
        return cls(embedding, layer, _constants(groups["head"], "head"), groups["shared_layer"])

    def layer_constants(self) -> dict:
        """The shared layer's constants made anew, in the graph being built (a loop body's own)."""
        return _constants(self.layer_group, "shared_layer")


def _constants(group: Dict[str, np.ndarray], scope: str) -> dict:
    tf = _tf()
    return {key: tf.constant(np.ascontiguousarray(value, dtype=np.float32), name=scope + "/" + key.replace(".", "/"))
            for key, value in group.items()}


def _check_options(checkpoint: AlbertCheckpoint, options: GraphOptions) -> None:
    if options.form not in GRAPH_FORMS:
        raise ValueError(f"graph form must be one of {GRAPH_FORMS}, got {options.form!r}")
    if options.early_exit is not None and (options.form != LOOP or checkpoint.task != "text-classification"):
        raise ValueError("early exit needs the loop form and a text-classification checkpoint")


def _input_signature(options: GraphOptions) -> list:
    """int32 [batch, seq] inputs: any shape in the loop form, [1, max_seq_len] in the unrolled one."""
    tf = _tf()
    shape = [None, None] if options.form == LOOP else [1, options.max_seq_len]
    return [tf.TensorSpec(shape, tf.int32, name=name) for name in INPUT_NAMES]


def build_albert_module(checkpoint: AlbertCheckpoint, options: GraphOptions):
    """Return a tf.Module whose `serving_default` tf.function maps int32 inputs to named outputs."""
    _check_options(checkpoint, options)
    dims = LayerDims.of(checkpoint.config)
    weights = AlbertConstants.of(checkpoint)
    depth = checkpoint.config.num_hidden_layers
    if options.early_exit is not None:
        return _early_exit_module(weights, dims, depth, options)
    return _task_module(weights, dims, depth, options, checkpoint.task)


def _task_module(weights: AlbertConstants, dims: LayerDims, depth: int, options: GraphOptions, task: str):
    """The plain module: embedding, the encoder in the options' form, the task's heads."""
    tf = _tf()
    mask_value = float(options.mask_bias)

    def encoder(hidden_states, mask_bias):
        if options.form == UNROLLED:
            return unrolled_encoder(hidden_states, mask_bias, weights.layer, dims, depth)
        return loop_encoder(hidden_states, mask_bias, weights.layer_constants, dims, depth)

    class AlbertModule(tf.Module):
        @tf.function(input_signature=_input_signature(options))
        def serving_default(self, input_ids, attention_mask, token_type_ids):
            sequence_output = encoder(embed(weights.embedding, input_ids, token_type_ids, dims.eps),
                                      attention_bias(attention_mask, mask_value))
            return task_heads(task, sequence_output, weights.head)

    return AlbertModule()


def _early_exit_module(weights: AlbertConstants, dims: LayerDims, depth: int, options: GraphOptions):
    """The loop-form classifier whose rows stop at the early-exit rule; its value is one more input."""
    tf = _tf()
    rule = options.early_exit
    mask_value = float(options.mask_bias)
    value_type = tf.int32 if rule.kind == "patience" else tf.float32
    signature = _input_signature(options) + [tf.TensorSpec([], value_type, name=rule.input_name)]

    class EarlyExitModule(tf.Module):
        @tf.function(input_signature=signature)
        def serving_default(self, input_ids, attention_mask, token_type_ids, exit_value):
            return early_exit_encoder(embed(weights.embedding, input_ids, token_type_ids, dims.eps),
                                      attention_bias(attention_mask, mask_value), exit_value, rule,
                                      weights.layer_constants, weights.head, dims, depth)

    return EarlyExitModule()


def _activation(name: str):
    tf = import_tensorflow()

    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "relu":
        return tf.nn.relu
    if name in ("silu", "swish"):
        return tf.nn.silu
    raise ValueError(f"unsupported activation {name!r}")
