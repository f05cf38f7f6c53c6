"""int4 vs dynamic-int8 (issue 21): latency ratios in one run, peak RSS, file sizes.

Usage: python benchmarks/int4.py OUT.json NAME=BUNDLE [NAME=BUNDLE ...] [--seq-lens 8,32,128] [--runs 30]

The first bundle is the baseline of the ratios. Lengths are timed round-robin (bundle A, B, C, A, ...)
through the raw signature runner (2 threads, batch 1), so machine noise falls on every bundle
alike; the median per bundle and length is reported. Peak RSS: each bundle loaded and run at the
longest length in a fresh process (ru_maxrss). CPU flags are recorded with the result.
"""

from __future__ import annotations

import json
import platform
import resource
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
    code = (f"import sys, resource; sys.path.insert(0, {str(Path(__file__).parent)!r}); import int4; "
            f"r = int4._runner(__import__('pathlib').Path({str(model_path)!r})); r(**int4._inputs({length})); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()[-1])


def main(argv) -> int:
    out = Path(argv[0])
    seq_lens, runs, bundles = [8, 32, 128], 30, {}
    args = iter(argv[1:])
    for arg in args:
        if arg == "--seq-lens":
            seq_lens = [int(n) for n in next(args).split(",")]
        elif arg == "--runs":
            runs = int(next(args))
        else:
            name, path = arg.split("=", 1)
            bundles[name] = Path(path)
    runners = {name: _runner(path / "model.tflite") for name, path in bundles.items()}
    result = {"command": "python benchmarks/int4.py " + " ".join(argv), "machine": platform.machine(),
              "cpu_flags": _cpu_flags(), "threads": THREADS, "runs": runs, "lengths": {}, "bundles": {}}
    for length in seq_lens:
        inputs = _inputs(length)
        times = {name: [] for name in runners}
        for runner in runners.values():
            for _ in range(3):
                runner(**inputs)  # warm up
        for _ in range(runs):
            for name, runner in runners.items():
                started = time.perf_counter()
                runner(**inputs)
                times[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
