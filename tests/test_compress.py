"""edge-albert compress on tiny random checkpoints: plans, bad input, the pruned-head representation
in transformers and the converter, end-to-end runs, provenance, interruption and resume."""

import json
import shutil

import numpy as np
import pytest
from tests.checkpoints import make_albert_checkpoint
from click.testing import CliRunner
from tests.project_data import SST2_TRAIN

from edge_albert.cli import main
from edge_albert.compress import CompressOptions, DistillConfig, compress, make_plan
from edge_albert.compress.plan import compute_ratio
from edge_albert.hf.checkpoint import PRUNED_HEADS_KEY, load_checkpoint
from edge_albert.errors import CheckpointError, CompressionError
from edge_albert.report import shape_text

TEACHER = {"num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 37, "hidden_size": 32,
           "embedding_size": 16}


@pytest.fixture(scope="module")
def sst2_files(tmp_path_factory):
    """Small SST-2 train/dev files (real text and labels) in the repository's TSV layout."""
    lines = SST2_TRAIN.read_text().splitlines()
    folder = tmp_path_factory.mktemp("sst2")
    (folder / "train.tsv").write_text("\n".join(lines[:97]) + "\n")
    (folder / "dev.tsv").write_text("\n".join([lines[0]] + lines[200:233]) + "\n")
    return folder / "train.tsv", folder / "dev.tsv"


def _options(**plan):
    distill = DistillConfig(epochs=1, batch_size=16, save_steps=2, learning_rate=1e-3, hidden_weight=0.5)
    return CompressOptions(importance_examples=32, distill=distill, **plan)


# -- plans -----------------------------------------------------------------------------------
def test_plan_keeps_the_teachers_values_unless_told():
    plan = make_plan(TEACHER, layers=2, remove_heads=1)
    assert (plan.num_hidden_layers, plan.heads, plan.intermediate_size) == (2, 3, 37)
    assert make_plan(TEACHER, heads=2, ffn=16).heads == 2


@pytest.mark.parametrize("plan, message", [
    (dict(remove_heads=4), "removing 4 attention heads, but the teacher's shared layer has 4"),
    (dict(remove_heads=7), "removing 7 attention heads"),
    (dict(heads=5), "keeping 5 attention heads"),
    (dict(heads=0), "keeping 0 attention heads"),
    (dict(ffn=0), "FFN width 0"),
    (dict(ffn=38), "FFN width 38"),
    (dict(layers=0), "depth 0"),
    (dict(layers=4), "at most as often as the teacher (3)"),
    (dict(heads=2, remove_heads=2), "not both"),
])
def test_impossible_plans_are_refused(plan, message):
    with pytest.raises(CompressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_plan(TEACHER, **plan)


EXAMPLE_TEACHER = {"num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024, "hidden_size": 256,
                   "embedding_size": 128}  # examples/sst2-albert


@pytest.mark.parametrize("speedup, shape", [
    (2.6, (3, 2, 512)),  # the committed student's budget (0.38x): its shape, depth kept before width
    (2.0, (3, 3, 576)),  # 4 calls at half width (0.505x) do not fit; 3 calls, widths shrunk together
    (1.5, (4, 3, 576)),
    (4.0, (1, 4, 960)),  # 2 calls at half width are 0.257x: one call, as wide as fits
    (20.0, (1, 1, 64)),  # below half width only at one call
])
def test_target_speedup_picks_the_deepest_plan_within_the_budget(speedup, shape):
    from edge_albert.compress.plan import plan_for_speedup

    plan = plan_for_speedup(EXAMPLE_TEACHER, speedup)
    assert (plan.num_hidden_layers, plan.heads, plan.intermediate_size) == shape
    assert compute_ratio(EXAMPLE_TEACHER, plan)["ratio"] <= 1 / speedup


@pytest.mark.parametrize("speedup, message", [(1.0, "must be above 1"), (0.5, "must be above 1"),
                                              (40.0, "the smallest student (1 call, 1 head, FFN 64) needs only 23.3x")])
def test_impossible_speedup_targets_are_refused(speedup, message):
    from edge_albert.compress.plan import plan_for_speedup

    with pytest.raises(CompressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_for_speedup(EXAMPLE_TEACHER, speedup)


def test_a_speedup_target_with_explicit_numbers_is_one_error_line(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "student"
    result = _cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, "--target-speedup", 2, "--heads", 2,
                  "--ffn", 8)
    _assert_refused(result, out, "--target-speedup chooses the calls, heads and FFN width itself; give it or --heads, "
                                 "--ffn, not both")


def test_the_chosen_plan_is_printed_and_trained(tiny_classifier_checkpoint, sst2_files, tmp_path):
    from edge_albert.compress.plan import plan_for_speedup

    expected = plan_for_speedup(load_checkpoint(tiny_classifier_checkpoint).config.raw, 2.0)
    messages = []
    options = CompressOptions(importance_examples=32, target_speedup=2.0, distill=DistillConfig(epochs=1, batch_size=32))
    result = compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "s", None, options, log=messages.append)
    assert result.plan == expected
    assert any(m.startswith(f"plan for a 2x compute target: {expected.num_hidden_layers} calls") for m in messages)


def test_compute_ratio_counts_removed_calls_heads_and_neurons():
    full = make_plan(TEACHER)
    assert compute_ratio(TEACHER, full)["ratio"] == pytest.approx(1.0)
    fewer_calls = compute_ratio(TEACHER, make_plan(TEACHER, layers=1))["ratio"]
    fewer_heads = compute_ratio(TEACHER, make_plan(TEACHER, heads=2))["ratio"]
    narrower = compute_ratio(TEACHER, make_plan(TEACHER, ffn=10))["ratio"]
    assert fewer_calls < 0.4 and fewer_heads < 1 and narrower < 1


def test_inspect_shape_line_names_calls_heads_and_ffn():
    config = {"num_hidden_layers": 2, "num_attention_heads": 4, "pruned_heads": [1, 3], "intermediate_size": 512,
              "hidden_size": 256, "embedding_size": 128}
    text = shape_text(config)
    assert "2 calls" in text and "2 of 4 heads (pruned: 1, 3)" in text and "FFN 512" in text


def test_distillation_loss_terms():
    """Soft targets vanish when the student equals the teacher, leaving (1 - alpha) x cross-entropy;
    hidden-state matching compares call i of the student with call round(i * Lt / Ls) of the teacher
    and ignores padding."""
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    from edge_albert.compress.distill import distillation_loss

    torch.manual_seed(0)
    logits = torch.randn(3, 2)
    labels = torch.tensor([0, 1, 1])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    teacher_states = tuple(torch.randn(3, 3, 4) for _ in range(5))  # embeddings + 4 calls
    same_as_teacher = (teacher_states[0], teacher_states[2], teacher_states[4])  # student calls 1, 2 -> teacher 2, 4
    config = DistillConfig(alpha=0.75, temperature=2.0, hidden_weight=1.0)
    student = SimpleNamespace(logits=logits, hidden_states=same_as_teacher)
    teacher = SimpleNamespace(logits=logits.clone(), hidden_states=teacher_states)
    loss = distillation_loss(student, teacher, labels, mask, config)
    assert torch.allclose(loss, 0.25 * F.cross_entropy(logits, labels), atol=1e-6)
    padded_only = list(same_as_teacher)
    padded_only[2] = padded_only[2].clone()
    padded_only[2][0, 2] += 100.0  # a padding position: must not count
    student.hidden_states = tuple(padded_only)
    assert torch.allclose(distillation_loss(student, teacher, labels, mask, config), loss, atol=1e-6)
    padded_only[2][1, 2] += 1.0  # a real token: must count
    student.hidden_states = tuple(padded_only)
    assert distillation_loss(student, teacher, labels, mask, config) > loss + 1e-3
    assert torch.equal(distillation_loss(student, None, labels, mask, config), F.cross_entropy(logits, labels))


# -- bad input: one error line, nothing written, nothing trained --------------------------------
def _cli(*args):
    return CliRunner().invoke(main, ["compress", *map(str, args)])


def _assert_refused(result, out, message):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], result.output
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Traceback" not in result.output
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_too_many_heads_removed_is_one_error_line(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "student"
    result = _cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, "--remove-heads", 5)
    _assert_refused(result, out, "removing 5 attention heads, but the teacher's shared layer has 4")


@pytest.mark.parametrize("flag, value, message", [("--ffn", 0, "--ffn must be an integer >= 1, not 0"),
                                                  ("--layers", 0, "--layers must be an integer >= 1, not 0"),
                                                  ("--layers", 9, "at most as often as the teacher (3)")])
def test_width_and_depth_out_of_range_are_refused(tiny_classifier_checkpoint, sst2_files, tmp_path, flag, value, message):
    out = tmp_path / "student"
    _assert_refused(_cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, flag, value), out, message)


def test_a_teacher_that_is_not_a_sequence_classifier_is_refused(sst2_files, tmp_path):
    teacher = make_albert_checkpoint(tmp_path / "qa", task="question-answering")
    out = tmp_path / "student"
    _assert_refused(_cli(teacher, "--train", sst2_files[0], "-o", out, "--layers", 1), out,
                    "is an AlbertForQuestionAnswering; compress takes a sequence classifier")


def test_labels_that_do_not_match_the_teachers_are_refused(tiny_classifier_checkpoint, tmp_path):
    data = tmp_path / "three.tsv"
    data.write_text("sentence\tlabel\na fine film\t0\na dull film\t2\n")
    out = tmp_path / "student"
    _assert_refused(_cli(tiny_classifier_checkpoint, "--train", data, "-o", out), out,
                    "label '2' is neither an index 0..1 nor one of negative, positive")
    named = tmp_path / "named.tsv"
    named.write_text("sentence\tlabel\na fine film\tgood\n")
    _assert_refused(_cli(tiny_classifier_checkpoint, "--train", named, "-o", out), out, "label 'good'")


def test_an_existing_output_is_refused_without_overwrite(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "student"
    out.mkdir()
    result = _cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out)
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "--batch-size must be an integer >= 1, not 0"),
    ("--batch-size", "-4", "--batch-size must be an integer >= 1, not -4"),
    ("--epochs", "nan", "--epochs must be a number > 0, not nan"),
    ("--epochs", "-1", "--epochs must be a number > 0, not -1.0"),
    ("--learning-rate", "nan", "--learning-rate must be a number > 0, not nan"),
    ("--learning-rate", "-0.1", "--learning-rate must be a number > 0"),
    ("--importance-examples", "-3", "--importance-examples must be an integer >= 1, not -3"),
    ("--importance-examples", "0", "--importance-examples must be an integer >= 1, not 0"),
    ("--max-seq-len", "0", "--max-seq-len must be an integer >= 1, not 0"),
    ("--max-length", "0", "--max-seq-len must be an integer >= 1, not 0"),  # the old spelling, a hidden alias
    ("--alpha", "1.5", "--alpha must be a number in [0, 1], not 1.5"),
    ("--alpha", "-0.1", "--alpha must be a number in [0, 1]"),
    ("--temperature", "inf", "--temperature must be a number > 0, not inf"),
    ("--hidden-weight", "nan", "--hidden-weight must be a number >= 0, not nan"),
    ("--target-speedup", "nan", "--target-speedup must be a number > 1, not nan"),
    ("--max-train-examples", "0", "--max-train-examples must be an integer >= 1, not 0"),
])
def test_every_setting_is_checked_before_any_work(tiny_classifier_checkpoint, sst2_files, tmp_path, flag, value,
                                                  message):
    """One line naming the flag; no OUT.partial/ left to refuse the corrected command."""
    out = tmp_path / "student"
    _assert_refused(_cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, flag, value), out, message)


def test_python_callers_get_the_same_settings_check(tiny_classifier_checkpoint, sst2_files, tmp_path):
    options = CompressOptions(distill=DistillConfig(batch_size=0))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, not 0"):
        options.check()
    with pytest.raises(CompressionError, match="batch_size"):
        compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "s", options=options, log=lambda m: None)
    assert not (tmp_path / "s.partial").exists()
    CompressOptions().check()  # the defaults pass


def test_a_corrupt_run_record_is_one_line(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "student"
    staging = tmp_path / "student.partial"
    for content in ("{not json", "[1, 2]", "\udcff"):
        staging.mkdir(exist_ok=True)
        (staging / "run.json").write_text(content, errors="surrogateescape")
        result = _cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, "--layers", 1)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "run.json cannot be read" in result.output and "--restart" in result.output, result.output


def test_the_output_may_not_be_or_hold_an_input(tiny_classifier_checkpoint, sst2_files, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_classifier_checkpoint, teacher)
    before = {p.name: p.read_bytes() for p in teacher.iterdir()}
    for out, words in ((teacher, "is the teacher"), (teacher / "sub", "lies inside the teacher"),
                       (tmp_path, "holds the teacher")):
        result = _cli(teacher, "--train", sst2_files[0], "-o", out, "--overwrite", "--layers", 1)
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output, result.output
    assert {p.name: p.read_bytes() for p in teacher.iterdir()} == before


# -- the pruned-head representation ---------------------------------------------------------------
def _pruned_student(teacher_dir, out_dir, removed=(1, 3), kept_neurons=range(0, 37, 2), layers=2):
    import torch
    from transformers import AlbertForSequenceClassification

    from edge_albert.compress.plan import CompressionPlan
    from edge_albert.compress.prune import build_student

    teacher = AlbertForSequenceClassification.from_pretrained(str(teacher_dir), dtype=torch.float32).eval()
    plan = CompressionPlan(num_hidden_layers=layers, heads=4 - len(removed), intermediate_size=len(list(kept_neurons)))
    student = build_student(teacher, plan, list(removed), list(kept_neurons)).eval()
    student.save_pretrained(str(out_dir))
    for name in ("tokenizer.json", "tokenizer_config.json", "spiece.model"):
        if (teacher_dir / name).is_file():
            shutil.copyfile(teacher_dir / name, out_dir / name)
    return teacher, student


def test_zeroed_heads_compute_exactly_the_pruned_function(tiny_classifier_checkpoint, tmp_path):
    """transformers loads the student as the same class; zeroed heads equal heads that are not there."""
    import torch
    from transformers import AlbertForSequenceClassification

    _pruned_student(tiny_classifier_checkpoint, tmp_path / "s")
    loaded = AlbertForSequenceClassification.from_pretrained(str(tmp_path / "s"), dtype=torch.float32).eval()
    assert getattr(loaded.config, PRUNED_HEADS_KEY) == [1, 3]
    assert loaded.config.num_hidden_layers == 2 and loaded.config.intermediate_size == 19
    ids = torch.tensor([[2, 45, 67, 89, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    with torch.no_grad():
        full = loaded(input_ids=ids, attention_mask=mask).logits
        # the same model with heads 1 and 3 physically removed from attention
        attention = loaded.albert.encoder.albert_layer_groups[0].albert_layers[0].attention
        keep = torch.cat([torch.arange(h * 8, (h + 1) * 8) for h in (0, 2)])
        for linear in (attention.query, attention.key, attention.value):
            linear.weight.data, linear.bias.data = linear.weight.data[keep], linear.bias.data[keep]
        attention.dense.weight.data = attention.dense.weight.data[:, keep]
        attention.all_head_size = 16
        sliced = loaded(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(full, sliced, atol=1e-6)


def test_the_converter_reads_pruned_shapes(tiny_classifier_checkpoint, tmp_path):
    _pruned_student(tiny_classifier_checkpoint, tmp_path / "s")
    checkpoint = load_checkpoint(tmp_path / "s")
    layer = "encoder.albert_layer_groups.0.albert_layers.0."
    assert checkpoint.config.kept_heads == [0, 2]
    assert checkpoint.weights[layer + "attention.query.weight"].shape == (16, 32)
    assert checkpoint.weights[layer + "attention.dense.weight"].shape == (32, 16)
    assert checkpoint.weights[layer + "ffn.weight"].shape == (19, 32)
    full = load_checkpoint(tiny_classifier_checkpoint).parameter_count()
    assert checkpoint.parameter_count() == full - 3 * (16 * 32 + 16) - 32 * 16 - 18 * (32 + 32 + 1)


def test_a_listed_head_with_live_weights_is_refused(tiny_classifier_checkpoint, tmp_path):
    from safetensors.numpy import load_file, save_file

    _pruned_student(tiny_classifier_checkpoint, tmp_path / "s")
    weights_path = tmp_path / "s" / "model.safetensors"
    weights = load_file(str(weights_path))
    name = "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.dense.weight"
    weights[name][:, 8:16] = 0.5
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="head 1 is listed in edge_albert_pruned_heads but"):
        load_checkpoint(tmp_path / "s")


@pytest.mark.parametrize("value, message", [([4], "distinct indices in 0..3"), ([1, 1], "distinct"),
                                            ([0, 1, 2, 3], "removes all 4"), ("1", "list of head indices")])
def test_bad_pruned_head_lists_are_refused(tiny_classifier_checkpoint, tmp_path, value, message):
    _pruned_student(tiny_classifier_checkpoint, tmp_path / "s")
    config_path = tmp_path / "s" / "config.json"
    config = json.loads(config_path.read_text())
    config[PRUNED_HEADS_KEY] = value
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "s")


def test_converted_pruned_student_matches_its_pytorch_self(tiny_classifier_checkpoint, tmp_path):
    """fp32 parity <= 1e-4 (the converter's own verification, on the transformers model) at fewer heads,
    narrower FFN and fewer calls; the manifest and inspect show the shape."""
    from edge_albert.bundle import load_bundle
    from edge_albert.converters.convert import convert_checkpoint
    from edge_albert.report import inspection_text

    _pruned_student(tiny_classifier_checkpoint, tmp_path / "s")
    result = convert_checkpoint(tmp_path / "s", tmp_path / "s.edgealbert", quantize="fp32")
    variant = result.variants[0]
    assert variant.bundled and variant.check.max_abs_diff <= 1e-4
    manifest = load_bundle(variant.bundle_path).manifest
    assert manifest["source"]["config"]["pruned_heads"] == [1, 3]
    assert "2 calls of one shared layer" in inspection_text(manifest)
    assert "2 of 4 heads (pruned: 1, 3), FFN 19" in inspection_text(manifest)


# -- end to end ---------------------------------------------------------------------------------
def test_compress_writes_a_student_with_its_provenance(tiny_classifier_checkpoint, sst2_files, tmp_path):
    import torch
    from transformers import AlbertForSequenceClassification

    out = tmp_path / "student"
    result = compress(tiny_classifier_checkpoint, sst2_files[0], out, sst2_files[1],
                      _options(layers=2, remove_heads=2, ffn=20), log=lambda message: None)
    assert not out.with_name("student.partial").exists()
    student = AlbertForSequenceClassification.from_pretrained(str(out), dtype=torch.float32)
    assert student.config.num_hidden_layers == 2 and student.config.intermediate_size == 20
    removed = getattr(student.config, PRUNED_HEADS_KEY)
    assert len(removed) == 2 and removed == result.removed_heads
    dense = student.albert.encoder.albert_layer_groups[0].albert_layers[0].attention.dense.weight
    for head in removed:  # still exactly zero after training
        assert not dense[:, head * 8:(head + 1) * 8].any()
    record = json.loads((out / "compression.json").read_text())
    assert record["teacher"]["weights_sha256"] == load_checkpoint(tiny_classifier_checkpoint).weights_sha256
    assert record["plan"] == {"num_hidden_layers": 2, "heads": 2, "intermediate_size": 20}
    assert "Michel et al. 2019" in record["importance"]["method"]
    assert len(record["importance"]["heads"]) == 4 and record["student"]["removed_heads"] == removed
    assert record["data"]["train"]["sha256"] and record["data"]["dev"]["path"] == str(sst2_files[1])
    assert record["student"]["dev_accuracy"] == result.dev_accuracy and 0 <= result.dev_accuracy <= 1
    assert any("eval_accuracy" in row for row in record["training"]["log_history"])
    assert (out / "tokenizer.json").is_file() and (out / "spiece.model").is_file()
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in out.iterdir())
    assert load_checkpoint(out).config.kept_heads == sorted(set(range(4)) - set(removed))


def test_an_interrupted_run_leaves_no_student_and_resumes(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "student"
    options = CompressOptions(importance_examples=32, layers=2, remove_heads=1,
                              distill=DistillConfig(epochs=2, batch_size=16, save_steps=2))

    def interrupt_after_first_epoch(message):
        if message.startswith("epoch 1.00"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compress(tiny_classifier_checkpoint, sst2_files[0], out, sst2_files[1], options, log=interrupt_after_first_epoch)
    staging = tmp_path / "student.partial"
    assert not out.exists() and (staging / "trainer").is_dir()

    different = CompressOptions(importance_examples=32, layers=1, distill=options.distill)
    with pytest.raises(CompressionError, match="holds an interrupted run with different settings \\(options, plan"):
        compress(tiny_classifier_checkpoint, sst2_files[0], out, sst2_files[1], different, log=lambda m: None)

    messages = []
    result = compress(tiny_classifier_checkpoint, sst2_files[0], out, sst2_files[1], options, log=messages.append)
    assert result.resumed_from and "checkpoint-" in result.resumed_from
    assert any(m.startswith("resuming from") for m in messages)
    assert out.is_dir() and not staging.exists()
    record = json.loads((out / "compression.json").read_text())
    assert record["training"]["resumed_from"] == result.resumed_from
    # the run continued from the checkpoint (step > 0) through the end of epoch 2, not from scratch
    assert int(result.resumed_from.rsplit("-", 1)[1]) >= 2
    assert [row["epoch"] for row in record["training"]["log_history"] if "eval_accuracy" in row][-1] == 2.0


def test_restart_discards_an_interrupted_run(tiny_classifier_checkpoint, sst2_files, tmp_path):
    staging = tmp_path / "student.partial"
    staging.mkdir()
    (staging / "run.json").write_text("{}")
    with pytest.raises(CompressionError, match="different settings"):
        compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "student", None, _options(layers=1),
                 log=lambda m: None)
    compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "student", None, _options(layers=1),
             restart=True, log=lambda m: None)
    assert (tmp_path / "student" / "compression.json").is_file() and not staging.exists()


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tiny_classifier_checkpoint, sst2_files,
                                                                             tmp_path):
    from tests.holder import hold_in_child

    holder = hold_in_child(tmp_path / "student", 120)
    try:
        with pytest.raises(CompressionError, match=rf"student is being written by another run \(pid {holder.pid}\)"):
            compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "student", None, _options(layers=1),
                     log=lambda m: None)
        assert not (tmp_path / "student.partial").exists() and not (tmp_path / "student").exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_names_its_restart_flag(tiny_classifier_checkpoint, sst2_files, tmp_path):
    staging = tmp_path / "student.partial"
    staging.mkdir()
    (staging / "run.json").write_text("{}")
    with pytest.raises(CompressionError, match="or pass restart to discard it$"):
        compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "student", None, _options(), log=lambda m: None)
    result = _cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", tmp_path / "student")
    assert result.exit_code == 1 and result.output.rstrip().endswith("or pass --restart to discard it"), result.output


def test_ablation_from_random_weights_keeps_the_shape(tiny_classifier_checkpoint, sst2_files, tmp_path):
    import torch
    from transformers import AlbertForSequenceClassification

    options = CompressOptions(importance_examples=32, layers=1, heads=3, init="random",
                              distill=DistillConfig(epochs=1, batch_size=16, alpha=0.0))
    compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "scratch", None, options, log=lambda m: None)
    student = AlbertForSequenceClassification.from_pretrained(str(tmp_path / "scratch"), dtype=torch.float32)
    teacher = AlbertForSequenceClassification.from_pretrained(str(tiny_classifier_checkpoint), dtype=torch.float32)
    assert student.config.num_hidden_layers == 1 and len(getattr(student.config, PRUNED_HEADS_KEY)) == 1
    assert not np.allclose(student.albert.embeddings.word_embeddings.weight.detach().numpy(),
                           teacher.albert.embeddings.word_embeddings.weight.detach().numpy())


# -- the committed example student --------------------------------------------------------------
@pytest.mark.slow
def test_committed_student_keeps_its_accuracy_claim():
    """examples/sst2-albert-student: transformers loads it as the teacher's class, its provenance names
    the committed teacher's weights, and it scores what compression.json says on SST-2 dev (within
    1 point of the teacher)."""
    from pathlib import Path

    import torch
    from tests.project_data import SST2_DEV
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    from edge_albert.training import EncodedDataset, accuracy_of
    from edge_albert.finetune import read_examples

    examples = Path(__file__).resolve().parents[1] / "examples"
    student_dir = examples / "sst2-albert-student"
    record = json.loads((student_dir / "compression.json").read_text())
    assert record["teacher"]["weights_sha256"] == load_checkpoint(examples / "sst2-albert").weights_sha256
    torch.set_num_threads(1)
    student = AlbertForSequenceClassification.from_pretrained(str(student_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(student_dir))
    dev = EncodedDataset(tokenizer, read_examples(SST2_DEV, labels=["negative", "positive"]), 128)
    accuracy = accuracy_of(student, dev, tokenizer)
    assert accuracy == pytest.approx(record["student"]["dev_accuracy"], abs=1e-9)
    assert accuracy >= record["teacher"]["dev_accuracy"] - 0.01
    assert load_checkpoint(student_dir).config.kept_heads == [0, 1]


def test_augmented_rows_train_on_soft_targets_and_are_recorded(tiny_classifier_checkpoint, sst2_files, tmp_path):
    """--augment N adds N unlabelled copies per training row to the distillation set (not to the
    importance rows) and compression.json says how they were made and what was left out."""
    from edge_albert.compress import AugmentConfig

    options = CompressOptions(importance_examples=32, layers=2, distill=DistillConfig(epochs=1, batch_size=16),
                              augment=AugmentConfig(copies=2))
    compress(tiny_classifier_checkpoint, sst2_files[0], tmp_path / "s", sst2_files[1], options, log=lambda m: None)
    record = json.loads((tmp_path / "s" / "compression.json").read_text())
    assert record["training"]["train_rows_used"] == 96 and record["training"]["distillation_rows"] == 3 * 96
    assert record["augmentation"]["rows_added"] == 192 and record["augmentation"]["mask_token"] == "[MASK]"
    assert 0 < record["augmentation"]["identical_to_their_row"] < 192  # short rows often come through unchanged
    assert "POS-guided" in record["augmentation"]["not_implemented"]
    assert record["options"]["augment"] == {"copies": 2, "p_mask": 0.1, "p_ngram": 0.25}
    assert sum(row.get("epoch", 0) == 1.0 and "loss" not in row for row in record["training"]["log_history"]) >= 1
    assert record["training"]["log_history"][-1]["step"] == 18  # ceil(288 / 16): the augmented rows were trained on


def test_augmentation_without_soft_targets_is_refused(tiny_classifier_checkpoint, sst2_files, tmp_path):
    out = tmp_path / "s"
    _assert_refused(_cli(tiny_classifier_checkpoint, "--train", sst2_files[0], "-o", out, "--augment", "2",
                         "--alpha", "0"), out, "--augment needs the teacher's soft targets (--alpha above 0)")


# -- augmentation (Tang et al. 2019) ------------------------------------------------------------
def test_augmentation_rules_mask_words_and_cut_ngrams():
    import random

    from edge_albert.compress.augment import augment_words

    words = "a b c d e f g h i j".split()
    assert augment_words(words, random.Random(0), "[M]", 0.0, 0.0) == words
    assert augment_words(words, random.Random(0), "[M]", 1.0, 0.0) == ["[M]"] * 10
    rng = random.Random(1)
    for _ in range(200):  # always an n-gram: n in 1..5, contiguous, from the original order
        out = augment_words(words, rng, "[M]", 0.0, 1.0)
        assert 1 <= len(out) <= 5 and "".join(out) in "".join(words)
    rng = random.Random(2)
    masked = sum(w == "[M]" for _ in range(500) for w in augment_words(words, rng, "[M]", 0.1, 0.0))
    assert 400 <= masked <= 600  # 10% of 5,000 words
    rng = random.Random(3)
    cut = sum(len(augment_words(words, rng, "[M]", 0.0, 0.25)) < 10 for _ in range(2000))
    assert 420 <= cut <= 580  # 25% of 2,000 examples are cut to an n-gram
    assert augment_words([], random.Random(0), "[M]", 0.5, 1.0) == []


def test_augmented_examples_are_seeded_unlabelled_copies():
    from edge_albert.compress.augment import NO_LABEL, AugmentConfig, augment_examples
    from edge_albert.data import Example

    rows = [Example("the film is a mess", 0, line=2), Example("a joy", 1, text_pair="truly great fun", line=3)]
    config = AugmentConfig(copies=3, p_mask=0.3, p_ngram=0.5)
    out = augment_examples(rows, config, "[MASK]", seed=7)
    assert out == augment_examples(rows, config, "[MASK]", seed=7)
    assert out != augment_examples(rows, config, "[MASK]", seed=8)
    assert len(out) == 6 and all(e.label == NO_LABEL for e in out)
    assert [e.line for e in out] == [2, 2, 2, 3, 3, 3] and all(e.text_pair is None for e in out[:3])
    assert all(e.text_pair is not None for e in out[3:])
    assert augment_examples(rows, AugmentConfig(copies=0), "[MASK]", seed=7) == []


@pytest.mark.parametrize("config, message", [
    ({"copies": -1}, "augment must be 0 or more"), ({"copies": 1, "p_mask": 1.5}, "p_mask must be between 0 and 1"),
])
def test_bad_augmentation_settings_are_refused(config, message):
    from edge_albert.compress.augment import AugmentConfig

    with pytest.raises(CompressionError, match=message):
        AugmentConfig(**config).check()


def test_unlabelled_rows_add_no_label_loss():
    """A NO_LABEL row contributes its soft-target term only; labelled rows keep the batch mean."""
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    from edge_albert.compress.augment import NO_LABEL
    from edge_albert.compress.distill import distillation_loss

    torch.manual_seed(0)
    logits = torch.randn(4, 2)
    student = SimpleNamespace(logits=logits)
    config = DistillConfig(alpha=0.5, temperature=1.0)
    same = SimpleNamespace(logits=logits.clone())  # soft term 0: only the label term is left
    labels = torch.tensor([0, 1, NO_LABEL, NO_LABEL])
    expected = 0.5 * F.cross_entropy(logits[:2], labels[:2], reduction="sum") / 4
    assert torch.allclose(distillation_loss(student, same, labels, None, config), expected, atol=1e-6)
    assert abs(float(distillation_loss(student, same, torch.full((4,), NO_LABEL), None, config))) < 1e-6  # not NaN
    other = SimpleNamespace(logits=torch.randn(4, 2))
    soft_only = distillation_loss(student, other, torch.full((4,), NO_LABEL), None, config)
    kl = F.kl_div(F.log_softmax(logits, -1), F.softmax(other.logits, -1), reduction="batchmean")
    assert torch.allclose(soft_only, 0.5 * kl, atol=1e-6)


def test_a_float16_teacher_gets_a_float16_student_scored_as_saved(tiny_classifier_checkpoint, sst2_files, tmp_path):
    """The student is stored like its teacher, and the dev accuracy recorded is the stored file's."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    from edge_albert.data import read_examples
    from edge_albert.training import EncodedDataset, accuracy_of, stored_float_dtype

    teacher = tmp_path / "teacher16"
    shutil.copytree(tiny_classifier_checkpoint, teacher)
    assert stored_float_dtype(teacher) == "float32"
    weights = load_file(str(teacher / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, str(teacher / "model.safetensors"),
              metadata={"format": "pt"})
    assert stored_float_dtype(teacher) == "float16" and stored_float_dtype(tmp_path) == "float32"
    options = CompressOptions(importance_examples=32, layers=2, distill=DistillConfig(epochs=1, batch_size=16))
    result = compress(teacher, sst2_files[0], tmp_path / "s", sst2_files[1], options, log=lambda m: None)
    stored = load_file(str(tmp_path / "s" / "model.safetensors"))
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    record = json.loads((tmp_path / "s" / "compression.json").read_text())
    assert record["student"]["weights_dtype"] == "float16"
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "s"))
    dev = EncodedDataset(tokenizer, read_examples(sst2_files[1]), 128)
    saved = AlbertForSequenceClassification.from_pretrained(str(tmp_path / "s"), dtype=torch.float32)
    assert result.dev_accuracy == record["student"]["dev_accuracy"] == accuracy_of(saved, dev, tokenizer)
