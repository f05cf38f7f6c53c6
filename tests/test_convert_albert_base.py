"""albert-base-v2 shape (11.7M parameters): file sizes, parity at several lengths, peak memory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tests.checkpoints import BASE_SHAPE, make_albert_checkpoint

from edge_albert.converters import verify as verify_module
from edge_albert.hf.checkpoint import load_checkpoint
from edge_albert.converters.convert import convert_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    return make_albert_checkpoint(tmp_path_factory.mktemp("base") / "ckpt", shape=BASE_SHAPE, seed=7)


@pytest.fixture(scope="module")
def base_bundles(base_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("base-bundles") / "base.edgealbert"
    result = convert_checkpoint(base_checkpoint, out, quantize="fp32,dynamic-int8", max_seq_len=128)
    return {v.quantize: v for v in result.variants}


def test_fp32_file_is_about_the_parameter_bytes(base_bundles, base_checkpoint):
    parameters = load_checkpoint(base_checkpoint).parameter_count()
    assert parameters == 11_685_122
    fp32 = base_bundles["fp32"]
    assert fp32.inspection.file_bytes <= 1.03 * 4 * parameters
    # ONE copy of the shared layer: 16 tensors, about 7.1M parameters, in the WHILE body
    shared = fp32.inspection.bytes_by_part["shared_layer"]
    assert 0.99 * 4 * 7_087_104 <= shared <= 1.01 * 4 * (7_087_104 + 5 * 768 + 3072)


def test_dynamic_int8_file_is_at_most_12_5_mb(base_bundles):
    assert base_bundles["dynamic-int8"].inspection.file_bytes <= 12.5e6
    assert base_bundles["dynamic-int8"].check.label_agreement >= 0.99


def test_one_loop_file_matches_pytorch_at_lengths_8_32_128(base_bundles, base_checkpoint):
    checkpoint = load_checkpoint(base_checkpoint)
    rng = np.random.RandomState(0)
    batches = []
    for length in (8, 32, 128):
        ids = rng.randint(5, 30000, size=(2, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[1, length // 2 :] = 0
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    reference = verify_module.reference_outputs(checkpoint, batches)
    model_bytes = base_bundles["fp32"].bundle.model_path.read_bytes()
    candidate = verify_module.tflite_outputs(model_bytes, batches, ["logits"])
    for length, ref, got in zip((8, 32, 128), reference, candidate):
        diff = float(np.abs(ref["logits"] - got["logits"]).max())
        assert diff <= 1e-4, f"seq {length}: max abs logit diff {diff:.3g}"


PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=sys.argv[1], num_threads=2)
    run = interpreter.get_signature_runner("serving_default")
    ids = np.random.RandomState(0).randint(5, 30000, size=(1, 128)).astype(np.int32)
    run(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids))
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the forking pytest's peak
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(int(status["VmHWM"].split()[0]) // 1024)
    """
)


def test_loop_dynamic_int8_peaks_below_150_mb(base_bundles):
    model = base_bundles["dynamic-int8"].bundle.model_path
    output = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(model)], capture_output=True, text=True, check=True)
    peak_mb = int(output.stdout.strip().splitlines()[-1])
    print(f"peak RSS loading and running seq 128 once: {peak_mb} MB")
    assert peak_mb < 150
