"""The manifest of a converted variant (bundle format v1, docs/design.md "Bundle format v1").

Built here from what the converter knows (checkpoint, mode, inspection, verification);
`bundle.write_bundle` adds the format name, version and every file's sha256 when it writes.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Optional

import numpy as np

from ..bundle import SPIECE_FILE, TOKENIZER_FILE
from ..contract import INPUT_DTYPE, INPUT_NAMES, OUTPUT_DTYPE, SIGNATURE_NAME, task_contract
from ..early_exit import CALLS_OUTPUT, ExitRule
from ..hf.checkpoint import AlbertCheckpoint
from ..quantization import LOOP, QuantizationMode
from ..version import __version__
from .tflite import FlatbufferInspection
from .verify import VariantCheck

# The config.json fields a manifest records about the source model.
SOURCE_CONFIG_KEYS = (
    "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
)


def build_manifest(
    checkpoint: AlbertCheckpoint,
    mode: QuantizationMode,
    graph: str,
    max_seq_len: int,
    inspection: FlatbufferInspection,
    check: VariantCheck,
    forced: bool,
    accuracy: Optional[dict] = None,
    calibration: Optional[dict] = None,
    early_exit: Optional[ExitRule] = None,
) -> dict:
    """The self-describing manifest of one variant; the mode's recipe gives its mask bias and runtimes."""
    signature = _signature(checkpoint, graph, max_seq_len, early_exit)
    return {
        "task": checkpoint.task,
        "labels": checkpoint.labels,
        "max_seq_len": max_seq_len,
        "graph": graph,
        **signature,
        "signature": SIGNATURE_NAME,
        "tokenizer": {
            "type": "sentencepiece-unigram",
            "file": TOKENIZER_FILE,
            "spiece_file": SPIECE_FILE if checkpoint.spiece_model is not None else None,
            **checkpoint.tokenizer_settings,
        },
        "quantization": _quantization(mode, calibration),
        "source": _source(checkpoint),
        "inspection": inspection.to_dict(),
        "validation": {**check.to_dict(), "forced": forced, **({"accuracy": accuracy} if accuracy else {})},
        "created_by": {"package": "edge-albert", "version": __version__, "python": platform.python_version(),
                       **_library_versions()},
    }


def _signature(checkpoint: AlbertCheckpoint, graph: str, max_seq_len: int, early_exit: Optional[ExitRule]) -> dict:
    """inputs and outputs (the task contract's, shaped by the graph form), and the early-exit rule if any."""
    shape = [-1, -1] if graph == LOOP else [1, max_seq_len]
    inputs = [{"name": name, "dtype": INPUT_DTYPE, "shape": shape} for name in INPUT_NAMES]
    outputs = [{"name": name, "dtype": OUTPUT_DTYPE, "shape": _output_shape(checkpoint, name, shape)}
               for name in task_contract(checkpoint.task).output_names]
    if early_exit is None:
        return {"inputs": inputs, "outputs": outputs}
    inputs.append({"name": early_exit.input_name, "dtype": np.dtype(early_exit.input_dtype).name, "shape": []})
    outputs.append({"name": CALLS_OUTPUT, "dtype": "int32", "shape": [shape[0]]})
    return {"inputs": inputs, "outputs": outputs,
            "early_exit": {**early_exit.to_manifest(), "max_calls": checkpoint.config.num_hidden_layers}}


def _quantization(mode: QuantizationMode, calibration: Optional[dict]) -> dict:
    return {
        "mode": mode.name,
        "per_channel_dense": mode.per_channel_dense if mode.int8_weights else None,
        "attention_mask_bias": mode.mask_bias,
        "note": None,
        "min_runtime": mode.runtimes(),
        **({"calibration": calibration} if calibration else {}),
    }


def _source(checkpoint: AlbertCheckpoint) -> dict:
    config = checkpoint.config
    return {
        "architecture": checkpoint.architecture,
        "weights_file": checkpoint.weights_file.name,
        "weights_sha256": checkpoint.weights_sha256,
        "parameters": checkpoint.parameter_count(),
        "problem_type": checkpoint.problem_type,
        "config": {
            **{key: getattr(config, key) for key in SOURCE_CONFIG_KEYS},
            **({"pruned_heads": list(config.pruned_heads)} if config.pruned_heads else {}),
        },
    }


def _output_shape(checkpoint: AlbertCheckpoint, name: str, input_shape: list) -> list:
    """[batch] or [batch, seq] by the contract's per-token/per-sequence split, then the width."""
    batch, seq = input_shape
    leading = [batch, seq] if name in task_contract(checkpoint.task).per_token_outputs else [batch]
    width = {"logits": [checkpoint.config.num_labels], "last_hidden_state": [checkpoint.config.hidden_size],
             "pooler_output": [checkpoint.config.hidden_size]}
    return leading + width.get(name, [])


def _library_versions() -> dict:
    """Installed versions, read from package metadata: importing TensorFlow just for its version costs seconds."""
    versions = {}
    for module_name, distributions in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("torch", ("torch",)),
                                       ("transformers", ("transformers",))):
        for distribution in distributions:
            try:
                versions[module_name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions
