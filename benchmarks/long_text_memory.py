"""Peak memory for one very long text: `python benchmarks/long_text_memory.py BUNDLE [--unit 'word ']`.

Loads the bundle, reads VmHWM (peak RSS, from /proc/self/status: Linux only), classifies one text of
`--megabytes` million characters made of `--unit` repeated, and prints the peak's growth in MB.
The tokenizer cuts long texts before encoding them (edge_albert/tokenizer.py, `_prefix_with_tokens`).
"""

from __future__ import annotations

import argparse
import re
import time


def peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        return int(re.search(r"VmHWM:\s+(\d+)", handle.read()).group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--unit", default="word ", help="repeated to build the text (no space: one giant word)")
    parser.add_argument("--megabytes", type=float, default=10.0)
    args = parser.parse_args()
    from edge_albert import load_model

    model = load_model(args.bundle, num_threads=1)
    model.predict(["warm up"])
    before = peak_mb()
    text = args.unit * int(args.megabytes * 1e6 // len(args.unit))
    started = time.perf_counter()
    prediction = model.predict([text])[0]
    seconds = time.perf_counter() - started
    print(f"{len(text):,} characters ({args.unit!r} repeated): peak RSS {before:.0f} MB -> {peak_mb():.0f} MB "
          f"(+{peak_mb() - before:.0f} MB), {seconds:.2f} s, truncated={prediction.truncated}")


if __name__ == "__main__":
    main()
