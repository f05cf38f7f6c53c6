"""A crafted model.tflite (its sha256 updated in the manifest) must not take the process down.

Hundreds of edits of a tiny real model: structural fields set to out-of-range values (operator
input -1 among them, which segfaulted the interpreter before the loader checked the flatbuffer),
and bytes flipped in the tables or anywhere. Each edit is loaded and run in a worker process;
the test fails when any worker dies by a signal, and names the edit that killed it.
"""

from __future__ import annotations

import collections
import re
import struct
from pathlib import Path

import pytest

from tests.model_fuzz import make_edits, run_edits, structural_positions
from tests.runtime_bundles import bundle_for

from edge_albert.errors import BundleError
from edge_albert.tflite_check import FILE_IDENTIFIER, _Malformed, check_model_bytes, check_model_file


@pytest.fixture(scope="module")
def classifier_bundle(tmp_path_factory) -> Path:
    return bundle_for(tmp_path_factory.mktemp("fuzz-bundles"), "text-classification")


def test_the_converters_models_pass_the_structure_check(classifier_bundle, tmp_path):
    model = classifier_bundle / "model.tflite"
    data = model.read_bytes()
    assert len(data) > 1000 and data[4:8] == FILE_IDENTIFIER
    check_model_file(model)  # raises BundleError on a structural problem
    # The same bytes cut in half fail: the check reads this model, not only its header.
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="not a well-formed TFLite model"):
        check_model_file(damaged)


def _edited(data: bytes, position: int, value: int) -> bytes:
    edited = bytearray(data)
    edited[position:position + 4] = struct.pack("<i", value)
    return bytes(edited)


@pytest.mark.parametrize("kind, value, message", [
    ("operator input", -1, r"input \d+ names tensor -1; valid are 0\.\.\d+"),
    ("operator output", -1, r"output 0 names tensor -1"),
    ("opcode index", 10_000, r"has opcode 10000"),
    ("subgraph reference", 0, r"calls subgraph 0; valid are the other subgraphs"),
    ("tensor buffer", 100_000, r"names buffer 100000"),
    ("tensor shape", 2 ** 31 - 1, r"(bytes, more than|holds \d+ bytes|does not match its shape)"),
    ("signature tensor", 5000, r"maps '\w+' to tensor 5000"),
    ("operator output", 0, r"writes tensor 0, which is already written"),
])
def test_structural_edits_are_refused_with_one_line(classifier_bundle, tmp_path, kind, value, message):
    data = (classifier_bundle / "model.tflite").read_bytes()
    positions = structural_positions(data)[kind]
    # The first position of this kind whose value the edit changes; for operator inputs, a non-optional one.
    for position in positions:
        edited = _edited(data, position, value)
        try:
            check_model_bytes(edited)
        except _Malformed as exc:
            assert re.search(message, str(exc)), str(exc)
            path = tmp_path / "model.tflite"
            path.write_bytes(edited)
            with pytest.raises(BundleError, match=f"is not a well-formed TFLite model: .*{message}"):
                check_model_file(path)
            return
    raise AssertionError(f"no {kind} edit to {value} was refused")


@pytest.mark.slow
@pytest.mark.parametrize("quantize, seed", [("fp32", 9), ("dynamic-int8", 5)])
def test_edited_models_answer_or_fail_with_one_line_never_a_signal(tmp_path_factory, tmp_path, quantize, seed):
    # On a dynamic-int8 model the fuzz found a RESHAPE whose output was redirected to another operator's
    # tensor: two writers of one tensor corrupted the heap (SIGABRT in a later malloc, after the edit had
    # "answered"), until the checker refused tensors written twice.
    bundle = bundle_for(tmp_path_factory.mktemp("fuzz-bundles"), "text-classification", quantize=quantize)
    data = (bundle / "model.tflite").read_bytes()
    edits = make_edits(data, 300, seed=seed)
    outcomes = run_edits(bundle, edits, tmp_path)
    assert sorted(outcomes) == list(range(len(edits)))
    deaths = {i: (edits[i][0], o) for i, o in outcomes.items() if o.startswith(("signal", "exit"))}
    # The structure check guarantees memory safety, not termination: a tensor pointed at another constant
    # of the same size is a well-formed model that may loop forever (a WHILE counter stepping by -1).
    # Only signed bundles (--trusted-key) keep those away; any other kind of edit must not hang.
    hangs = {i: edits[i][0] for i, o in outcomes.items() if o == "hang"}
    assert set(hangs.values()) <= {"tensor buffer"}, f"edits that hung: {hangs}"
    unexpected = {i: (edits[i][0], o) for i, o in outcomes.items() if o.startswith("unexpected")}
    assert not deaths, f"edits that killed the process: {deaths}"
    assert not unexpected, f"edits answered with something other than one EdgeAlbertError line: {unexpected}"
    by_kind = collections.Counter((edits[i][0], o.split()[0]) for i, o in outcomes.items())
    # The structural edits are mostly refused by the checker: the test exercises it, not only the weights.
    assert sum(n for (kind, result), n in by_kind.items() if result == "error") > len(edits) // 2, by_kind
