"""MediaPipe's Python TextClassifier against edge-albert's runtime on the same texts, in one run.

For each (bundle, exported .tflite) pair: file sizes, SST-2 dev accuracy of both, and per-text
latency (median over texts of each text's median over --repeats, batch 1, one text per call).
Usage (README "MediaPipe"; results in benchmarks/results/mediapipe/):

  EDGE_ALBERT_MEDIAPIPE_PYTHON=.venv-mediapipe/bin/python python benchmarks/mediapipe_compare.py \
      out/sst2-unrolled-fp32.edgealbert out/sst2-fp32.tflite [BUNDLE TFLITE ...] --out RESULT.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from edge_albert.bench import machine_info
from edge_albert.evaluate import load_eval_data
from edge_albert.mediapipe_export import client
from edge_albert.tasks import load_model

DEV = Path(__file__).resolve().parents[1] / "data" / "glue-sst2" / "dev.tsv"


def runtime_run(bundle: str, texts, repeats: int, threads: int):
    model = load_model(bundle, num_threads=threads, batch_size=1)
    labels, seconds = [], []
    for text in texts:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            prediction = model.predict([text])[0]
            timings.append(time.perf_counter() - started)
        labels.append(model.labels.index(prediction.label))
        seconds.append(statistics.median(timings))
    return np.asarray(labels), seconds


def _machine() -> str:
    info = machine_info()
    return (f"{info['cpu_model']}, {info['cores']} cores, SIMD {' '.join(info['simd'])}, load {info['load_average']}, "
            f"{info['os']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="BUNDLE TFLITE pairs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    python = client.mediapipe_python()
    rows = []
    for bundle, tflite in zip(args.pairs[::2], args.pairs[1::2]):
        model = load_model(bundle)
        data = load_eval_data(str(DEV), "text-classification", model.labels)
        texts = data.texts()[0]
        gold = np.asarray([example.label for example in data.examples])
        answer = client.run_worker(python, {"job": "classify", "model": tflite, "texts": texts, "repeats": args.repeats})
        mp_labels = np.argmax(np.asarray(answer["scores"]), axis=1)
        rt_labels, rt_seconds = runtime_run(bundle, texts, args.repeats, args.threads)
        mp_ms, rt_ms = statistics.median(answer["seconds"]) * 1e3, statistics.median(rt_seconds) * 1e3
        rows.append((Path(bundle).name, Path(bundle, "model.tflite").stat().st_size / 1e6,
                     Path(tflite).stat().st_size / 1e6, 100 * float(np.mean(rt_labels == gold)),
                     100 * float(np.mean(mp_labels == gold)), int(np.sum(rt_labels != mp_labels)), rt_ms, mp_ms))
    lines = [f"# MediaPipe TextClassifier (Python, mediapipe {client.MEDIAPIPE_VERSION}) vs edge-albert runtime", "",
             f"Command: `python benchmarks/mediapipe_compare.py {' '.join(args.pairs)} --repeats {args.repeats} "
             f"--threads {args.threads} --out {args.out}`", "",
             f"Machine: {_machine()}", f"Python {platform.python_version()}; SST-2 dev ({len(texts)} sentences), "
             "batch 1, one text per call; latency = median over texts of each text's median.", "",
             "| bundle | bundle model MB | MediaPipe .tflite MB | edge-albert acc % | MediaPipe acc % | labels differing "
             "| edge-albert ms/text | MediaPipe ms/text | MediaPipe / edge-albert |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, bundle_mb, mp_mb, rt_acc, mp_acc, differing, rt_ms, mp_ms in rows:
        lines.append(f"| {name} | {bundle_mb:.2f} | {mp_mb:.2f} | {rt_acc:.2f} | {mp_acc:.2f} | {differing} "
                     f"| {rt_ms:.2f} | {mp_ms:.2f} | {mp_ms / rt_ms:.2f}x |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
