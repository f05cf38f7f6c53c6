"""The bundle's own unrolled model with a SOFTMAX (or LOGISTIC) appended: what MediaPipe's TextClassifier runs.

MediaPipe reports a text model's output tensor as its scores without a softmax, and refuses models
with more than one subgraph (the loop form's WHILE has three). So the export takes the unrolled
bundle's flatbuffer as it is (same weight buffers, byte for byte, same precision) and appends one
SOFTMAX operator after the classification logits, which becomes the only output. Nothing is
reconverted: no TensorFlow, no checkpoint, no second chance for the weights to change.
"""

from __future__ import annotations

from ..contract import SIGNATURE_NAME, task_contract
from ..errors import BundleError

PROBABILITIES = "probabilities"
_LOGITS = task_contract("text-classification").output_names[0]


def with_probability_output(model_bytes: bytes, multi_label: bool = False) -> bytes:
    """`model_bytes` with softmax(logits) (sigmoid if `multi_label`) as the one output of the graph and signature.

    The same activation the runtime applies to the logits (tasks.TextClassifier).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    if len(model.subgraphs) != 1:
        raise BundleError(f"the model has {len(model.subgraphs)} subgraphs; MediaPipe runs single-subgraph text "
                          "models only (convert with {graph} unrolled)", options=("graph",))
    graph = model.subgraphs[0]
    signature = next((s for s in model.signatureDefs or [] if _text(s.signatureKey) == SIGNATURE_NAME), None)
    if signature is None:
        raise BundleError(f"the model has no {SIGNATURE_NAME} signature")
    outputs = {_text(item.name): item for item in signature.outputs}
    if set(outputs) != {_LOGITS}:
        raise BundleError(f"the model's outputs are {sorted(outputs)}; the MediaPipe export needs {_LOGITS} only")
    logits_index = outputs[_LOGITS].tensorIndex
    logits = graph.tensors[logits_index]
    if logits.type != schema.TensorType.FLOAT32 or len(logits.shape) != 2:
        raise BundleError("the model's logits are not a float32 [batch, labels] tensor; MediaPipe cannot read them")

    probabilities = schema.TensorT()
    probabilities.name = f"{SIGNATURE_NAME}_{PROBABILITIES}:0".encode()
    probabilities.type = schema.TensorType.FLOAT32
    probabilities.shape = list(logits.shape)
    if logits.shapeSignature is not None:
        probabilities.shapeSignature = list(logits.shapeSignature)
    probabilities.buffer = _empty_buffer(model, schema)
    graph.tensors.append(probabilities)
    probabilities_index = len(graph.tensors) - 1

    activation = schema.OperatorT()
    activation.inputs = [logits_index]
    activation.outputs = [probabilities_index]
    if multi_label:
        activation.opcodeIndex = _opcode(model, schema, schema.BuiltinOperator.LOGISTIC)
    else:
        activation.opcodeIndex = _opcode(model, schema, schema.BuiltinOperator.SOFTMAX)
        activation.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
        activation.builtinOptions = schema.SoftmaxOptionsT()
        activation.builtinOptions.beta = 1.0
    graph.operators.append(activation)
    graph.outputs = [probabilities_index]

    output = schema.TensorMapT()
    output.name = PROBABILITIES.encode()
    output.tensorIndex = probabilities_index
    signature.outputs = [output]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _opcode(model, schema, builtin: int) -> int:
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _empty_buffer(model, schema) -> int:
    """An empty buffer for the activation tensor: TFLite's convention is buffer 0, kept empty."""
    first = model.buffers[0] if model.buffers else None
    if first is not None and (first.data is None or len(first.data) == 0) and not first.offset:
        return 0
    model.buffers.append(schema.BufferT())
    return len(model.buffers) - 1
