"""`edge-albert bench` and the peer comparison: the measurement machinery on tiny models.

No test asserts a wall-clock time: they check statistics, inputs, records, output files and
the budget logic (a deliberately tiny budget must fail with exit status 3 and say what).
"""

import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tests.runtime_bundles import bundle_for

from edge_albert import bench
from edge_albert.cli import main
from edge_albert.hf.macs import albert_macs, albert_parameters
from edge_albert.tokenizer import AlbertTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import compare  # noqa: E402


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory) -> Path:
    return bundle_for(tmp_path_factory.mktemp("bench"), "text-classification", "dynamic-int8", "loop")


@pytest.fixture(scope="module")
def unrolled_bundle(tmp_path_factory) -> Path:
    return bundle_for(tmp_path_factory.mktemp("bench"), "text-classification", "fp32", "unrolled")


@pytest.fixture(scope="module")
def tokenizer(int8_bundle) -> AlbertTokenizer:
    return AlbertTokenizer.from_file(int8_bundle / "tokenizer.json")


def write_target(path: Path, quantization: str, seq_len: int, architectures=None, **limits) -> Path:
    architectures = architectures or [platform.machine()]
    lines = ["[target]", 'name = "test-target"', f"architectures = {json.dumps(architectures)}", "threads = 1", "",
             "[[budget]]", f'quantization = "{quantization}"', f"seq_len = {seq_len}"]
    for metric, value in limits.items():
        lines += [f"{metric} = {value}", f'{metric}_source = "test: a deliberately chosen number"']
    path.write_text("\n".join(lines) + "\n")
    return path


# -- statistics and timing -------------------------------------------------------------------
def test_latency_stats_use_linear_percentiles():
    stats = bench.LatencyStats.from_samples(list(range(1, 101)))
    assert (stats.runs, stats.min_ms, stats.mean_ms) == (100, 1.0, 50.5)
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_latency_stats_refuse_no_samples():
    with pytest.raises(bench.BenchError, match="no measured runs"):
        bench.LatencyStats.from_samples([])


def test_time_runs_counts_warmup_apart_from_measured_runs():
    calls = []
    samples, stopped_by = bench.time_runs(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and len(samples) == 7 and stopped_by == "runs"
    assert all(s >= 0 for s in samples)


def test_time_runs_stops_at_max_seconds_after_at_least_one_run():
    samples, stopped_by = bench.time_runs(lambda: None, runs=1000, warmup=0, max_seconds=1e-9)
    assert len(samples) == 1 and stopped_by == "max-seconds"


def test_seq_lens_are_parsed_and_checked():
    assert bench.parse_seq_lens("16, 32,64,32") == [16, 32, 64]
    for bad in ("", "a,b", "1,16"):
        with pytest.raises(bench.BenchError):
            bench.parse_seq_lens(bad)
    with pytest.raises(bench.BenchError, match=r"^seq_lens must be comma-separated integers, not '\{a\}'$"):
        bench.parse_seq_lens("{a}")  # the library names its parameter; braces in the value are kept
    run = CliRunner().invoke(main, ["bench", "any.edgealbert", "--seq-lens", "16,x"])
    assert run.exit_code == 1 and run.output == "error: --seq-lens must be comma-separated integers, not '16,x'\n"


# -- inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seq_len", [2, 5, 16, 32, 128, 512])
def test_inputs_are_real_text_of_exactly_the_length(tokenizer, seq_len):
    ids, mask, types = bench.inputs_of_length(tokenizer, seq_len, batch=3)
    assert ids.shape == mask.shape == types.shape == (3, seq_len)
    assert ids.dtype == np.int32 and mask.all() and not types.any()
    assert (ids[:, 0] == tokenizer.token_to_id("[CLS]")).all() and (ids[:, -1] == tokenizer.token_to_id("[SEP]")).all()
    assert tokenizer.pad_id not in ids and tokenizer.token_to_id("<unk>") not in ids
    if seq_len > 8:
        assert len(np.unique(ids)) > seq_len // 3  # text, not a repeated token
        assert not np.array_equal(ids[0], ids[1])  # rows start at different sentences


def test_question_answering_inputs_are_pairs(tokenizer):
    ids, mask, types = bench.inputs_of_length(tokenizer, 32, pair=True)
    assert ids.shape == (1, 32) and mask.all()
    assert types[0, 0] == 0 and types[0, -1] == 1
    with pytest.raises(bench.BenchError, match="no room"):
        bench.inputs_of_length(tokenizer, 4, pair=True)


# -- memory and machine ----------------------------------------------------------------------
def test_memory_readings_work_without_psutil(monkeypatch):
    with_psutil = bench.current_rss_bytes()
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    from_proc = bench.current_rss_bytes()
    assert with_psutil > 10e6 and from_proc > 10e6
    assert bench.peak_rss_bytes() >= from_proc * 0.9


def test_machine_record_names_cpu_cores_architecture_os_python():
    machine = bench.machine_info()
    assert machine["architecture"] == platform.machine()
    assert machine["cores"] >= 1 and machine["python"] == platform.python_version()
    assert machine["cpu_model"] and machine["os"]


# -- the measurement -------------------------------------------------------------------------
def test_run_benchmark_measures_each_length(int8_bundle):
    messages = []
    result = bench.run_benchmark(int8_bundle, seq_lens=[8, 16, 32, 64], runs=4, warmup=1, threads=1,
                                 progress=lambda message, final: messages.append((message, final)))
    assert [r.seq_len for r in result.results] == [8, 16, 32]
    assert "64" in " ".join(m for m, _ in messages) and 64 in result.skipped
    for entry in result.results:
        stats = entry.latency
        assert stats.runs == 4
        assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms
        assert entry.padded_length == entry.seq_len  # the loop form runs the exact length
        assert entry.throughput_per_s == pytest.approx(1e3 / stats.mean_ms)
        assert entry.first_run_ms > 0 and entry.tokenize_ms > 0
    assert result.load_ms > 0 and result.first_inference_ms == result.results[0].first_run_ms
    assert result.rss_after_load_mb > result.rss_before_load_mb > 0
    assert result.peak_rss_mb >= result.rss_after_load_mb
    assert result.settings["threads"] == 1 and result.settings["backend"] == "ai_edge_litert"
    assert result.model["quantization"] == "dynamic-int8" and result.model["graph"] == "loop"


def test_fixed_length_bundle_records_the_padded_length(unrolled_bundle):
    result = bench.run_benchmark(unrolled_bundle, seq_lens=[8, 32], runs=2, warmup=0, threads=1)
    assert [(r.seq_len, r.padded_length) for r in result.results] == [(8, 32), (32, 32)]


def test_cli_writes_json_markdown_and_png(int8_bundle, tmp_path):
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--seq-lens", "8,16", "--runs", "3", "--warmup", "1",
                                    "--threads", "1", "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
                                    "--plot", str(out / "r.png")])
    assert run.exit_code == 0, run.output
    assert "seq    8: p50" in run.output and "machine:" in run.output  # settings printed with the result
    data = json.loads((out / "r.json").read_text())
    assert [r["seq_len"] for r in data["results"]] == [8, 16]
    assert set(data["results"][0]["latency"]) == {"runs", "min_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"}
    assert data["settings"]["runs"] == 3 and data["settings"]["command"].startswith("edge-albert bench")
    assert data["load_rss_increase_mb"] > 0 and data["machine"]["architecture"] == platform.machine()
    markdown = (out / "r.md").read_text()
    assert "| seq | ran at | runs | min ms | p50 ms |" in markdown and "edge-albert bench" in markdown
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- budgets ---------------------------------------------------------------------------------
def test_a_tiny_budget_fails_with_exit_3_and_names_it(int8_bundle, tmp_path):
    target = write_target(tmp_path / "tiny.toml", "dynamic-int8", 16, p50_ms=0.000001, peak_rss_mb=100000)
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", str(target), "--seq-lens", "16",
                                    "--runs", "3", "--warmup", "0"])
    assert run.exit_code == bench.BUDGET_EXCEEDED_EXIT, run.output
    assert "budget exceeded (test-target" in run.output
    assert "dynamic-int8 seq 16 p50_ms:" in run.output and "> budget 0.0 ms" in run.output
    assert "peak_rss_mb" not in run.output.split("budget exceeded")[1]  # only what was exceeded


def test_a_generous_budget_passes(int8_bundle, tmp_path):
    target = write_target(tmp_path / "ok.toml", "dynamic-int8", 16, p50_ms=1e6, p99_ms=1e6, peak_rss_mb=1e6, load_ms=1e6)
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", str(target), "--seq-lens", "16",
                                    "--runs", "3", "--warmup", "0"])
    assert run.exit_code == 0, run.output
    assert "all 4 budgets of test-target met" in run.output


def test_budget_check_reports_each_exceeded_metric(int8_bundle, tmp_path):
    result = bench.run_benchmark(int8_bundle, seq_lens=[16], runs=2, warmup=0, threads=1)
    target = bench.load_target(write_target(tmp_path / "t.toml", "dynamic-int8", 16, p50_ms=1e-6, p99_ms=1e-6,
                                            load_ms=1e6))
    check = bench.check_budgets(result, target)
    assert not check["passed"] and len(check["checked"]) == 3
    assert sorted(row["metric"] for row in check["exceeded"]) == ["p50_ms", "p99_ms"]
    assert all(row["source"].startswith("test:") for row in check["checked"])
    lines = bench.exceeded_lines(check)
    assert len(lines) == 2 and all("x)" in line for line in lines)
    result.budget_check = check
    assert "EXCEEDED" in result.to_markdown()


def test_no_budget_for_the_quantization_is_an_error(int8_bundle, tmp_path):
    result = bench.run_benchmark(int8_bundle, seq_lens=[16], runs=1, warmup=0, threads=1)
    target = bench.load_target(write_target(tmp_path / "t.toml", "fp32", 16, p50_ms=1))
    with pytest.raises(bench.BenchError, match="no budget for dynamic-int8 at seq 16"):
        bench.check_budgets(result, target)


def test_a_target_without_a_budget_for_the_bundle_is_refused_before_measuring(int8_bundle, tmp_path):
    target = write_target(tmp_path / "t.toml", "fp32", 16, p50_ms=1)
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", str(target), "--seq-lens", "16"])
    assert run.exit_code == 1 and "no budget for dynamic-int8 at seq 16" in run.output
    assert "loaded" not in run.output  # nothing was measured


def test_arm_budgets_are_refused_on_x86_before_measuring():
    target = bench.load_target("rpi4")
    x86 = dict(bench.machine_info(), architecture="x86_64", device_model=None)
    with pytest.raises(bench.BenchError, match=r"rpi4 is for an ARM device \(aarch64\); this machine is x86_64"):
        bench.check_target_applies(target, x86)
    pi5 = dict(x86, architecture="aarch64", device_model="Raspberry Pi 5 Model B Rev 1.0")
    with pytest.raises(bench.BenchError, match="for a Raspberry Pi 4; this device is 'Raspberry Pi 5"):
        bench.check_target_applies(target, pi5)
    with pytest.raises(bench.BenchError, match="for Android"):
        bench.check_target_applies(bench.load_target("android-arm64"), dict(pi5, android=False))


def test_cli_refuses_an_arm_target_here_and_prints_no_figure(int8_bundle):
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", "rpi4", "--seq-lens", "16", "--runs", "2"])
    assert run.exit_code == 1
    assert run.output.startswith("error: target rpi4") and "p50" not in run.output and "ms" not in run.output
    assert run.output.endswith("on the device, or bench without --target here\n")


def test_cli_names_the_batch_flag_for_a_target(int8_bundle):
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", "x86-host", "--batch-size", "2"])
    assert run.exit_code == 1 and run.output.endswith("budgets are per sequence at batch 1; run with --batch-size 1\n")


ALBERT_BASE = {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 768, "num_hidden_layers": 12,
               "num_attention_heads": 12, "intermediate_size": 3072}
EXAMPLE = json.loads((REPO / "examples" / "sst2-albert" / "config.json").read_text())


def test_albert_parameters_count_what_the_converter_counts(int8_bundle):
    manifest = json.loads((int8_bundle / "manifest.json").read_text())
    config, hidden = manifest["source"]["config"], manifest["source"]["config"]["hidden_size"]
    head = hidden * 2 + 2  # the classifier (2 labels): not part of the encoder's weights
    assert albert_parameters(config) == manifest["source"]["parameters"] - head
    assert albert_parameters(ALBERT_BASE) == 11_685_122 - (768 * 2 + 2)  # albert-base-v2 with 2 labels


def test_budgets_of_the_target_shape_are_not_scaled():
    assert bench.budget_scale("rpi4", "rpi4.toml", ALBERT_BASE, dict(ALBERT_BASE, hidden_act="gelu"),
                              "dynamic-int8") is None


def test_budgets_for_another_shape_scale_by_macs_and_weight_bytes():
    scale = bench.budget_scale("rpi4", "rpi4.toml", ALBERT_BASE, EXAMPLE, "dynamic-int8", [16, 128])
    for seq_len in (16, 128):
        ratio = albert_macs(EXAMPLE, seq_len)["total"] / albert_macs(ALBERT_BASE, seq_len)["total"]
        assert scale.latency[seq_len] == pytest.approx(ratio) and 0.02 < ratio < 0.06
        assert scale.limit("p50_ms", 100.0, seq_len, 40.0) == pytest.approx(100 * ratio)
    weights = albert_parameters(EXAMPLE) / albert_parameters(ALBERT_BASE)
    assert scale.weights == pytest.approx(weights) and scale.bytes_per_weight == 1
    assert scale.model_weight_mb == pytest.approx(albert_parameters(EXAMPLE) / 1e6)
    # memory: only the weights are swapped (runtime, tokenizer and arena stay); load never below the albert-base budget
    swapped = 150.0 - scale.reference_weight_mb + scale.model_weight_mb
    assert scale.limit("peak_rss_mb", 150.0, 16, 50.0) == pytest.approx(swapped)
    assert scale.limit("peak_rss_mb", 150.0, 16, None) == pytest.approx(swapped) and 140 < swapped < 150
    assert scale.limit("load_ms", 500.0, 16, 50.0) == 500.0
    fp32 = bench.budget_scale("rpi4", "rpi4.toml", ALBERT_BASE, EXAMPLE, "fp32")
    assert fp32.model_weight_mb == pytest.approx(4 * scale.model_weight_mb) and fp32.weights == pytest.approx(weights)
    bigger = bench.budget_scale("rpi4", "rpi4.toml", ALBERT_BASE, dict(ALBERT_BASE, hidden_size=1024), "fp32")
    assert bigger.weights > 1 and bigger.limit("load_ms", 500.0, 16, 50.0) == pytest.approx(500 * bigger.weights)


@pytest.mark.parametrize("config, quantization, missing", [
    ({}, "dynamic-int8", "vocab_size, embedding_size"),
    (dict(EXAMPLE, hidden_size=None), "fp32", "hidden_size is unknown"),
    (EXAMPLE, "", "bytes per weight of an unrecorded quantization"),
])
def test_a_shape_that_cannot_be_scaled_says_how_to_get_a_budget(config, quantization, missing):
    with pytest.raises(bench.BenchError) as caught:
        bench.budget_scale("rpi4", "edge_albert/targets/rpi4.toml", ALBERT_BASE, config, quantization)
    message = str(caught.value)
    assert missing in message and "cannot be scaled" in message and "\n" not in message
    assert "copy edge_albert/targets/rpi4.toml to a .toml of your own" in message
    assert "`edge-albert bench BUNDLE --target YOUR.toml`" in message


def test_budgets_for_another_model_shape_are_scaled_and_recorded(int8_bundle, tmp_path):
    target, _ = bench.target_for_bundle(REPO / "edge_albert" / "targets" / "x86-host.toml", int8_bundle,
                                        seq_lens=[16])
    config = json.loads((int8_bundle / "manifest.json").read_text())["source"]["config"]
    assert target.scale.latency[16] == pytest.approx(albert_macs(config, 16)["total"] /
                                                     albert_macs(ALBERT_BASE, 16)["total"])
    result = bench.run_benchmark(int8_bundle, seq_lens=[16], runs=2, warmup=0, threads=1)
    check = bench.check_budgets(result, target)
    base = {m: v for m, v in next(b for b in target.budgets if b.quantization == "dynamic-int8"
                                   and b.seq_len == 16).limits.items()}
    rows = {row["metric"]: row for row in check["checked"]}
    unscaled = {row["metric"]: row for row in check["scaling"]["not_checked"]}
    assert set(rows) | set(unscaled) == set(base) and not set(rows) & set(unscaled)
    assert rows["p50_ms"]["budget"] == pytest.approx(base["p50_ms"] * target.scale.latency[16])
    assert rows["p50_ms"]["albert_base_budget"] == base["p50_ms"] and "MACs at seq 16" in rows["p50_ms"]["source"]
    assert rows["peak_rss_mb"]["budget"] == pytest.approx(
        base["peak_rss_mb"] - target.scale.reference_weight_mb + target.scale.model_weight_mb)
    assert rows["peak_rss_mb"]["budget"] < base["peak_rss_mb"] and "weights" in rows["peak_rss_mb"]["source"]
    assert rows["load_ms"]["budget"] == base["load_ms"]
    assert check["scaling"]["latency"] == {"16": pytest.approx(target.scale.latency[16])}
    result.budget_check = check
    assert "budgets scaled from albert-base to this model (vocab_size=" in result.to_markdown()
    text = bench.result_text(result)
    assert "x86-host: budgets scaled from albert-base" in text and "seq 16 p50_ms: budget" in text
    assert json.loads(result.to_json())["budget_check"]["scaling"]["weights"] == pytest.approx(target.scale.weights)


def test_cli_checks_scaled_budgets_and_writes_them_to_json(int8_bundle, tmp_path):
    target = write_target(tmp_path / "base.toml", "dynamic-int8", 16, p50_ms=1e6, p99_ms=1e6, peak_rss_mb=1e6,
                          load_ms=1e6)
    target.write_text(target.read_text() + "\n[model]\n" + "".join(f"{k} = {v}\n" for k, v in ALBERT_BASE.items()))
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--target", str(target), "--seq-lens", "16",
                                    "--runs", "2", "--warmup", "0", "--json", str(tmp_path / "r.json")])
    assert run.exit_code == 0, run.output
    assert "test-target: budgets scaled from albert-base" in run.output and "(albert-base 1e+06)" in run.output
    check = json.loads((tmp_path / "r.json").read_text())["budget_check"]
    assert check["passed"] and len(check["checked"]) == 4 and 0 < check["scaling"]["weights"] < 0.1
    assert all(row["budget"] < row["albert_base_budget"] for row in check["checked"] if row["metric"] != "load_ms")


def test_exit_value_without_texts_is_one_line_before_any_work(int8_bundle):
    run = CliRunner().invoke(main, ["bench", str(int8_bundle), "--exit-value", "2", "--seq-lens", "16"])
    assert run.exit_code == 1
    assert run.output == ("error: --exit-value needs --texts: an early-exit bundle's speed depends on the texts, "
                          "so it is measured over real ones (bench BUNDLE --texts FILE --exit-value V)\n")


def test_a_budget_without_its_source_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[target]\narchitectures = ["x86_64"]\n[[budget]]\nquantization = "fp32"\nseq_len = 16\np50_ms = 5\n')
    with pytest.raises(bench.BenchError, match="without a source"):
        bench.load_target(path)


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(bench.BenchError, match="known: android-arm64, rpi4, rpi5, x86-host"):
        bench.load_target("rpi3")


@pytest.mark.parametrize("name", ["rpi4", "rpi5", "android-arm64", "x86-host"])
def test_committed_targets_cover_every_length_and_quantization_with_sources(name):
    target = bench.load_target(name)
    assert {(b.quantization, b.seq_len) for b in target.budgets} == {
        (q, n) for q in ("fp32", "fp16", "dynamic-int8") for n in (16, 32, 64, 128)}
    assert target.model["hidden_size"] == 768 and target.model["num_hidden_layers"] == 12
    for budget in target.budgets:
        assert set(budget.limits) == set(bench.BUDGET_METRICS)
        for metric, source in budget.sources.items():
            # ARM figures are never measured elsewhere: each one is labelled an estimate
            assert source.startswith("estimate:" if target.is_arm else "measured "), (name, metric, source)
        assert budget.limits["p50_ms"] <= budget.limits["p99_ms"]
    by = {(b.quantization, b.seq_len): b.limits["p50_ms"] for b in target.budgets}
    assert by[("dynamic-int8", 16)] <= by[("dynamic-int8", 128)]


# -- compute bound and the peer comparison's arithmetic --------------------------------------
def test_albert_base_macs_per_token_per_layer():
    config = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, embedding_size=128)
    macs = albert_macs(config, 128)
    per_token_layer = 4 * 768 ** 2 + 2 * 768 * 3072
    assert per_token_layer == 7_077_888
    assert macs["dense"] == 128 * (12 * per_token_layer + 128 * 768) + 768 * 768
    assert macs["attention"] == 12 * 2 * 128 * 128 * 768
    assert 11.1e9 < macs["total"] < 11.3e9


def test_compute_bound_uses_the_int8_rate_only_for_weights():
    peak = compare.machine_peak({"simd": ["avx2", "fma"], "cores": 2, "cpu_mhz": 2000.0}, None)
    assert (peak["fp32_gmac_s"], peak["int8_gmac_s"]) == (64.0, 256.0)
    config = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, embedding_size=128)
    macs = albert_macs(config, 128)
    assert compare.compute_bound_ms(config, 128, "fp32", peak) == pytest.approx(macs["total"] / 64e9 * 1e3)
    assert compare.compute_bound_ms(config, 128, "dynamic-int8", peak) == pytest.approx(
        (macs["dense"] / 256e9 + macs["attention"] / 64e9) * 1e3)


def test_issue_targets_are_judged_with_the_miss_factor():
    def row(key, p50_32, p50_128, mb, rss=None, bound=None):
        return {"key": key, "file_mb": mb, "memory": {"peak_rss_mb": rss} if rss else {},
                "latency": {"32": {"p50_ms": p50_32}, "128": {"p50_ms": p50_128}}, "bound_ms": {"128": bound}}

    rows = [row("ort-int8", 30, 100, 40.0), row("loop-dynamic-int8", 10, 30, 12.0, rss=160, bound=25)]
    found = {t["what"]: t for t in compare.evaluate_targets(rows, [32, 128])}
    assert not found["p50 at seq 128 vs ONNX Runtime dynamic int8"]["met"]  # 0.30 > 0.25
    assert found["p50 at seq 128 vs ONNX Runtime dynamic int8"]["miss_factor"] == pytest.approx(1.2)
    assert found["p50 at seq 128 vs the int8 compute bound"]["met"]  # 1.2 <= 1.5
    assert found["file size vs ONNX Runtime dynamic int8"]["met"]  # 0.30
    assert not found["peak RSS (separate process)"]["met"]
    assert found["p50 seq 32 / p50 seq 128"]["measured"] == pytest.approx(1 / 3)


@pytest.mark.slow
def test_compare_runs_every_backend_on_a_tiny_checkpoint(tiny_classifier_checkpoint, tmp_path):
    out = tmp_path / "results"
    assert compare.main([str(tiny_classifier_checkpoint), "--work-dir", str(tmp_path / "work"), "--out-dir", str(out),
                         "--seq-lens", "16,32", "--rounds", "2", "--block-runs", "2", "--pause", "0"]) == 0
    [report_file] = out.glob("*.json")
    report = json.loads(report_file.read_text())
    keys = [r["key"] for r in report["rows"]]
    assert keys == ["torch", "ort-fp32", "ort-int8", "loop-fp32", "loop-fp16", "loop-dynamic-int8", "unrolled-fp32",
                    "unrolled-fp16", "unrolled-dynamic-int8", "unrolled-int8"]
    rows = {r["key"]: r for r in report["rows"]}
    assert rows["ort-fp32"]["max_logit_diff"] < 1e-4 and rows["loop-fp32"]["max_logit_diff"] < 1e-4
    assert rows["loop-dynamic-int8"]["file_mb"] < rows["loop-fp32"]["file_mb"] / 2
    for row in report["rows"]:
        assert row["latency"]["32"]["runs"] == 4  # 2 rounds x 2 runs
        assert row["memory"]["peak_rss_mb"] > row["memory"]["rss_after_imports_mb"] > 0
    markdown = report_file.with_suffix(".md").read_text()
    assert "python benchmarks/compare.py" in markdown and "| edge-albert loop dynamic-int8 |" in markdown
    assert report_file.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert not math.isnan(report["peak"]["int8_gmac_s"])


@pytest.mark.slow
def test_bench_runs_on_the_bundled_example(tmp_path):
    from edge_albert.converters.convert import convert_checkpoint

    example = REPO / "examples" / "sst2-albert"
    assert (example / "model.safetensors").is_file(), f"{example} is missing: the example model is part of the repository"
    bundle = convert_checkpoint(example, tmp_path / "sst2.edgealbert", quantize="dynamic-int8").bundle.path
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["bench", str(bundle), "--runs", "3", "--warmup", "1", "--json", str(out / "r.json"),
                                    "--markdown", str(out / "r.md"), "--plot", str(out / "r.png")])
    assert run.exit_code == 0, run.output
    data = json.loads((out / "r.json").read_text())
    assert [r["seq_len"] for r in data["results"]] == [16, 32, 64, 128] and not data["skipped"]
    assert data["model"]["task"] == "text-classification" and data["model"]["config"]["hidden_size"] == 256
    assert "| 128 | 128 | 3 |" in (out / "r.md").read_text()
    assert (out / "r.png").stat().st_size > 10_000
