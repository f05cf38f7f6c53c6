"""int4 vs dynamic-int8 (issue 21): latency ratios in one run, peak RSS, file sizes.

Usage: python benchmarks/int4.py OUT.json NAME=BUNDLE [NAME=BUNDLE ...] [--seq-lens 8,32,128] [--runs 30]

The first bundle is the baseline of the ratios. Lengths are timed round-robin (bundle A, B, C, A, ...)
through the raw signature runner (2 threads, batch 1), so machine noise falls on every bundle
alike; the median per bundle and length is reported. Peak RSS: each bundle loaded and run at the
longest length in a fresh process (VmHWM of /proc/self/status: ru_maxrss survives exec and gave the
forking parent's peak, the same 104.9 MB for every bundle). --any-length 1,7,33,100,512 runs each bundle
at those lengths (batch 2, one row half padding) and records the max abs logit difference and label
agreement against PyTorch (--checkpoint CKPT). CPU flags are recorded with the result.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

THREADS = 2


def _runner(model_path: Path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(model_path), num_threads=THREADS).get_signature_runner("serving_default")


def _inputs(length: int) -> dict:
    ids = np.random.RandomState(length).randint(5, 7000, size=(1, length)).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "f16c")
                return " ".join(flag for flag in line.split(":", 1)[1].split() if flag in wanted)
    except OSError:
        pass
    return ""


def _peak_rss_mb(model_path: Path, length: int) -> float:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import int4; "
            f"r = int4._runner(__import__('pathlib').Path({str(model_path)!r})); r(**int4._inputs({length})); "
            "status = dict(line.split(':', 1) for line in open('/proc/self/status')); "
            "print(int(status['VmHWM'].split()[0]) / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()[-1])


def _any_length(checkpoint: Path, bundles: dict, lengths) -> dict:
    """Max abs logit difference and label agreement against PyTorch per bundle and length."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from edge_albert.converters import verify
    from edge_albert.hf.checkpoint import load_checkpoint

    rng = np.random.RandomState(1)
    batches = []
    for length in lengths:
        ids = rng.randint(5, 30000, size=(2, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[1, max(1, length // 2):] = 0
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    reference = verify.reference_outputs(load_checkpoint(checkpoint), batches)
    found = {}
    for name, path in bundles.items():
        got = verify.tflite_outputs((path / "model.tflite").read_bytes(), batches, ["logits"])
        found[name] = {length: {"max_abs_diff": round(float(np.abs(r["logits"] - g["logits"]).max()), 4),
                                "labels_agree": int((r["logits"].argmax(-1) == g["logits"].argmax(-1)).sum())}
                       for length, r, g in zip(lengths, reference, got)}
        print(name, found[name], flush=True)
    return found



def interleaved_medians_ms(runners: dict, inputs: dict, runs: int) -> dict:
    """Median ms per runner, the runners taking turns on the same inputs (3 warm-up calls each first),
    so a busy spell of a shared machine hits every one alike."""
    times = {name: [] for name in runners}
    for runner in runners.values():
        for _ in range(3):
            runner(**inputs)  # warm up
    for _ in range(runs):
        for name, runner in runners.items():
            started = time.perf_counter()
            runner(**inputs)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}

def main(argv) -> int:
    out = Path(argv[0])
    seq_lens, runs, bundles, checkpoint, any_length = [8, 32, 128], 30, {}, None, []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--seq-lens":
            seq_lens = [int(n) for n in next(args).split(",")]
        elif arg == "--runs":
            runs = int(next(args))
        elif arg == "--checkpoint":
            checkpoint = Path(next(args))
        elif arg == "--any-length":
            any_length = [int(n) for n in next(args).split(",")]
        else:
            name, path = arg.split("=", 1)
            bundles[name] = Path(path)
    runners = {name: _runner(path / "model.tflite") for name, path in bundles.items()}
    result = {"command": "python benchmarks/int4.py " + " ".join(argv), "machine": platform.machine(),
              "cpu_flags": _cpu_flags(), "threads": THREADS, "runs": runs, "lengths": {}, "bundles": {}}
    for length in seq_lens if runs else []:  # --runs 0: sizes, peak RSS and lengths only
        inputs = _inputs(length)
        medians = interleaved_medians_ms(runners, inputs, runs)
        base = medians[next(iter(medians))]
        result["lengths"][length] = {name: {"median_ms": round(ms, 3), "ratio": round(ms / base, 3)}
                                     for name, ms in medians.items()}
        print(length, {name: f"{ms:.2f} ms ({ms / base:.2f}x)" for name, ms in medians.items()}, flush=True)
    for name, path in bundles.items():
        manifest = json.loads((path / "manifest.json").read_text())
        result["bundles"][name] = {
            "path": str(path), "mode": manifest["quantization"]["mode"],
            "model_bytes": (path / "model.tflite").stat().st_size,
            "peak_rss_mb": round(_peak_rss_mb(path / "model.tflite", max(seq_lens)), 1),
            "precision_by_part": manifest["inspection"].get("precision_by_part"),
        }
        print(name, result["bundles"][name], flush=True)
    if any_length:
        if checkpoint is None:
            raise SystemExit("--any-length needs --checkpoint CKPT (the PyTorch reference)")
        result["any_length"] = _any_length(checkpoint, bundles, any_length)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
