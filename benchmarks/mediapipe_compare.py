"""MediaPipe's TextClassifier (Python, and with --browser the web page in Chromium) against edge-albert's runtime.

For each (bundle, exported .tflite) pair, in one run: file sizes, SST-2 dev accuracy of each, labels
differing from MediaPipe Python, and per-text latency (median over texts of each text's median over
--repeats, batch 1, one text per call). The browser is web/mediapipe (@mediapipe/tasks-text from npm,
wasm served locally) in headless Debian Chromium, timed with performance.now() around classify().
Usage (README "MediaPipe"; results in benchmarks/results/mediapipe/):

  EDGE_ALBERT_MEDIAPIPE_PYTHON=.venv-mediapipe/bin/python python benchmarks/mediapipe_compare.py \
      out/sst2-unrolled-fp32.edgealbert out/sst2-fp32.tflite [BUNDLE TFLITE ...] [--browser] --out RESULT.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
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


def browser_run(tflite: str, texts, repeats: int):
    """The page's scores and each text's median ms over `repeats` passes; the Chromium version."""
    from tests.mediapipe_web import chromium, classify_all, open_page, page_server

    with tempfile.TemporaryDirectory() as profile, page_server(Path(tflite)) as base_url, \
            chromium(Path(profile)) as driver:
        open_page(driver, base_url)
        passes = [classify_all(driver, texts) for _ in range(repeats)]
        version = driver.capabilities.get("browserVersion", "?")
    scores = np.asarray([result["scores"] for result in passes[0]], dtype=np.float64)
    seconds = [statistics.median(p[i]["ms"] for p in passes) / 1e3 for i in range(len(texts))]
    return scores, seconds, version


def _machine() -> str:
    info = machine_info()
    return (f"{info['cpu_model']}, {info['cores']} cores, SIMD {' '.join(info['simd'])}, load {info['load_average']}, "
            f"{info['os']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="BUNDLE TFLITE pairs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--browser", action="store_true", help="also the web page in headless Chromium")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    python = client.mediapipe_python()
    rows, chromium_version = [], None
    for bundle, tflite in zip(args.pairs[::2], args.pairs[1::2]):
        model = load_model(bundle)
        data = load_eval_data(str(DEV), "text-classification", model.labels)
        texts = data.texts()[0]
        gold = np.asarray([example.label for example in data.examples])
        answer = client.run_worker(python, {"job": "classify", "model": tflite, "texts": texts, "repeats": args.repeats})
        mp_scores = np.asarray(answer["scores"], dtype=np.float64)
        mp_labels = np.argmax(mp_scores, axis=1)
        rt_labels, rt_seconds = runtime_run(bundle, texts, args.repeats, args.threads)
        row = dict(name=Path(bundle).name, bundle_mb=Path(bundle, "model.tflite").stat().st_size / 1e6,
                   mp_mb=Path(tflite).stat().st_size / 1e6, rt_acc=100 * float(np.mean(rt_labels == gold)),
                   mp_acc=100 * float(np.mean(mp_labels == gold)), differing=int(np.sum(rt_labels != mp_labels)),
                   rt_ms=statistics.median(rt_seconds) * 1e3, mp_ms=statistics.median(answer["seconds"]) * 1e3)
        if args.browser:
            web_scores, web_seconds, chromium_version = browser_run(tflite, texts, args.repeats)
            web_labels = np.argmax(web_scores, axis=1)
            row.update(web_acc=100 * float(np.mean(web_labels == gold)),
                       web_differing=int(np.sum(web_labels != mp_labels)),
                       web_diff=float(np.max(np.abs(web_scores - mp_scores))),
                       web_ms=statistics.median(web_seconds) * 1e3)
        rows.append(row)
    command = (f"python benchmarks/mediapipe_compare.py {' '.join(args.pairs)} --repeats {args.repeats} "
               f"--threads {args.threads}{' --browser' if args.browser else ''} --out {args.out}")
    lines = [f"# MediaPipe TextClassifier (Python, mediapipe {client.MEDIAPIPE_VERSION}"
             f"{'; browser, @mediapipe/tasks-text 1.0.1' if args.browser else ''}) vs edge-albert runtime", "",
             f"Command: `{command}`", "",
             f"Machine: {_machine()}", f"Python {platform.python_version()}; SST-2 dev ({len(texts)} sentences), "
             "batch 1, one text per call; latency = median over texts of each text's median."]
    if args.browser:
        lines.append(f"Browser: headless Chromium {chromium_version} (Debian), web/mediapipe served from 127.0.0.1.")
    header = ("| bundle | bundle model MB | MediaPipe .tflite MB | edge-albert acc % | MediaPipe acc % | labels differing "
              "| edge-albert ms/text | MediaPipe ms/text | MediaPipe / edge-albert |")
    if args.browser:
        header += (" browser acc % | browser labels differing from MediaPipe Python | max abs prob diff browser vs "
                   "Python | browser ms/text | browser / edge-albert |")
    lines += ["", header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        line = (f"| {r['name']} | {r['bundle_mb']:.2f} | {r['mp_mb']:.2f} | {r['rt_acc']:.2f} | {r['mp_acc']:.2f} "
                f"| {r['differing']} | {r['rt_ms']:.2f} | {r['mp_ms']:.2f} | {r['mp_ms'] / r['rt_ms']:.2f}x |")
        if args.browser:
            line += (f" {r['web_acc']:.2f} | {r['web_differing']} | {r['web_diff']:.2e} | {r['web_ms']:.2f} "
                     f"| {r['web_ms'] / r['rt_ms']:.2f}x |")
        lines.append(line)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
