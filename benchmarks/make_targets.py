"""Write edge_albert/targets/*.toml: latency, memory and load budgets for albert-base-v2-shape bundles.

    python benchmarks/make_targets.py [--measured benchmarks/results/x86-host]

Every number gets its source next to it. No Raspberry Pi or phone was reachable when these were
written, and no published ALBERT-on-that-device figure could be checked, so ARM budgets are
estimates, labelled as such: a roofline (the slower of the compute bound, from the model's
multiply-accumulates and the chip's peak, and the time to stream the shared layer's weights
from memory once per layer call) divided by an assumed attainable fraction of peak. Their memory
and load budgets start from what the same bundle measured on x86 here, since RSS is set by the
model's arena and packed weights, not the instruction set. The x86-host budgets are this machine's
own `edge-albert bench` results (JSON files under --measured) with a margin for a shared machine.
Replace an estimate with a device measurement (and say so in its source) once one exists.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert.hf.macs import albert_macs  # noqa: E402
from edge_albert.quantization import ALL, MODES, parse_modes  # noqa: E402

BASE = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072)
SEQ_LENS = (16, 32, 64, 128)
# The modes `--quantize all` converts, from the modes table (edge_albert/quantization.py): a new
# row there gets budgets here. Full int8 (calibrated, unrolled only) has none.
QUANTIZATIONS = tuple(mode.name for mode in parse_modes(ALL))
SHARED_LAYER_PARAMETERS = 7_087_104  # weights of the one shared layer (tests/test_convert_albert_base.py)
LAYER_CALLS = 12

ARM_TARGETS = {
    "rpi4": dict(
        description="Raspberry Pi 4 Model B: BCM2711, 4 x Cortex-A72 (ARMv8.0-A: NEON, no int8 dot product) at 1.8 GHz "
                    "(boards from rev 1.4; older boards run at 1.5 GHz and will be about 20% slower), LPDDR4-3200 "
                    "(32-bit bus); 64-bit Raspberry Pi OS bookworm, Python 3.11, ai-edge-litert, 4 threads",
        architectures=["aarch64"], device_model_contains="Raspberry Pi 4", android=False, threads=4,
        ghz=1.8, cores=4, fp32_per_cycle=8, int8_per_cycle=8,
        peak_why="fp32: 2 NEON pipes x 4-lane FMLA = 8 FMA/cycle/core; int8: SMLAL/SMLAL2 widening multiply-"
                 "accumulate (ARMv8.0 has no SDOT), about 8 MAC/cycle/core",
        bandwidth_gbs=4.0, bandwidth_why="assumed 4 GB/s attainable of the 12.8 GB/s theoretical LPDDR4-3200 x32",
        efficiency=0.4, load_factor=4.0, storage_mbs=40.0,
        storage_why="microSD read at about 40 MB/s (cold page cache)"),
    "rpi5": dict(
        description="Raspberry Pi 5: BCM2712, 4 x Cortex-A76 (ARMv8.2-A with int8 dot product) at 2.4 GHz, "
                    "LPDDR4X-4267 (32-bit bus); 64-bit Raspberry Pi OS bookworm, Python 3.11, ai-edge-litert, 4 threads",
        architectures=["aarch64"], device_model_contains="Raspberry Pi 5", android=False, threads=4,
        ghz=2.4, cores=4, fp32_per_cycle=8, int8_per_cycle=32,
        peak_why="fp32: 2 NEON pipes x 4-lane FMLA = 8 FMA/cycle/core; int8: 2 x SDOT (16 MAC each) = 32 MAC/cycle/core",
        bandwidth_gbs=8.0, bandwidth_why="assumed 8 GB/s attainable of the 17 GB/s theoretical LPDDR4X-4267 x32",
        efficiency=0.4, load_factor=2.5, storage_mbs=80.0,
        storage_why="microSD (SDR104) read at about 80 MB/s (cold page cache)"),
    "android-arm64": dict(
        description="Reference mid/high-range Android phone: 4 big cores of the Cortex-A76/A77/A78 class at about "
                    "2.4 GHz with int8 dot product (e.g. Snapdragon 855-888, Dimensity 1000-1200 class), LPDDR4X/5, "
                    "4 threads. `edge-albert bench` checks these budgets only where a Python LiteRT runs on the phone "
                    "(ai-edge-litert has no Android wheel); elsewhere time model.tflite with TFLite's benchmark_model "
                    "(--num_threads=4) on the phone and compare with the same numbers",
        architectures=["aarch64"], device_model_contains=None, android=True, threads=4,
        ghz=2.4, cores=4, fp32_per_cycle=8, int8_per_cycle=32,
        peak_why="fp32: 2 NEON pipes x 4-lane FMLA = 8 FMA/cycle/core; int8: 2 x SDOT (16 MAC each) = 32 MAC/cycle/core",
        bandwidth_gbs=8.0, bandwidth_why="assumed 8 GB/s attainable for one app on LPDDR4X/LPDDR5",
        efficiency=0.3, load_factor=3.0, storage_mbs=300.0,
        storage_why="UFS read at about 300 MB/s (cold page cache); thermal throttling and big/little scheduling "
                    "assumed to cost a further 25% (30% of peak instead of 40%)"),
}
X86_MARGIN = {"p50_ms": 1.5, "p99_ms": 2.0, "peak_rss_mb": 1.2, "load_ms": 2.0}


def nice_ceiling(value: float) -> float:
    """Round a budget up to a readable number (2 significant digits)."""
    if value <= 0:
        return value
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / step) * step


def roofline_ms(chip: dict, quantization: str, seq_len: int) -> dict:
    macs = albert_macs(BASE, seq_len)
    fp32_rate = chip["fp32_per_cycle"] * chip["cores"] * chip["ghz"] * 1e9
    int8_rate = chip["int8_per_cycle"] * chip["cores"] * chip["ghz"] * 1e9
    mode = MODES[quantization]
    if mode.int8_weights:  # int8 dense layers; attention scores (activation x activation) stay fp32
        compute = (macs["dense"] / int8_rate + macs["attention"] / fp32_rate) * 1e3
    else:
        compute = macs["total"] / fp32_rate * 1e3
    # fp16 bundles store half-precision weights that the CPU kernels dequantize to fp32 at load
    weight_bytes = SHARED_LAYER_PARAMETERS * mode.kernel_weight_bytes * LAYER_CALLS
    memory = weight_bytes / (chip["bandwidth_gbs"] * 1e9) * 1e3
    return {"macs": macs, "compute_ms": compute, "memory_ms": memory, "weight_mb": weight_bytes / 1e6}


def read_measured(folder: Path) -> dict:
    """x86 `edge-albert bench --json` results, one per quantization: {quantization: result dict}."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "model" in data and "results" in data:
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            found[data["model"]["quantization"]] = dict(data, _file=str(shown))
    missing = [q for q in QUANTIZATIONS if q not in found]
    if missing:
        raise SystemExit(f"{folder} lacks bench results for {', '.join(missing)}; run the commands in benchmarks/README.md")
    return found


def _seq(result: dict, seq_len: int) -> dict:
    return next(r for r in result["results"] if r["seq_len"] == seq_len)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def header(name: str, description: str, architectures, threads: int, device_model, android: bool, notes: str) -> list:
    lines = [f"# Budgets for {name}, written by benchmarks/make_targets.py; read by `edge-albert bench --target {name}`.",
             "# Each number has its source beside it (*_source). " + notes, "",
             "[target]", f"name = {toml_string(name)}", f"description = {toml_string(description)}",
             f"architectures = {json.dumps(architectures)}", f"threads = {threads}"]
    if device_model:
        lines.append(f"device_model_contains = {toml_string(device_model)}")
    if android:
        lines.append("android = true")
    lines += ["", "# budgets apply to bundles of this model shape", "[model]"]
    lines += [f"{k} = {v}" for k, v in BASE.items()]
    return lines


def budget_block(quantization: str, seq_len: int, values: dict, sources: dict) -> list:
    lines = ["", "[[budget]]", f"quantization = {toml_string(quantization)}", f"seq_len = {seq_len}"]
    for metric in ("p50_ms", "p99_ms", "peak_rss_mb", "load_ms"):
        lines.append(f"{metric} = {values[metric]:g}")
        lines.append(f"{metric}_source = {toml_string(sources[metric])}")
    return lines


def arm_target(name: str, chip: dict, measured: dict) -> str:
    fp32_peak = chip["fp32_per_cycle"] * chip["cores"] * chip["ghz"]
    int8_peak = chip["int8_per_cycle"] * chip["cores"] * chip["ghz"]
    lines = header(name, chip["description"], chip["architectures"], chip["threads"], chip["device_model_contains"],
                   chip["android"], "No figure here was measured on this device: all are ESTIMATES.")
    lines += [f"# peak: {chip['peak_why']}; {chip['cores']} cores x {chip['ghz']} GHz = {fp32_peak:.1f} G fp32 FMA/s, "
              f"{int8_peak:.1f} G int8 MAC/s.", f"# memory: {chip['bandwidth_why']}.",
              f"# latency budget = max(compute bound, weight streaming) / {chip['efficiency']} (assumed attainable "
              "fraction of peak); p99 = 1.3 x p50."]
    for quantization in QUANTIZATIONS:
        x86 = measured[quantization]
        for seq_len in SEQ_LENS:
            roof = roofline_ms(chip, quantization, seq_len)
            bound = max(roof["compute_ms"], roof["memory_ms"])
            p50 = nice_ceiling(bound / chip["efficiency"])
            rate = "int8 weights x int8 rate, attention scores fp32" if MODES[quantization].int8_weights else "fp32 rate"
            p50_source = (f"estimate: {roof['macs']['total'] / 1e9:.2f} G MAC at seq {seq_len} ({rate}) -> compute bound "
                          f"{roof['compute_ms']:.1f} ms; shared-layer weights {roof['weight_mb']:.0f} MB per inference "
                          f"-> {roof['memory_ms']:.1f} ms at {chip['bandwidth_gbs']:g} GB/s; max / {chip['efficiency']}")
            rss = _seq(x86, seq_len)["peak_rss_mb"]
            load = x86["load_ms"]
            file_mb = x86["model"]["file_bytes"] / 1e6
            load_budget = nice_ceiling(load * chip["load_factor"] + file_mb / chip["storage_mbs"] * 1e3)
            values = {"p50_ms": p50, "p99_ms": nice_ceiling(1.3 * p50), "peak_rss_mb": nice_ceiling(1.25 * rss),
                      "load_ms": load_budget}
            sources = {
                "p50_ms": p50_source,
                "p99_ms": "estimate: 1.3 x the p50 budget (tail allowance for a desktop OS; no device measurement)",
                "peak_rss_mb": (f"estimate: 1.25 x the same bundle's peak RSS measured on x86-64 ({rss:.0f} MB, "
                                f"{x86['_file']}); RSS is the model's arena and weights, not the instruction set"),
                "load_ms": (f"estimate: {chip['load_factor']:g} x the x86-64 load ({load:.0f} ms, {x86['_file']}) for a "
                            f"slower core, + {file_mb:.1f} MB at {chip['storage_mbs']:g} MB/s ({chip['storage_why']})"),
            }
            lines += budget_block(quantization, seq_len, values, sources)
    return "\n".join(lines) + "\n"


def x86_target(measured: dict) -> str:
    any_result = next(iter(measured.values()))
    machine = any_result["machine"]
    description = (f"The x86-64 workstation these budgets were measured on: {machine['cpu_model']}, {machine['cores']} "
                   f"cores ({', '.join(machine['simd'])}), {machine['os']}; on another x86 machine they are only "
                   "indicative. Measured with 2 threads, batch 1")
    lines = header("x86-host", description, ["x86_64", "AMD64"], int(any_result["settings"]["threads"]), None, False,
                   "Measured here with `edge-albert bench` (files named in each source); budget = measured x margin "
                   f"({', '.join(f'{k} x{v:g}' for k, v in X86_MARGIN.items())}) for a shared, noisy machine.")
    for quantization in QUANTIZATIONS:
        result = measured[quantization]
        when = f"{result['_file']}, load average {result['machine'].get('load_average')}"
        for seq_len in SEQ_LENS:
            entry = _seq(result, seq_len)
            got = {"p50_ms": entry["latency"]["p50_ms"], "p99_ms": entry["latency"]["p99_ms"],
                   "peak_rss_mb": entry["peak_rss_mb"], "load_ms": result["load_ms"]}
            values = {m: nice_ceiling(v * X86_MARGIN[m]) for m, v in got.items()}
            sources = {m: f"measured {got[m]:.1f} ({when}) x {X86_MARGIN[m]:g}" for m in got}
            lines += budget_block(quantization, seq_len, values, sources)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measured", type=Path, default=REPO / "benchmarks" / "results" / "x86-host")
    parser.add_argument("--out", type=Path, default=REPO / "edge_albert" / "targets")
    args = parser.parse_args()
    measured = read_measured(args.measured.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, chip in ARM_TARGETS.items():
        (args.out / f"{name}.toml").write_text(arm_target(name, chip, measured))
    (args.out / "x86-host.toml").write_text(x86_target(measured))
    print(f"wrote {', '.join(sorted(p.name for p in args.out.glob('*.toml')))} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
