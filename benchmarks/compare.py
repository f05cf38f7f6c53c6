"""Side-by-side comparison on this machine: PyTorch eager, ONNX Runtime, edge-albert (workstation script).

    python benchmarks/compare.py CHECKPOINT_DIR [--work-dir DIR] [--threads 2] [--rounds 10] ...

One process times every backend on the same inputs (real text of exactly 32 and 128 tokens) with
the same thread count, in alternating blocks with a pause between blocks: machine noise then
hits every backend alike, and ONNX Runtime's or OpenMP's spinning worker threads cannot steal
the CPU from the backend that runs next. Peak memory is measured per backend in a fresh
subprocess that imports only that backend, so numbers do not mix. Models are prepared into
--work-dir (conversion, ONNX export, quantization) and reused by later runs that name it; without
it, a private temporary directory is used and removed afterwards (--keep-work-dir keeps it).

Writes benchmarks/results/<date>-<host>.md, .json and .png, or <date>-<host>-2.* and so on: a result
file that exists is never overwritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert import bench  # noqa: E402
from edge_albert.contract import ATTENTION_MASK, INPUT_IDS, INPUT_NAMES, TOKEN_TYPE_IDS, task_contract  # noqa: E402
from edge_albert.hf.macs import albert_macs  # noqa: E402
from edge_albert.quantization import ALL, LOOP, MODES, UNROLLED, parse_modes  # noqa: E402

SST2_TRAIN = REPO / "data" / "glue-sst2" / "train.tsv"
LOGITS = task_contract("text-classification").output_names[0]
QUANTIZATIONS = tuple(mode.name for mode in parse_modes(ALL))  # every mode converted without calibration
CALIBRATED = tuple(name for name, mode in MODES.items() if mode.needs_calibration)  # full int8: unrolled only
ISSUE_TARGETS = {  # issue 4's acceptance figures for edge-albert loop dynamic-int8
    "p50_128_vs_ort_int8": 0.25, "bound_factor": 1.5, "size_vs_ort_int8": 0.35, "peak_rss_mb": 150.0,
    "seq32_vs_seq128": 0.4,
}


# -- backends ----------------------------------------------------------------------------------
@dataclass
class BackendSpec:
    """One row of the table: how to load it, which file it runs, at what precision."""

    key: str
    label: str
    family: str  # pytorch | onnxruntime | edge-albert
    precision: str  # fp32 | fp16 | dynamic-int8 | int8 (selects the compute bound and the ORT peer)
    files: Dict[int, Path] = field(default_factory=dict)  # seq_len -> model file (fixed-shape forms differ)
    note: str = ""

    @property
    def size_bytes(self) -> Optional[int]:
        sizes = [p.stat().st_size for p in self.files.values() if p.is_file()]
        return max(sizes) if sizes else None


def backend_specs(work: Path, checkpoint: Path, seq_lens: List[int]) -> List[BackendSpec]:
    specs = [BackendSpec("torch", "PyTorch eager (transformers) fp32", "pytorch", "fp32",
                         {n: _weights_file(checkpoint) for n in seq_lens}),
             BackendSpec("ort-fp32", "ONNX Runtime fp32", "onnxruntime", "fp32", {n: work / "model.onnx" for n in seq_lens}),
             BackendSpec("ort-int8", "ONNX Runtime dynamic int8", "onnxruntime", "dynamic-int8",
                         {n: work / "model-int8.onnx" for n in seq_lens})]
    for q in QUANTIZATIONS:
        specs.append(BackendSpec(f"loop-{q}", f"edge-albert loop {q}", "edge-albert", q,
                                 {n: work / f"loop-{q}.edgealbert" / "model.tflite" for n in seq_lens}))
    for q in QUANTIZATIONS + CALIBRATED:
        specs.append(BackendSpec(f"unrolled-{q}", f"edge-albert unrolled {q}", "edge-albert", q,
                                 {n: work / f"unrolled{n}-{q}.edgealbert" / "model.tflite" for n in seq_lens},
                                 note="one fixed-length bundle per sequence length"))
    return [s for s in specs if all(p.exists() for p in s.files.values())]


def _weights_file(checkpoint: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (checkpoint / name).is_file():
            return checkpoint / name
    raise SystemExit(f"{checkpoint} has no model.safetensors or pytorch_model.bin")


def load_runner(spec: BackendSpec, checkpoint: Path, threads: int) -> Callable[[int, Dict[str, np.ndarray]], np.ndarray]:
    """A function (seq_len, int32 feed) -> logits for one backend, everything loaded up front."""
    if spec.family == "pytorch":  # the project's PyTorch reference, as verification and the accuracy gate run it
        import torch

        from edge_albert.hf.reference import load_reference_runner

        torch.set_num_threads(threads)
        reference = load_reference_runner(checkpoint)

        def run_torch(seq_len, feed):
            return reference.run(feed)[LOGITS]

        return run_torch
    if spec.family == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle workers must not spin
        session = ort.InferenceSession(str(next(iter(spec.files.values()))), options, providers=["CPUExecutionProvider"])

        def run_ort(seq_len, feed):
            return session.run([LOGITS], {k: v.astype(np.int64) for k, v in feed.items()})[0]

        return run_ort
    from edge_albert.tasks import TextClassifier

    models = {}
    for seq_len, path in spec.files.items():
        bundle_dir = path.parent
        if bundle_dir not in models:
            models[bundle_dir] = TextClassifier.load(bundle_dir, num_threads=threads)
    by_len = {n: models[p.parent].session for n, p in spec.files.items()}

    def run_edge(seq_len, feed):
        return by_len[seq_len].run(*(feed[name] for name in INPUT_NAMES))[LOGITS]

    return run_edge


# -- preparation (cached in the work dir) ------------------------------------------------------
def prepare(checkpoint: Path, work: Path, seq_lens: List[int], calibration: Optional[Path], say) -> Dict[str, str]:
    """Convert the bundles, export and quantize the ONNX models; skip what the work dir has. Returns notes."""
    from edge_albert.converters.convert import convert_checkpoint
    from edge_albert.converters.samples import read_text_lines

    work.mkdir(parents=True, exist_ok=True)
    notes: Dict[str, str] = {}
    max_len = max(seq_lens)
    if not all((work / f"loop-{q}.edgealbert").is_dir() for q in QUANTIZATIONS):
        say(f"converting loop form {','.join(QUANTIZATIONS)} (max_seq_len {max_len})")
        convert_checkpoint(checkpoint, work / "loop.edgealbert", quantize=",".join(QUANTIZATIONS), graph=LOOP,
                           max_seq_len=max_len, overwrite=True, progress=say)
    calibration_texts = read_text_lines(calibration) if calibration else _sst2_sentences(100)
    for seq_len in seq_lens:
        if not all((work / f"unrolled{seq_len}-{q}.edgealbert").is_dir() for q in QUANTIZATIONS):
            say(f"converting unrolled form {','.join(QUANTIZATIONS)} at fixed length {seq_len}")
            convert_checkpoint(checkpoint, work / f"unrolled{seq_len}.edgealbert", quantize=",".join(QUANTIZATIONS),
                               graph=UNROLLED, max_seq_len=seq_len, overwrite=True, progress=say)
        for q in CALIBRATED:
            note = _convert_calibrated(checkpoint, work, q, seq_len, calibration_texts, say)
            if note:
                notes[f"unrolled-{q}@{seq_len}"] = note
    if not (work / "model.onnx").is_file():
        say("exporting ONNX (torch.onnx.export, TorchScript exporter, opset 17, dynamic batch and length)")
        export_onnx(checkpoint, work / "model.onnx")
    if not (work / "model-int8.onnx").is_file():
        say("quantizing ONNX (onnxruntime.quantization.quantize_dynamic, QInt8 weights)")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(work / "model.onnx"), str(work / "model-int8.onnx"), weight_type=QuantType.QInt8)
    return notes


def _convert_calibrated(checkpoint: Path, work: Path, q: str, seq_len: int, calibration_texts: List[str],
                        say) -> Optional[str]:
    """Convert calibrated mode `q` (full int8) unrolled at `seq_len`, once; a note when it failed its check or to convert."""
    from edge_albert.converters.convert import convert_checkpoint

    target = work / f"unrolled{seq_len}-{q}.edgealbert"
    failed = work / f"unrolled{seq_len}-{q}.failed"
    note = None
    if not target.is_dir() and not failed.exists():
        say(f"converting unrolled {q} at fixed length {seq_len} ({len(calibration_texts)} calibration texts)")
        try:
            # forced: a random-weight model's full-int8 logits may miss the tolerance; the table shows the diff
            result = convert_checkpoint(checkpoint, target, quantize=q, graph=UNROLLED, max_seq_len=seq_len,
                                        calibration_texts=calibration_texts, force=True, overwrite=True, progress=say)
            check = result.variants[0].check
            if not check.passed:
                note = f"failed verification, bundled with force: {check.message}"
        except Exception as exc:  # a conversion failure is a result to report, not a crash
            failed.write_text(f"{type(exc).__name__}: {exc}\n")
    if failed.exists():
        note = "did not convert: " + failed.read_text().strip()
    return note


def _sst2_sentences(count: int) -> List[str]:
    if SST2_TRAIN.is_file():
        lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:count + 1]
        return [line.split("\t")[0] for line in lines]
    return [s.strip() + "." for s in bench.BENCH_TEXT.split(". ") if s.strip()]


def export_onnx(checkpoint: Path, out: Path) -> None:
    import torch

    from edge_albert.hf.reference import load_reference_model

    model = load_reference_model(checkpoint)
    ids = torch.randint(5, 1000, (1, 16))
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes[LOGITS] = {0: "batch"}
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out), input_names=list(INPUT_NAMES),
                      output_names=[LOGITS], dynamic_axes=axes, opset_version=17, dynamo=False)


# -- inputs ------------------------------------------------------------------------------------
def make_inputs(work: Path, seq_lens: List[int]) -> Dict[int, Dict[str, np.ndarray]]:
    """Real text of exactly each length, tokenized by the bundle's tokenizer; saved for the memory probes."""
    from edge_albert.tokenizer import AlbertTokenizer

    tokenizer = AlbertTokenizer.from_file(work / "loop-fp32.edgealbert" / "tokenizer.json")
    feeds = {}
    for seq_len in seq_lens:
        ids, mask, types = bench.inputs_of_length(tokenizer, seq_len)
        feeds[seq_len] = {INPUT_IDS: ids, ATTENTION_MASK: mask, TOKEN_TYPE_IDS: types}
    np.savez(work / "inputs.npz", **{f"{n}:{k}": v for n, feed in feeds.items() for k, v in feed.items()})
    return feeds


def load_inputs(work: Path) -> Dict[int, Dict[str, np.ndarray]]:
    feeds: Dict[int, Dict[str, np.ndarray]] = {}
    with np.load(work / "inputs.npz") as data:
        for key in data.files:
            seq_len, name = key.split(":")
            feeds.setdefault(int(seq_len), {})[name] = data[key]
    return feeds


# -- timing ------------------------------------------------------------------------------------
def measure_latency(specs, runners, feeds, rounds: int, block_runs: int, pause: float, say) -> dict:
    """Alternating blocks: every round runs each backend for `block_runs` timed runs per length
    (after one untimed run), in a rotated order, with `pause` seconds between backends."""
    samples = {s.key: {n: [] for n in feeds} for s in specs}
    loads = []
    for round_index in range(rounds):
        order = specs[round_index % len(specs):] + specs[:round_index % len(specs)]
        loads.append(os.getloadavg()[0])
        for spec in order:
            for seq_len, feed in feeds.items():
                runs, _ = bench.time_runs(lambda: runners[spec.key](seq_len, feed), block_runs, warmup=1)
                samples[spec.key][seq_len].extend(runs)
            time.sleep(pause)
        say(f"round {round_index + 1}/{rounds} done (1-min load {loads[-1]:.2f})")
    return {"samples": samples, "load_per_round": loads}


def memory_probe(spec: BackendSpec, checkpoint: Path, work: Path, threads: int, runs: int = 5) -> dict:
    """Run in a fresh process: RSS after the backend's imports, then peak RSS through load and runs."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import compare; compare._probe_main()")
    payload = json.dumps({"key": spec.key, "checkpoint": str(checkpoint), "work": str(work), "threads": threads,
                          "runs": runs})
    done = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def _probe_main() -> None:
    args = json.loads(sys.argv[1])
    work, checkpoint = Path(args["work"]), Path(args["checkpoint"])
    feeds = load_inputs(work)
    spec = next(s for s in backend_specs(work, checkpoint, sorted(feeds)) if s.key == args["key"])
    # import the backend's libraries first, so that the baseline holds them and the increase is the model
    if spec.family == "pytorch":
        import torch  # noqa: F401
        import transformers  # noqa: F401

        import edge_albert.hf.reference  # noqa: F401
    elif spec.family == "onnxruntime":
        import onnxruntime  # noqa: F401
    else:
        import edge_albert.tasks  # noqa: F401
        from edge_albert.runtime import find_backend

        find_backend()
    if len(set(spec.files.values())) > 1:  # fixed-shape forms: one bundle per length; a device holds one
        longest = max(spec.files)
        spec.files = {longest: spec.files[longest]}
        feeds = {longest: feeds[longest]}
    baseline = bench.current_rss_bytes()
    runner = load_runner(spec, checkpoint, args["threads"])
    for seq_len, feed in sorted(feeds.items()):
        for _ in range(args["runs"]):
            runner(seq_len, feed)
    print(json.dumps({"rss_after_imports_mb": baseline / 1e6, "peak_rss_mb": bench.peak_rss_bytes() / 1e6}))


# -- compute bound -----------------------------------------------------------------------------
def machine_peak(machine: dict, ghz: Optional[float], threads: Optional[int] = None) -> dict:
    """Peak multiply-accumulates per second of this CPU, from its SIMD flags (an estimate: nominal clock).

    x86: fp32 = 2 FMA ports x lanes; int8 = 2 ports x (VPMADDUBSW/VPDPBUSD MACs per instruction).
    """
    simd = set(machine.get("simd") or [])
    ghz = ghz or (machine.get("cpu_mhz") or 0) / 1e3
    cores = min(machine.get("cores") or 1, threads or machine.get("cores") or 1)  # the cores the backends use
    if "avx512f" in simd:
        fp32, int8, why = 32, 128, "AVX-512: 2 x 16-lane FMA; 2 x 64 int8 MAC (VPDPBUSD/VPMADDUBSW zmm)"
    elif "avx2" in simd:
        fp32, int8, why = 16, 64, "AVX2: 2 x 8-lane FMA; 2 x 32 int8 MAC (VPMADDUBSW/VPDPBUSD ymm)"
    elif "asimddp" in simd:
        fp32, int8, why = 8, 32, "NEON: 2 x 4-lane FMLA; 2 x 16 int8 MAC (SDOT)"
    else:
        fp32, int8, why = 8, 8, "NEON without dot product: 2 x 4-lane FMLA; 8 int8 MAC (SMLAL)"
    return {"ghz": ghz, "cores": cores, "fp32_per_cycle": fp32, "int8_per_cycle": int8, "why": why,
            "fp32_gmac_s": fp32 * cores * ghz, "int8_gmac_s": int8 * cores * ghz}


def compute_bound_ms(config: dict, seq_len: int, precision: str, peak: dict) -> float:
    """Time the multiply-accumulates alone need at peak: weight MACs at the int8 rate for int8
    variants (attention scores stay fp32 in dynamic-range models), everything at fp32 otherwise."""
    macs = albert_macs(config, seq_len)
    if peak["fp32_gmac_s"] <= 0:
        return math.nan
    mode = MODES.get(precision)
    if mode is not None and mode.int8_weights and not mode.needs_calibration:
        return (macs["dense"] / peak["int8_gmac_s"] + macs["attention"] / peak["fp32_gmac_s"]) / 1e6
    if mode is not None and mode.needs_calibration:
        return macs["total"] / peak["int8_gmac_s"] / 1e6
    return macs["total"] / peak["fp32_gmac_s"] / 1e6


# -- report ------------------------------------------------------------------------------------
def summarise(specs, latency, diffs, memory, config, peak, seq_lens) -> List[dict]:
    rows = []
    by_key = {}
    for spec in specs:
        stats = {n: bench.LatencyStats.from_samples(latency["samples"][spec.key][n]) for n in seq_lens}
        row = {"key": spec.key, "label": spec.label, "family": spec.family, "precision": spec.precision,
               "file_mb": (spec.size_bytes or 0) / 1e6, "note": spec.note,
               "latency": {str(n): vars(s) for n, s in stats.items()},
               "max_logit_diff": diffs.get(spec.key), "memory": memory.get(spec.key, {}),
               "bound_ms": {str(n): compute_bound_ms(config, n, spec.precision, peak) for n in seq_lens}}
        rows.append(row)
        by_key[spec.key] = row
    for row in rows:
        peer = by_key.get("ort-int8" if MODES[row["precision"]].int8_weights else "ort-fp32")
        row["peer"] = peer["key"] if peer else None
        if peer:
            row["p50_vs_peer"] = {n: row["latency"][n]["p50_ms"] / peer["latency"][n]["p50_ms"] for n in row["latency"]}
            row["size_vs_peer"] = row["file_mb"] / peer["file_mb"] if peer["file_mb"] else None
    return rows


def evaluate_targets(rows: List[dict], seq_lens: List[int]) -> List[dict]:
    """Issue 4's acceptance figures for edge-albert loop dynamic-int8, measured vs wanted."""
    row = next((r for r in rows if r["key"] == "loop-dynamic-int8"), None)
    ort = next((r for r in rows if r["key"] == "ort-int8"), None)
    if row is None or ort is None or 128 not in seq_lens or 32 not in seq_lens:
        return []
    p50 = {n: row["latency"][str(n)]["p50_ms"] for n in (32, 128)}
    peak_rss = row["memory"].get("peak_rss_mb", math.nan)
    checks = [
        ("p50 at seq 128 vs ONNX Runtime dynamic int8", p50[128] / ort["latency"]["128"]["p50_ms"], ISSUE_TARGETS["p50_128_vs_ort_int8"], "x"),
        ("p50 at seq 128 vs the int8 compute bound", p50[128] / row["bound_ms"]["128"], ISSUE_TARGETS["bound_factor"], "x"),
        ("file size vs ONNX Runtime dynamic int8", row["file_mb"] / ort["file_mb"], ISSUE_TARGETS["size_vs_ort_int8"], "x"),
        ("peak RSS (separate process)", peak_rss, ISSUE_TARGETS["peak_rss_mb"], "MB"),
        ("p50 seq 32 / p50 seq 128", p50[32] / p50[128], ISSUE_TARGETS["seq32_vs_seq128"], "x"),
    ]
    return [{"what": what, "measured": value, "target": target, "unit": unit, "met": bool(value <= target),
             "miss_factor": value / target} for what, value, target, unit in checks]


def markdown(report: dict) -> str:
    s, m, peak = report["settings"], report["machine"], report["peak"]
    seq_lens = s["seq_lens"]
    lines = [f"# Peer comparison: {report['date']} on {m['hostname']}", "",
             "Command (from the repository root):", "", f"    {report['command']}", "",
             f"- model: {report['model']} ({report['parameters']:,} parameters), "
             f"inputs: real text tokenized to exactly {', '.join(map(str, seq_lens))} tokens, batch 1",
             f"- settings: {s['threads']} threads everywhere, {s['rounds']} rounds x {s['block_runs']} timed runs per "
             f"backend and length (+1 untimed run per block), backends alternated in rotated order, {s['pause']} s pause "
             f"between blocks; ONNX Runtime with intra_op_num_threads={s['threads']}, allow_spinning=0; "
             f"PyTorch torch.set_num_threads({s['threads']}), inference_mode",
             f"- machine: {m['cpu_model']} ({', '.join(m['simd'])}), {m['cores']} cores at {m.get('cpu_mhz')} MHz nominal, "
             f"{m['os']}, Python {m['python']}; {report['versions']}",
             f"- 1-minute load average: {report['load']['before']:.2f} before, per round "
             f"{min(report['load']['per_round']):.2f}-{max(report['load']['per_round']):.2f}, {report['load']['after']:.2f} after"
             + (f". {report['load']['note']}" if report['load'].get('note') else ""),
             f"- compute bound: {peak['why']}, {peak['ghz']:.2f} GHz x {peak['cores']} cores = "
             f"{peak['fp32_gmac_s']:.0f} G fp32 FMA/s, {peak['int8_gmac_s']:.0f} G int8 MAC/s (nominal clock; "
             f"see benchmarks/README.md)", "",
             "Latency in ms (p50 / p99); bound = compute-bound ms at this precision; peak RSS of a separate process "
             "that imports only that backend (model = peak minus RSS after imports); diff = max |logit diff| vs "
             "PyTorch on the same inputs; ratios are to ONNX Runtime of the same precision class (fp32 for "
             "float rows, dynamic int8 for int8 rows).", ""]
    head = "| backend | file MB | " + " | ".join(f"p50 / p99 (min) @{n}" for n in seq_lens) + \
        f" | bound @{seq_lens[-1]} | % of bound @{seq_lens[-1]} | @{seq_lens[0]}/@{seq_lens[-1]} | peak RSS MB | model MB | diff vs PyTorch | p50 vs ORT @{seq_lens[-1]} | size vs ORT |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    last, first = str(seq_lens[-1]), str(seq_lens[0])
    for row in report["rows"]:
        lat = row["latency"]
        mem = row["memory"]
        diff = row["max_logit_diff"]
        lines.append(
            f"| {row['label']} | {row['file_mb']:.2f} | "
            + " | ".join(f"{lat[str(n)]['p50_ms']:.1f} / {lat[str(n)]['p99_ms']:.1f} ({lat[str(n)]['min_ms']:.1f})"
                         for n in seq_lens)
            + f" | {row['bound_ms'][last]:.1f} | {100 * row['bound_ms'][last] / lat[last]['p50_ms']:.0f}% | "
            f"{lat[first]['p50_ms'] / lat[last]['p50_ms']:.2f} | "
            f"{_num(mem.get('peak_rss_mb'), '.0f')} | {_num(_model_mb(mem), '.0f')} | "
            f"{'reference' if row['key'] == 'torch' else _num(diff, '.1e')} | "
            f"{_num((row.get('p50_vs_peer') or {}).get(last), '.2f')} | {_num(row.get('size_vs_peer'), '.2f')} |")
    if report.get("notes"):
        lines += ["", "Notes:"] + [f"- {k}: {v}" for k, v in report["notes"].items()]
    if report["targets"]:
        lines += ["", "## Issue 4 targets (edge-albert loop dynamic-int8)", "", "| what | measured | target | met |",
                  "|---|---|---|---|"]
        for t in report["targets"]:
            verdict = "yes" if t["met"] else f"**no** ({t['miss_factor']:.2f}x the target)"
            lines.append(f"| {t['what']} | {t['measured']:.2f} {t['unit']} | <= {t['target']:g} {t['unit']} | {verdict} |")
    lines += ["", "Unrolled rows run one fixed-length bundle per sequence length (file size: the longest); their "
              "peak RSS is measured with the longest one alone, as a device would hold one.",
              "", f"Chart: {report['chart']}", ""]
    return "\n".join(lines)


def _num(value, spec):
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _model_mb(memory: dict):
    if "peak_rss_mb" in memory and "rss_after_imports_mb" in memory:
        return memory["peak_rss_mb"] - memory["rss_after_imports_mb"]
    return None


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    labels = [r["label"].replace("edge-albert ", "ea ").replace("ONNX Runtime", "ORT").replace(" (transformers)", "")
              for r in rows]
    seq_lens = report["settings"]["seq_lens"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(rows) + 2), dpi=110, sharey=True)
    y = np.arange(len(rows))
    height = 0.8 / len(seq_lens)
    for i, n in enumerate(seq_lens):
        p50 = [r["latency"][str(n)]["p50_ms"] for r in rows]
        p99 = [r["latency"][str(n)]["p99_ms"] for r in rows]
        axes[0].barh(y + i * height, p50, height, xerr=[[0] * len(rows), np.subtract(p99, p50)], label=f"seq {n} (p50, bar to p99)")
    axes[0].set_xlabel("latency ms")
    axes[0].legend(fontsize=8)
    axes[1].barh(y, [r["file_mb"] for r in rows], color="tab:green")
    axes[1].set_xlabel("file MB")
    axes[2].barh(y, [r["memory"].get("peak_rss_mb", 0) for r in rows], color="tab:purple")
    axes[2].set_xlabel("peak RSS MB (own process)")
    axes[0].set_yticks(y + 0.4 - height / 2)
    axes[0].set_yticklabels(labels, fontsize=8)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"albert-base-v2 shape, batch 1, {report['settings']['threads']} threads, {report['machine']['cpu_model']}, "
                 f"{report['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- main --------------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="Hugging Face ALBERT sequence-classification checkpoint")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="converted models, reused by later runs that name it [default: a private temporary "
                             "directory, removed afterwards]")
    parser.add_argument("--keep-work-dir", action="store_true", help="keep the default temporary work directory")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seq-lens", default="32,128")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block-runs", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--calibration-texts", type=Path, help="for full int8 [default: 100 SST-2 train sentences]")
    parser.add_argument("--ghz", type=float, help="clock for the compute bound [default: /proc/cpuinfo's nominal MHz]")
    parser.add_argument("--prepare-only", action="store_true", help="convert/export into --work-dir and stop")
    parser.add_argument("--only", help="comma list of backend keys to run (default: all prepared)")
    parser.add_argument("--load-note", default="", help="a sentence about machine load to put in the result")
    parser.add_argument("--tag", default="", help="suffix for the result files (<date>-<host>-<tag>.md)")
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)

    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    seq_lens = bench.parse_seq_lens(args.seq_lens)
    checkpoint = args.checkpoint.resolve()
    private_work = args.work_dir is None
    if private_work:  # never share a fixed /tmp path with other runs or users
        args.work_dir = Path(tempfile.mkdtemp(prefix="edge-albert-compare-"))
        say(f"work directory {args.work_dir}" + (" (kept)" if args.keep_work_dir else " (removed afterwards)"))
    try:
        return _run(args, arguments, checkpoint, seq_lens, say)
    finally:
        if private_work and not args.keep_work_dir:
            shutil.rmtree(args.work_dir, ignore_errors=True)


def unique_result_stem(out_dir: Path, name: str) -> Path:
    """out_dir/name, or name-2, name-3, ... so that no committed .md/.json/.png is ever overwritten."""
    for attempt in range(1, 1000):
        stem = out_dir / (name if attempt == 1 else f"{name}-{attempt}")
        if not any(stem.with_suffix(suffix).exists() for suffix in (".md", ".json", ".png")):
            return stem
    raise SystemExit(f"error: no free result name for {out_dir / name} (999 taken)")


def _write_new(path: Path, text: str) -> None:
    """Create `path`; refuse (FileExistsError) rather than replace a file that appeared meanwhile."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)


def _run(args, arguments: List[str], checkpoint: Path, seq_lens: List[int], say) -> int:
    notes = prepare(checkpoint, args.work_dir, seq_lens, args.calibration_texts, say)
    if args.prepare_only:
        return 0
    config = json.loads((checkpoint / "config.json").read_text())
    specs = backend_specs(args.work_dir, checkpoint, seq_lens)
    if args.only:
        keep = set(args.only.split(","))
        specs = [s for s in specs if s.key in keep]
    feeds = make_inputs(args.work_dir, seq_lens)
    load_before = os.getloadavg()[0]

    say(f"measuring peak memory of {len(specs)} backends, one subprocess each")
    memory = {s.key: memory_probe(s, checkpoint, args.work_dir, args.threads) for s in specs}

    say("loading every backend into this process")
    runners = {s.key: load_runner(s, checkpoint, args.threads) for s in specs}
    outputs = {s.key: {n: runners[s.key](n, feed) for n, feed in feeds.items()} for s in specs}
    reference = outputs.get("torch")
    diffs = {}
    if reference is not None:
        diffs = {k: float(max(np.abs(v[n] - reference[n]).max() for n in feeds)) for k, v in outputs.items()}
    say(f"timing {len(specs)} backends x {len(seq_lens)} lengths in {args.rounds} alternating rounds")
    latency = measure_latency(specs, runners, feeds, args.rounds, args.block_runs, args.pause, say)

    machine = bench.machine_info()
    peak = machine_peak(machine, args.ghz, args.threads)
    host = machine["hostname"]
    date = dt.date.today().isoformat()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = unique_result_stem(args.out_dir, f"{date}-{host}" + (f"-{args.tag}" if args.tag else ""))
    rows = summarise(specs, latency, diffs, memory, config, peak, seq_lens)
    versions = _versions()
    load_note = args.load_note
    cores = machine.get("cores") or 1
    if max(latency["load_per_round"] + [load_before]) > 0.75 * cores and not load_note:
        load_note = (f"The machine was shared: the 1-minute load reached {max(latency['load_per_round']):.1f} on "
                     f"{cores} cores during the run, so absolute latencies are inflated; alternating blocks keep the "
                     "ratios between backends fairer than the absolute numbers")
    report = {
        "date": date, "command": "python " + " ".join(shlex.quote(a) for a in [_rel(Path(__file__))] + arguments),
        "machine": machine, "peak": peak, "versions": versions, "parameters": _parameters(args.work_dir),
        "model": _describe(config),
        "settings": {"threads": args.threads, "seq_lens": seq_lens, "rounds": args.rounds, "block_runs": args.block_runs,
                     "pause": args.pause},
        "load": {"before": load_before, "per_round": latency["load_per_round"], "after": os.getloadavg()[0],
                 "note": load_note},
        "rows": rows, "notes": notes, "samples_ms": latency["samples"], "targets": evaluate_targets(rows, seq_lens), "chart": stem.name + ".png",
    }
    _write_new(stem.with_suffix(".json"), json.dumps(report, indent=2, default=float))
    _write_new(stem.with_suffix(".md"), markdown(report))
    chart(report, stem.with_suffix(".png"))
    say(f"wrote {stem}.md, .json, .png")
    print(markdown(report))
    return 0


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _parameters(work: Path) -> int:
    manifest = json.loads((work / "loop-fp32.edgealbert" / "manifest.json").read_text())
    return int(manifest["source"]["parameters"])


def _describe(config: dict) -> str:
    shape = {k: config.get(k) for k in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "intermediate_size")}
    base = dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12, intermediate_size=3072)
    name = "albert-base-v2 shape" if shape == base else ", ".join(f"{k} {v}" for k, v in shape.items())
    return f"{config.get('architectures', ['ALBERT'])[0]}, {name}, weights as in the checkpoint given"


def _versions() -> str:
    from importlib import metadata

    names = ("torch", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "tensorflow-cpu")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found) + f", {platform.python_implementation()} {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
