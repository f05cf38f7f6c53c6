"""int4 weights through Google's AI Edge Quantizer (`ai-edge-quantizer`, the workstation extra).

The TFLite converter has no int4; the quantizer rewrites a float .tflite instead. It walks every
subgraph (the WHILE body's shared weights become int4 and stay stored once) and quantizes
FULLY_CONNECTED and EMBEDDING_LOOKUP, but not GATHER. So before quantizing, the fp32 file's
table lookups with 1-D ids (the word and position embeddings, see graph.embed) become
EMBEDDING_LOOKUP, and each quantizable op's output tensor is named after the checkpoint weight it
reads, so a mode's recipe can give weight groups their own precision by regex over HF names.
Runs in the conversion worker, after the TFLite converter.
"""

from __future__ import annotations

import hashlib
import re
from typing import Dict, Mapping, Optional

import numpy as np

from ..errors import ConversionError
from ..quantization import CHANNELWISE, EMBEDDING_LOOKUP, FULLY_CONNECTED, WEIGHT_NAME_PREFIX, QuantizationMode
from .tflite import EMBEDDING_TABLES, MIN_QUANTIZED_ELEMENTS, _schema

QUANTIZER_DISTRIBUTION = "ai-edge-quantizer"


def _builtin(model, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _constant(model, subgraph, tensor_index: int) -> Optional[np.ndarray]:
    if tensor_index < 0:
        return None
    buffer = model.buffers[subgraph.tensors[tensor_index].buffer]
    return None if buffer.data is None or len(buffer.data) == 0 else np.asarray(buffer.data, dtype=np.uint8)


def _embedding_lookup_code(model) -> int:
    """The operator-code index of EMBEDDING_LOOKUP, added to the model if it has none."""
    schema = _schema()
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.EMBEDDING_LOOKUP:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.EMBEDDING_LOOKUP
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _is_table_lookup(model, subgraph, op) -> bool:
    """GATHER of a constant 2-D float table along axis 0 with 1-D ids: EMBEDDING_LOOKUP computes the same."""
    schema = _schema()
    if _builtin(model, op) != schema.BuiltinOperator.GATHER or len(op.inputs) != 2:
        return False
    table, ids = (subgraph.tensors[i] for i in op.inputs)
    options = op.builtinOptions
    return (_constant(model, subgraph, op.inputs[0]) is not None and table.type == schema.TensorType.FLOAT32
            and table.shape is not None and len(table.shape) == 2 and ids.shape is not None and len(ids.shape) == 1
            and (options is None or (options.axis == 0 and options.batchDims == 0)))


def _weight_names(weights: Mapping[str, np.ndarray]) -> Dict[str, str]:
    """sha256 of a weight's float32 bytes (as stored, or transposed) -> its checkpoint name."""
    names = {}
    for name, value in weights.items():
        if value.ndim == 2 and value.size >= MIN_QUANTIZED_ELEMENTS:
            for layout in (value, value.T):
                data = np.ascontiguousarray(layout, dtype=np.float32).tobytes()
                names.setdefault(hashlib.sha256(data).hexdigest(), name)
    return names


def prepare_for_quantizer(model_bytes: bytes, weights: Mapping[str, np.ndarray]) -> bytes:
    """Table lookups -> EMBEDDING_LOOKUP; quantizable ops' outputs named after their checkpoint weight."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    names = _weight_names(weights)
    uses: Dict[str, int] = {}  # the unrolled form reads each shared weight once per call; names must be unique
    lookup = None
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _is_table_lookup(model, subgraph, op):
                lookup = _embedding_lookup_code(model) if lookup is None else lookup
                op.opcodeIndex = lookup
                op.inputs = [op.inputs[1], op.inputs[0]]  # EMBEDDING_LOOKUP takes (ids, table)
                op.builtinOptionsType, op.builtinOptions = 0, None
            builtin = _builtin(model, op)
            if builtin == schema.BuiltinOperator.FULLY_CONNECTED:
                weight = op.inputs[1]
            elif builtin == schema.BuiltinOperator.EMBEDDING_LOOKUP:
                weight = op.inputs[1]
            else:
                continue
            data = _constant(model, subgraph, weight)
            name = names.get(hashlib.sha256(data.tobytes()).hexdigest()) if data is not None else None
            if name is not None:
                for output in op.outputs:
                    count = uses[name] = uses.get(name, 0) + 1
                    suffix = f"@{count - 1}" if count > 1 else ""
                    subgraph.tensors[output].name = (WEIGHT_NAME_PREFIX + name + suffix).encode()
    builder = flatbuffers.Builder(len(model_bytes))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _entry(pattern: str, operation: str, bits: int, granularity: str) -> dict:
    """One recipe entry; `pattern` is searched in the op's output name (WEIGHT_NAME_PREFIX + HF name)."""
    weight = {"num_bits": bits, "symmetric": True, "granularity": granularity, "dtype": "INT"}
    return {"regex": pattern, "operation": operation, "algorithm_key": "min_max_uniform_quantize",
            "op_config": {"weight_tensor_config": weight, "compute_precision": "INTEGER", "explicit_dequantize": False,
                          "skip_checks": False, "min_weight_elements": MIN_QUANTIZED_ELEMENTS}}


def quantizer_recipe(mode: QuantizationMode, weights: Mapping[str, np.ndarray]) -> list:
    """The mode's weight precisions as the quantizer's JSON recipe (later entries win over earlier ones),
    plus a per-channel entry for each weight whose input dimension its block size does not divide."""
    recipe = [_entry(p.pattern, p.operation, p.bits, p.granularity) for p in mode.quantizer]
    for name, value in weights.items():
        if value.ndim != 2 or value.size < MIN_QUANTIZED_ELEMENTS:
            continue
        operation = EMBEDDING_LOOKUP if name in EMBEDDING_TABLES else FULLY_CONNECTED
        precision = mode.weight_precision(name, operation, value.shape)
        if precision is not None and precision.granularity == CHANNELWISE and any(
                p.granularity != CHANNELWISE for p in mode.quantizer if p.operation == operation):
            # the quantizer's op scope is the output names, each followed by ";"
            recipe.append(_entry("^" + re.escape(WEIGHT_NAME_PREFIX + name) + r"(@\d+)?;", operation, precision.bits,
                                 CHANNELWISE))
    return recipe


def quantize_weights(float_bytes: bytes, mode: QuantizationMode, weights: Mapping[str, np.ndarray]) -> bytes:
    """The fp32 .tflite with the mode's weight precisions, by the AI Edge Quantizer."""
    try:
        from ai_edge_quantizer import quantizer
    except ImportError:
        raise ConversionError(f"{mode.name} needs the AI Edge Quantizer: pip install 'edge-albert[convert]' "
                              f"(it pins {QUANTIZER_DISTRIBUTION})") from None
    prepared = prepare_for_quantizer(float_bytes, weights)
    try:
        engine = quantizer.Quantizer(bytearray(prepared), quantizer_recipe(mode, weights))
        result = engine.quantize(enable_progress_bar=False, enable_progress_report=False)
    except Exception as exc:  # the quantizer raises ValueError, RuntimeError and others
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"AI Edge Quantizer ({mode.name}) failed: {first_line}") from None
    return bytes(result.quantized_model)
