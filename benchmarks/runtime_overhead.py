"""The runtime's own cost per text: `TextClassifier.predict` against the raw libraries, in one process.

    python benchmarks/runtime_overhead.py /tmp/hp/sst2.edgealbert --threads 2 --rounds 7

The raw path is what any program must do anyway: the `tokenizers` library encodes the text
(truncated to the bundle's max_seq_len) and the interpreter's signature runner runs the model at
the exact token count. The runtime path is `TextClassifier.predict(text)`, one text per call,
returning a Prediction (label, score, every label's probability). Both use the same texts (SST-2
dev), the same backend and thread count, and the same model file, each with its own interpreter.

Each text runs through every path back to back (the order turning from text to text), so a busy
spell of a shared machine hits the paths of one text alike; the overhead is the median over texts
of those paired differences, per round, and the report gives the median over rounds and the range
(min-max) across rounds. The raw path runs at the exact length, as the runtime does for one text per
call on a loop-form bundle (runtime.py; before that change the runtime padded to a length bucket,
8, 16, 32, ...); the raw path is also timed at the bucket length, what padding would cost.
Writes JSON and Markdown (with the CPU flags) to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert.bench import machine_info  # noqa: E402
from edge_albert.contract import SIGNATURE_NAME  # noqa: E402
from edge_albert.runtime import bucket_length, create_interpreter, find_backend  # noqa: E402
from edge_albert.tasks import TextClassifier, load_model  # noqa: E402

DEFAULT_DATA = REPO / "data" / "glue-sst2" / "dev.tsv"


def read_texts(path: Path, limit: int) -> List[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t")[0] for line in lines if line.strip()]
    return texts[:limit] if limit else texts


def raw_path(model: TextClassifier, threads: int, bucketed: bool) -> Callable[[str], np.ndarray]:
    """tokenizers + the signature runner, nothing else (at the exact length, or padded to the runtime's bucket)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model.bundle.tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(model.max_seq_len)
    interpreter = create_interpreter(model.bundle.model_path, threads, find_backend().interpreter_class)
    runner = interpreter.get_signature_runner(SIGNATURE_NAME)
    pad_id = model.tokenizer.pad_id
    max_len = model.max_seq_len

    def run(text: str) -> np.ndarray:
        encoding = tokenizer.encode(text)
        n = len(encoding.ids)
        width = bucket_length(n, max_len) if bucketed else n
        ids = np.full((1, width), pad_id, dtype=np.int32)
        ids[0, :n] = encoding.ids
        mask = np.zeros((1, width), dtype=np.int32)
        mask[0, :n] = 1
        types = np.zeros((1, width), dtype=np.int32)
        types[0, :n] = encoding.type_ids
        return runner(input_ids=ids, attention_mask=mask, token_type_ids=types)["logits"]

    return run


def time_round(paths: Dict[str, Callable[[str], object]], texts: Sequence[str], number: int) -> Dict[str, np.ndarray]:
    """Milliseconds per text and path: each text runs through every path back to back, the order turning
    with each text, so a busy spell of a shared machine hits the paths of one text alike."""
    names = list(paths)
    times = {name: np.empty(len(texts)) for name in names}
    clock = time.perf_counter
    for index, text in enumerate(texts):
        shift = (index + number) % len(names)
        for name in names[shift:] + names[:shift]:
            started = clock()
            paths[name](text)
            times[name][index] = (clock() - started) * 1000
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0, help="Texts to use (0: all of --data).")
    parser.add_argument("--out", type=Path, default=None, help="Write <out>.json and <out>.md.")
    args = parser.parse_args(argv)

    texts = read_texts(args.data, args.limit)
    if not texts:
        parser.error(f"{args.data} has no texts")
    model = load_model(args.bundle, num_threads=args.threads)
    if not isinstance(model, TextClassifier):
        parser.error(f"{args.bundle} is a {model.task} bundle; this compares text classification")
    paths: Dict[str, Callable[[str], object]] = {
        "runtime": lambda text: model.predict(text),
        "raw": raw_path(model, args.threads, bucketed=False),
        "raw_bucketed": raw_path(model, args.threads, bucketed=True),
    }
    for run in paths.values():  # warm up: every length bucket allocated once
        for text in texts[:50]:
            run(text)
    per_text: Dict[str, List[np.ndarray]] = {name: [] for name in paths}
    for number in range(args.rounds):
        times = time_round(paths, texts, number)
        for name in paths:
            per_text[name].append(times[name])
        print(f"round {number + 1}/{args.rounds}: " + ", ".join(
            f"{name} {np.median(times[name]):.3f} ms" for name in paths), file=sys.stderr)
    runtime, raw, bucketed = (np.stack(per_text[n]) for n in ("runtime", "raw", "raw_bucketed"))  # [rounds, texts]
    # Per round: the median over texts of each path, and of the paired (same text, back to back) differences.
    rounds = {name: np.median(values, axis=1) for name, values in
              (("runtime", runtime), ("raw", raw), ("raw_bucketed", bucketed),
               ("overhead_ms", runtime - raw), ("overhead_over_bucketed_ms", runtime - bucketed))}
    rounds["ratio"] = rounds["runtime"] / rounds["raw"]
    summary = {name: {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}
               for name, values in rounds.items()}
    result = {
        "command": "python benchmarks/runtime_overhead.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "bundle": str(args.bundle), "backend": str(model.session.backend), "threads": args.threads,
        "texts": len(texts), "rounds": args.rounds,
        "per_round": {name: values.tolist() for name, values in rounds.items()}, "summary": summary,
        "machine": machine_info(), "cpu_flags": _cpu_flags(),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(result))
    return 0


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def markdown(result: dict) -> str:
    s = result["summary"]
    m = result["machine"]
    rows = [f"| {name} | {s[name]['median']:.3f} | {s[name]['min']:.3f}-{s[name]['max']:.3f} |"
            for name in ("runtime", "raw", "raw_bucketed")]
    return "\n".join([
        f"# Runtime overhead per text ({result['texts']} texts x {result['rounds']} rounds, {result['threads']} threads)",
        "",
        f"`{result['command']}`", "",
        f"{result['backend']}; {m.get('cpu_model')}, {m.get('cores')} cores, load average {m.get('load_average')}",
        "",
        "| path | ms per text (median over rounds of the median over texts) | range over rounds |", "|---|---|---|", *rows, "",
        f"runtime - raw (exact length), paired per text: median {s['overhead_ms']['median']:.3f} ms "
        f"(rounds {s['overhead_ms']['min']:.3f} to {s['overhead_ms']['max']:.3f}); ratio {s['ratio']['median']:.3f} "
        f"({s['ratio']['min']:.3f} to {s['ratio']['max']:.3f})",
        f"runtime - raw at the runtime's length bucket: median {s['overhead_over_bucketed_ms']['median']:.3f} ms "
        f"({s['overhead_over_bucketed_ms']['min']:.3f} to {s['overhead_over_bucketed_ms']['max']:.3f})",
        "", f"CPU flags: {result['cpu_flags']}", "",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
