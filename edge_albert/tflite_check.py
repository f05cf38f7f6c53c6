"""Check the structure of a .tflite flatbuffer before an interpreter sees it.

The TFLite interpreter trusts most of a model file: an operator input index of -1 where the
kernel expects a tensor, a WHILE whose body is its own subgraph, or a constant buffer shorter
than its tensor's shape makes it read out of bounds and die by a signal. A bundle's sha256 only
proves that the file is the one the manifest names, not that whoever wrote the manifest wrote a
sane model, so the loader runs `check_model_file` first.

The reader below follows the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) for
the fields it needs, with every offset bounds-checked; it needs neither TensorFlow nor a
generated schema module, so it works the same with ai-edge-litert, tflite-runtime and
tensorflow.lite. Field numbers are the schema's field order (vtable slot = 4 + 2 * field).
"""

from __future__ import annotations

import os
import struct
from typing import Dict, List, Optional, Set, Tuple, Union

from .errors import BundleError

FILE_IDENTIFIER = b"TFL3"
MAX_RANK = 8  # the ALBERT graphs use rank <= 4; TFLite kernels accept at most 6
MAX_TENSOR_BYTES = 1 << 32  # a shape that asks for more than 4 GiB is not a model for an edge device

# BuiltinOperator codes whose options name subgraphs.
OP_IF, OP_WHILE, OP_CALL_ONCE = 118, 119, 129
# BuiltinOptions union types of those options, and the fields holding subgraph indices.
SUBGRAPH_OPTIONS = {OP_IF: (92, "IfOptions", (0, 1)), OP_WHILE: (93, "WhileOptions", (0, 1)),
                    OP_CALL_ONCE: (103, "CallOnceOptions", (0,))}
# StableHLO ops that also name subgraphs (in builtin_options_2); this checker does not follow them.
UNCHECKED_SUBGRAPH_OPS = {174: "STABLEHLO_REDUCE", 190: "STABLEHLO_SCATTER", 198: "STABLEHLO_REDUCE_WINDOW",
                          199: "STABLEHLO_SORT", 200: "STABLEHLO_WHILE", 206: "STABLEHLO_COMPOSITE",
                          209: "STABLEHLO_CASE"}
# Inputs the kernels treat as optional (index -1 allowed): FULLY_CONNECTED and the convolutions' bias.
OPTIONAL_INPUTS = {9: {2}, 3: {2}, 4: {2}, 67: {3}}  # FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV
# TensorType -> bytes per element (None: variable-size or opaque, not checked against data).
ELEMENT_BYTES: Dict[int, Optional[float]] = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: None, 14: None,
    15: 4, 16: 2, 17: 0.5, 18: 2, 19: 0.25,
}


class _Malformed(Exception):
    """Raised inside the reader; check_model_file turns it into one BundleError line."""


class _Reader:
    """Bounds-checked access to flatbuffer tables, vectors and scalars."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def _need(self, position: int, length: int, what: str) -> None:
        if position < 0 or length < 0 or position + length > self.size:
            raise _Malformed(f"{what} at byte {position} (+{length}) lies outside the {self.size}-byte file")

    def scalar(self, fmt: str, position: int, what: str):
        self._need(position, struct.calcsize(fmt), what)
        return struct.unpack_from("<" + fmt, self.data, position)[0]

    def indirect(self, position: int, what: str) -> int:
        return position + self.scalar("I", position, what)

    def table(self, position: int, what: str) -> "_Table":
        vtable = position - self.scalar("i", position, what)
        vtable_size = self.scalar("H", vtable, f"{what} vtable")
        if vtable_size < 4 or vtable_size % 2:
            raise _Malformed(f"{what} has a vtable of {vtable_size} bytes")
        self._need(vtable, vtable_size, f"{what} vtable")
        table_size = self.scalar("H", vtable + 2, f"{what} vtable")
        self._need(position, table_size, what)
        return _Table(self, position, vtable, vtable_size, table_size, what)


class _Table:
    def __init__(self, reader: _Reader, position: int, vtable: int, vtable_size: int, table_size: int, what: str):
        self.reader, self.position, self.vtable = reader, position, vtable
        self.vtable_size, self.table_size, self.what = vtable_size, table_size, what

    def _field(self, field: int, width: int) -> Optional[int]:
        slot = 4 + 2 * field
        if slot >= self.vtable_size:
            return None
        offset = self.reader.scalar("H", self.vtable + slot, self.what)
        if offset == 0:
            return None
        if offset + width > self.table_size:
            raise _Malformed(f"{self.what} field {field} lies outside its table")
        return self.position + offset

    def scalar(self, field: int, fmt: str, default=0):
        position = self._field(field, struct.calcsize(fmt))
        return default if position is None else self.reader.scalar(fmt, position, f"{self.what} field {field}")

    def has(self, field: int) -> bool:
        return self._field(field, 4) is not None

    def _vector(self, field: int, element_size: int):
        position = self._field(field, 4)
        if position is None:
            return None, 0
        start = self.reader.indirect(position, f"{self.what} field {field}")
        length = self.reader.scalar("I", start, f"{self.what} field {field} length")
        self.reader._need(start + 4, length * element_size, f"{self.what} field {field} ({length} elements)")
        return start + 4, length

    def vector_length(self, field: int, element_size: int = 1) -> int:
        return self._vector(field, element_size)[1]

    def scalars(self, field: int, fmt: str) -> List:
        start, length = self._vector(field, struct.calcsize(fmt))
        if start is None:
            return []
        return list(struct.unpack_from(f"<{length}{fmt}", self.reader.data, start))

    def tables(self, field: int, what: str) -> List["_Table"]:
        start, length = self._vector(field, 4)
        if start is None:
            return []
        return [self.reader.table(self.reader.indirect(start + 4 * i, f"{what} {i}"), f"{what} {i}")
                for i in range(length)]

    def table_field(self, field: int, what: str) -> Optional["_Table"]:
        position = self._field(field, 4)
        if position is None:
            return None
        return self.reader.table(self.reader.indirect(position, what), what)

    def string(self, field: int) -> str:
        start, length = self._vector(field, 1)
        if start is None:
            return ""
        return bytes(self.reader.data[start:start + length]).decode("utf-8", errors="replace")


def check_model_file(path: Union[str, os.PathLike]) -> None:
    """Refuse (BundleError, one line) a .tflite file whose structure an interpreter would trust blindly."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        check_model_bytes(data)
    except _Malformed as exc:
        raise BundleError(f"{path} is not a well-formed TFLite model: {exc}; the bundle is damaged or was "
                          f"edited, convert it again") from None
    except (struct.error, RecursionError, OverflowError, MemoryError) as exc:
        raise BundleError(f"{path} is not a well-formed TFLite model ({type(exc).__name__}); convert it again") from None


def check_model_bytes(data: bytes) -> None:
    """The structural checks on a model held in memory; raises _Malformed.

    Checks run in a fixed order (buffers, subgraphs, calls, signatures, metadata), so a damaged
    file always reports the same first problem.
    """
    reader = _Reader(data)
    if reader.size < 8 or data[4:8] != FILE_IDENTIFIER:
        raise _Malformed(f"it does not carry the {FILE_IDENTIFIER.decode()} file identifier")
    model = reader.table(reader.indirect(0, "root"), "model")
    buffers = model.tables(4, "buffer")
    _check_buffer_ranges(buffers, reader.size)
    buffer_bytes = [_buffer_bytes(buffer) for buffer in buffers]
    opcodes = [max(code.scalar(0, "b"), code.scalar(3, "i")) for code in model.tables(1, "operator code")]
    subgraphs = model.tables(2, "subgraph")
    if not subgraphs:
        raise _Malformed("it has no subgraph")
    calls: Dict[int, Set[int]] = {}
    tensor_counts = []
    for g, subgraph in enumerate(subgraphs):
        counted, calls[g] = _check_subgraph(subgraph, g, buffer_bytes, opcodes, len(subgraphs), reader.size)
        tensor_counts.append(counted)
    _check_acyclic(calls)
    _check_signatures(model.tables(7, "signature"), tensor_counts)
    _check_metadata(model, len(buffers))


def _check_buffer_ranges(buffers: List[_Table], file_size: int) -> None:
    """A buffer stored outside the flatbuffer (offset/size pair) must lie inside the file."""
    for index, buffer in enumerate(buffers):
        offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
        if offset > 1 or size:  # 1 is the converter's "no data here" marker for large models
            if offset + size > file_size:
                raise _Malformed(f"buffer {index} points at bytes {offset}..{offset + size}, past the end of the file")


def _check_subgraph(subgraph: _Table, g: int, buffer_bytes: List[int], opcodes: List[int], num_subgraphs: int,
                    file_size: int) -> Tuple[int, Set[int]]:
    """Check one subgraph's tensors, inputs/outputs and operators.

    Returns its tensor count (signatures index into it) and the subgraphs it calls (checked for cycles).
    """
    where = f"subgraph {g}"
    tensors = subgraph.tables(0, f"{where} tensor")
    constant, variable = _classify_tensors(tensors, where, buffer_bytes)
    for kind, field in (("input", 1), ("output", 2)):
        for index in subgraph.scalars(field, "i"):
            if not 0 <= index < len(tensors):
                raise _Malformed(f"{where} {kind} names tensor {index}; it has {len(tensors)} tensors")
    calls: Set[int] = set()
    # Operators run in file order; the memory planner relies on each tensor being written once, by one
    # operator, before it is read. A second writer makes two tensors share arena memory (heap corruption).
    written = set(subgraph.scalars(1, "i"))
    for o, operator in enumerate(subgraph.tables(3, f"{where} operator")):
        _check_operator(operator, f"{where} operator {o}", opcodes, len(tensors), num_subgraphs, g, calls, file_size)
        _check_operator_dataflow(operator, f"{where} operator {o}", written, constant, variable)
    for index in subgraph.scalars(2, "i"):
        if index not in written and index not in constant and index not in variable:
            raise _Malformed(f"{where} output tensor {index} is never written")
    return len(tensors), calls


def _classify_tensors(tensors: List[_Table], where: str, buffer_bytes: List[int]) -> Tuple[Set[int], Set[int]]:
    """Check each tensor of a subgraph; return the indices of its constant and of its variable tensors."""
    constant, variable = set(), set()
    for t, tensor in enumerate(tensors):
        has_data, is_variable = _check_tensor(tensor, f"{where} tensor {t}", buffer_bytes)
        if has_data:
            constant.add(t)
        if is_variable:
            variable.add(t)
    return constant, variable


def _check_operator_dataflow(operator: _Table, where: str, written: Set[int], constant: Set[int],
                             variable: Set[int]) -> None:
    """An operator reads only tensors already written (or constant/variable) and writes each tensor once.

    Adds the operator's outputs and intermediates to `written`.
    """
    for index in operator.scalars(1, "i"):
        if index != -1 and index not in written and index not in constant and index not in variable:
            raise _Malformed(f"{where} reads tensor {index} before any operator writes it")
    for index in operator.scalars(2, "i") + operator.scalars(8, "i"):
        if index in variable:
            continue
        if index in written or index in constant:
            raise _Malformed(f"{where} writes tensor {index}, which is "
                             f"{'constant' if index in constant else 'already written'}")
        written.add(index)


def _check_signatures(signatures: List[_Table], tensor_counts: List[int]) -> None:
    """Each signature names an existing subgraph and maps its names to that subgraph's tensors."""
    for s, signature in enumerate(signatures):
        g = signature.scalar(4, "I")
        if g >= len(tensor_counts):
            raise _Malformed(f"signature {s} names subgraph {g}; the model has {len(tensor_counts)}")
        for field in (0, 1):
            for tensor_map in signature.tables(field, f"signature {s} tensor map"):
                index = tensor_map.scalar(1, "I")
                if index >= tensor_counts[g]:
                    raise _Malformed(f"signature {s} maps {tensor_map.string(0)!r} to tensor {index}; subgraph {g} "
                                     f"has {tensor_counts[g]}")


def _check_metadata(model: _Table, num_buffers: int) -> None:
    """The model's metadata entries name existing buffers."""
    for index in model.scalars(5, "i"):
        if not 0 <= index < num_buffers:
            raise _Malformed(f"metadata buffer {index} does not exist ({num_buffers} buffers)")
    for m, metadata in enumerate(model.tables(6, "metadata")):
        if metadata.scalar(1, "I") >= num_buffers:
            raise _Malformed(f"metadata {m} names buffer {metadata.scalar(1, 'I')} ({num_buffers} buffers)")


def _buffer_bytes(buffer: _Table) -> int:
    """Bytes of constant data a buffer holds (inline data or an offset/size pair)."""
    inline = buffer.vector_length(0)
    if inline:
        return inline
    offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
    return size if offset > 1 else 0


def _check_tensor(tensor: _Table, where: str, buffer_bytes: List[int]) -> Tuple[bool, bool]:
    """Check one tensor; return whether it holds constant data and whether it is a variable."""
    shape = tensor.scalars(0, "i")
    signature = tensor.scalars(7, "i")
    dtype = tensor.scalar(1, "b")
    if dtype not in ELEMENT_BYTES:
        raise _Malformed(f"{where} has unknown type {dtype}")
    if len(shape) > MAX_RANK or len(signature) > MAX_RANK:
        raise _Malformed(f"{where} has rank {max(len(shape), len(signature))}; at most {MAX_RANK} is supported")
    if any(d < 0 for d in shape):
        raise _Malformed(f"{where} has shape {shape}; dimensions must be >= 0")
    if signature and (len(signature) != len(shape) or any(d < -1 for d in signature)
                      or any(s not in (-1, d) for s, d in zip(signature, shape))):
        raise _Malformed(f"{where} has shape signature {signature}, which does not match its shape {shape}")
    elements = 1
    for d in shape:
        elements *= d
    size = ELEMENT_BYTES[dtype]
    if size is not None and elements * size > MAX_TENSOR_BYTES:
        raise _Malformed(f"{where} has shape {shape}: {elements * size:.0f} bytes, more than {MAX_TENSOR_BYTES}")
    buffer = tensor.scalar(2, "I")
    if buffer >= len(buffer_bytes):
        raise _Malformed(f"{where} names buffer {buffer}; the model has {len(buffer_bytes)}")
    have = buffer_bytes[buffer]
    if have and size is not None:
        # Sub-byte types (int4, int2) may be stored packed or one element per byte.
        expected = {elements, -(-elements * int(size * 4) // 4)} if size < 1 else {elements * size}
        if have not in expected:
            raise _Malformed(f"{where} has shape {shape} ({elements} elements) but its buffer {buffer} holds "
                             f"{have} bytes")
    if tensor.has(6):
        raise _Malformed(f"{where} is sparse; edge-albert bundles have dense tensors only")
    quantization = tensor.table_field(4, f"{where} quantization")
    if quantization is not None:
        scales = quantization.vector_length(2, 4)
        zero_points = quantization.vector_length(3, 8)
        if zero_points and zero_points != scales:
            raise _Malformed(f"{where} has {scales} quantization scales but {zero_points} zero points")
        if scales > 1:
            axis = quantization.scalar(6, "i")
            if not 0 <= axis < len(shape) or shape[axis] != scales:
                raise _Malformed(f"{where} has {scales} per-channel scales along axis {axis} of shape {shape}")
    return bool(have), bool(tensor.scalar(5, "B"))


def _check_operator(operator: _Table, where: str, opcodes: List[int], num_tensors: int, num_subgraphs: int,
                    subgraph: int, calls: Set[int], file_size: int) -> None:
    opcode_index = operator.scalar(0, "I")
    if opcode_index >= len(opcodes):
        raise _Malformed(f"{where} has opcode {opcode_index}; the model has {len(opcodes)} operator codes")
    code = opcodes[opcode_index]
    if code in UNCHECKED_SUBGRAPH_OPS:
        raise _Malformed(f"{where} is {UNCHECKED_SUBGRAPH_OPS[code]}, an operator edge-albert bundles never contain")
    optional = OPTIONAL_INPUTS.get(code, set())
    for position, index in enumerate(operator.scalars(1, "i")):
        if index == -1 and position in optional:
            continue
        if not 0 <= index < num_tensors:
            raise _Malformed(f"{where} (builtin op {code}) input {position} names tensor {index}; valid are "
                             f"0..{num_tensors - 1}" + (" or -1" if position in optional else ""))
    for kind, field in (("output", 2), ("intermediate", 8)):
        for position, index in enumerate(operator.scalars(field, "i")):
            if not 0 <= index < num_tensors:
                raise _Malformed(f"{where} (builtin op {code}) {kind} {position} names tensor {index}; valid are "
                                 f"0..{num_tensors - 1}")
    if operator.vector_length(7, 1) > len(operator.scalars(1, "i")):
        raise _Malformed(f"{where} marks more mutating inputs than it has inputs")
    offset, size = operator.scalar(9, "Q"), operator.scalar(10, "Q")
    if (offset or size) and offset + size > file_size:
        raise _Malformed(f"{where} custom options point past the end of the file")
    if code in SUBGRAPH_OPTIONS:
        union_type, name, fields = SUBGRAPH_OPTIONS[code]
        options = operator.table_field(4, f"{where} options") if operator.scalar(3, "B") == union_type else None
        if options is None:
            raise _Malformed(f"{where} needs {name} naming its subgraphs")
        for field in fields:
            target = options.scalar(field, "i")
            if not 0 <= target < num_subgraphs or target == subgraph:
                raise _Malformed(f"{where} calls subgraph {target}; valid are the other subgraphs of "
                                 f"0..{num_subgraphs - 1}")
            calls.add(target)


def _check_acyclic(calls: Dict[int, Set[int]]) -> None:
    """A subgraph that (indirectly) calls itself recurses until the stack overflows."""
    state: Dict[int, int] = {}  # 1 = on the current path, 2 = done

    def visit(start: int) -> None:
        stack = [(start, iter(sorted(calls.get(start, ()))))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                raise _Malformed(f"subgraph {child} calls itself through WHILE/IF/CALL_ONCE")
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(calls.get(child, ())))))

    for node in sorted(calls):
        if node not in state:
            visit(node)
