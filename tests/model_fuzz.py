"""Edits of a real model.tflite for the fuzz test: structural fields changed, bytes flipped.

Positions are found with the checker's own bounds-checked reader, so each edit says what it hits.
An edit is a list of (offset, new bytes); the worker applies it and updates the manifest's sha256.
"""

from __future__ import annotations

import random
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from edge_albert.tflite_check import _Reader, _Table

Patch = Tuple[int, bytes]
WORKER = Path(__file__).with_name("model_fuzz_worker.py")


def _field_position(table: _Table, field: int, width: int):
    return table._field(field, width)


def _vector_elements(table: _Table, field: int, size: int) -> List[int]:
    start, length = table._vector(field, size)
    return [] if start is None else [start + size * i for i in range(length)]


def structural_positions(data: bytes) -> Dict[str, List[int]]:
    """Byte offsets of int32 fields the interpreter trusts, grouped by what they are."""
    reader = _Reader(data)
    model = reader.table(reader.indirect(0, "root"), "model")
    found: Dict[str, List[int]] = {key: [] for key in (
        "operator input", "operator output", "opcode index", "tensor shape", "tensor buffer", "tensor type",
        "subgraph io", "signature tensor", "subgraph reference", "builtin code", "vtable", "buffer data length")}
    for code in model.tables(1, "opcode"):
        position = _field_position(code, 3, 4)
        if position is not None:
            found["builtin code"].append(position)
    for buffer in model.tables(4, "buffer"):
        start, length = buffer._vector(0, 1)
        if start is not None and length:
            found["buffer data length"].append(start - 4)
    for g, subgraph in enumerate(model.tables(2, "subgraph")):
        found["subgraph io"] += _vector_elements(subgraph, 1, 4) + _vector_elements(subgraph, 2, 4)
        for tensor in subgraph.tables(0, "tensor"):
            found["tensor shape"] += _vector_elements(tensor, 0, 4)
            for key, field, width in (("tensor buffer", 2, 4), ("tensor type", 1, 1)):
                position = _field_position(tensor, field, width)
                if position is not None:
                    found[key].append(position)
            found["vtable"].append(tensor.vtable + 4)
        for operator in subgraph.tables(3, "operator"):
            found["operator input"] += _vector_elements(operator, 1, 4)
            found["operator output"] += _vector_elements(operator, 2, 4)
            position = _field_position(operator, 0, 4)
            if position is not None:
                found["opcode index"].append(position)
            if operator.scalar(3, "B") == 93:  # WhileOptions
                options = operator.table_field(4, "options")
                found["subgraph reference"] += [p for p in (_field_position(options, 0, 4),
                                                            _field_position(options, 1, 4)) if p is not None]
            found["vtable"].append(operator.vtable + 4)
    for signature in model.tables(7, "signature"):
        for field in (0, 1):
            for tensor_map in signature.tables(field, "map"):
                position = _field_position(tensor_map, 1, 4)
                if position is not None:
                    found["signature tensor"].append(position)
    return found


def _int32_values(rng: random.Random, current: int) -> int:
    return rng.choice([-1, -1, -2, 0, 1, current + 1, current - 1, 2 ** 31 - 1, -2 ** 31, 1000, 65536,
                       rng.randrange(0, 300)])


def make_edits(data: bytes, count: int, seed: int = 0) -> List[Tuple[str, List[Patch]]]:
    """`count` edits: most change one structural field, the rest flip bytes in the structure or anywhere."""
    rng = random.Random(seed)
    positions = structural_positions(data)
    kinds = [key for key, found in positions.items() if found]
    data_ranges_end = len(data)
    edits: List[Tuple[str, List[Patch]]] = []
    while len(edits) < count:
        roll = rng.random()
        if roll < 0.7:
            kind = rng.choice(kinds)
            position = rng.choice(positions[kind])
            if kind == "tensor type":
                edits.append((kind, [(position, bytes([rng.randrange(0, 24)]))]))
                continue
            if kind == "vtable":
                edits.append((kind, [(position, struct.pack("<H", rng.choice([0, 2, 4, 100, 65535])))]))
                continue
            current = struct.unpack_from("<i", data, position)[0]
            if kind == "operator input" and rng.random() < 0.4:
                value = -1  # the -1 that crashed the interpreter in issue 9
            else:
                value = _int32_values(rng, current)
            edits.append((kind, [(position, struct.pack("<i", value))]))
        elif roll < 0.9:
            # Bytes flipped among the first bytes of the file, where the converter puts the tables.
            near = [p for found in positions.values() for p in found]
            flips = [(min(len(data) - 1, max(0, rng.choice(near) + rng.randrange(-64, 64))), bytes([rng.randrange(256)]))
                     for _ in range(rng.randint(1, 4))]
            edits.append(("flipped table bytes", flips))
        else:
            flips = [(rng.randrange(0, data_ranges_end), bytes([rng.randrange(256)])) for _ in range(rng.randint(1, 8))]
            edits.append(("flipped bytes", flips))
    return edits


def run_edits(bundle: Path, edits: List[Tuple[str, List[Patch]]], work: Path, per_process: int = 40,
              env=None, only=None) -> Dict[int, str]:
    """Outcome per edit index ("ok", "error ...", "unexpected ...", or "signal N" when it killed its worker).

    A worker that dies between two edits had its heap corrupted by an earlier one; that batch runs
    again one edit per process, so each death is attributed to the edit that caused it.
    """
    import json

    work.mkdir(parents=True, exist_ok=True)
    outcomes: Dict[int, str] = {}
    pending = list(only) if only is not None else list(range(len(edits)))
    batch_number = 0
    while pending:
        batch, pending = pending[:per_process], pending[per_process:]
        edits_file = work / f"edits-{batch_number}.json"
        edits_file.write_text(json.dumps([[i, [[o, b.hex()] for o, b in edits[i][1]]] for i in batch]))
        command = [sys.executable, str(WORKER), str(bundle), str(work / f"scratch-{batch_number}"), str(edits_file)]
        try:
            process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60 * len(batch) + 60)
            stdout, returncode = process.stdout, process.returncode
        except subprocess.TimeoutExpired as exc:  # subprocess.run killed it
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            returncode = None
        batch_number += 1
        started = None
        for line in stdout.splitlines():
            if line.startswith("START "):
                started = int(line.split()[1])
            elif line.startswith("DONE "):
                _, index, outcome = line.split(" ", 2)
                outcomes[int(index)] = outcome
                started = None
        if returncode is None:
            if started is None:
                raise AssertionError(f"fuzz worker hung outside an edit: {stdout[-1000:]}")
            outcomes[started] = "hang"
            pending = [i for i in batch if i not in outcomes] + pending
            continue
        if returncode != 0:
            death = (f"signal {-returncode}" if returncode < 0 else f"exit {returncode}: {process.stderr[-500:]}")
            if started is None or per_process == 1:
                if len(batch) == 1:
                    outcomes[batch[0]] = death
                    continue
                # Died between edits (a heap corrupted earlier, found later): run each edit of the batch
                # alone to find the one that did it.
                for index in batch:
                    outcomes.pop(index, None)
                outcomes.update(run_edits(bundle, [edits[i] if i in batch else None for i in range(len(edits))],
                                          work / f"alone-{batch_number}", per_process=1, env=env, only=batch))
                continue
            outcomes[started] = "hang" if returncode == -signal.SIGALRM else death
            pending = [i for i in batch if i not in outcomes] + pending  # the rest of the batch, in a new process
    return outcomes
