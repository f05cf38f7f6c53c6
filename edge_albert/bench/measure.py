"""Latency and load time of a bundle on the machine at hand, on inputs of an exact token length.

Modelled on TFLite's `benchmark_model`: warm-up runs separate from measured runs, a run count
capped by a time limit, peak memory reported, and every setting printed with the result so
that a result file is enough to rerun the measurement. Inputs are real text tokenized by the
bundle's own tokenizer to exactly the requested length (zeros would be unrealistic for
nothing here, but a model's cost must be measured on what it will see).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..device_options import (DEFAULT_BENCH_BATCH, DEFAULT_MAX_SECONDS, DEFAULT_REPEATS, DEFAULT_RUNS, DEFAULT_SEQ_LENS,
                              DEFAULT_WARMUP)
from ..early_exit import CALLS_OUTPUT, call_distribution
from ..errors import BenchError
from ..runtime import check_batch, check_threads, default_num_threads, find_backend
from ..tasks import load_model
from .machine import _mb, current_rss_bytes, machine_info, peak_rss_bytes
from .report import result_markdown

PathLike = Union[str, os.PathLike]
Progress = Callable[[str, bool], None]  # (message, final): a final message ends a line

# Real English prose (movie-review style, like SST-2) to cut inputs of an exact token length from.
BENCH_TEXT = (
    "The film opens on a quiet harbour town where nothing much seems to happen, and for the first "
    "half hour the director is content to let us watch the fishermen mend their nets. It is a bold "
    "choice, and not every viewer will have the patience for it. Then the storm arrives, and with it "
    "a stranger whose arrival upends the fragile peace between two families who have not spoken in "
    "twenty years. The performances are uniformly strong: the lead gives a weary, wounded dignity to "
    "a man who has lost almost everything, while the younger cast members bring an unexpected warmth "
    "to scenes that could easily have tipped into melodrama. The cinematography deserves special "
    "mention, with long grey shots of the sea that feel cold enough to touch. Where the picture "
    "stumbles is in its final act, which ties up every thread a little too neatly and lets a subplot "
    "about an inheritance fizzle out without consequence. The score, too, swells at moments that "
    "would have been more affecting in silence. Still, it is rare to see a drama this confident in "
    "its own rhythm, and rarer still to leave the cinema arguing about what the last image meant. "
    "Critics were divided at the festival premiere; some called it a masterpiece of restraint, others "
    "a beautifully photographed bore. Both camps have a point, but I found myself thinking about it "
    "for days afterwards, which is more than can be said for most of what opens this season. "
)
BENCH_QUESTION = "What does the stranger's arrival upend in the harbour town?"


# -- statistics ------------------------------------------------------------------------------
@dataclass
class LatencyStats:
    """Latency of the measured runs in milliseconds (percentiles interpolate linearly, as numpy's default)."""

    runs: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        values = np.asarray(samples_ms, dtype=np.float64)
        if values.size == 0:
            raise BenchError("no measured runs: raise {max_seconds} or {runs}", options=("max_seconds", "runs"))
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(runs=int(values.size), min_ms=float(values.min()), p50_ms=float(p50), p90_ms=float(p90),
                   p99_ms=float(p99), mean_ms=float(values.mean()), std_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0)


def time_runs(run: Callable[[], object], runs: int, warmup: int = 0, max_seconds: float = math.inf,
              tick: Optional[Callable[[int, List[float]], None]] = None) -> Tuple[List[float], str]:
    """Call `run` `warmup` times untimed, then up to `runs` times timed (ms), stopping once
    `max_seconds` of measuring have passed (at least one run). Returns the samples and why it stopped."""
    for _ in range(warmup):
        run()
    samples: List[float] = []
    started = time.perf_counter()
    last_tick = started
    stopped_by = "runs"
    while len(samples) < runs:
        begin = time.perf_counter()
        run()
        end = time.perf_counter()
        samples.append((end - begin) * 1e3)
        if tick is not None and end - last_tick > 0.5:
            tick(len(samples), samples)
            last_tick = end
        if end - started >= max_seconds and len(samples) < runs:
            stopped_by = "max-seconds"
            break
    return samples, stopped_by


# -- inputs ----------------------------------------------------------------------------------
def bench_texts(tokenizer, seq_len: int, batch: int = 1, pair: bool = False) -> Tuple[List[str], Optional[List[str]]]:
    """Texts (and questions for `pair`) that tokenize to at least `seq_len` tokens, cut a little past
    that length so that tokenizing them costs what tokenizing a real input of that length costs."""
    if seq_len < (5 if pair else 2):
        raise BenchError(f"sequence length {seq_len} leaves no room for text after the special tokens")
    sentences = [s.strip() + "." for s in BENCH_TEXT.split(". ") if s.strip()]
    questions = None
    if pair:  # [CLS] question [SEP] context [SEP]: the question takes at most a quarter
        question, _ = tokenizer.shorten(BENCH_QUESTION, max(1, (seq_len - 3) // 4))
        questions = [question] * batch
    texts = []
    for row in range(batch):
        start = row % len(sentences)  # rows start at different sentences so they differ
        text = " ".join(sentences[start:] + sentences[:start])
        while tokenizer.count_tokens(text) < seq_len + 8:
            text = f"{text} {text}"
        encoded = tokenizer.encode([text], max_length=seq_len + 8, truncation="longest_first")
        last = max(end for _, end in encoded.offsets[0])
        texts.append(text[:last])
    return texts, questions


def inputs_of_length(tokenizer, seq_len: int, batch: int = 1, pair: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`batch` rows of real text, each exactly `seq_len` tokens with [CLS]/[SEP] and no padding.

    Rows start at different sentences so they differ; `pair` makes question/context pairs (QA).
    """
    texts, questions = bench_texts(tokenizer, seq_len, batch, pair)
    if pair:
        encoded = tokenizer.encode(questions, texts, max_length=seq_len, truncation="only_second")
    else:
        encoded = tokenizer.encode(texts, max_length=seq_len, truncation="longest_first")
    lengths = encoded.lengths()
    if encoded.length != seq_len or not (lengths == seq_len).all():
        raise BenchError(f"could not build inputs of exactly {seq_len} tokens (got lengths {sorted(set(lengths.tolist()))})")
    return encoded.input_ids, encoded.attention_mask, encoded.token_type_ids


# -- the measurement -------------------------------------------------------------------------
@dataclass
class SeqLenResult:
    seq_len: int
    padded_length: int  # what the model actually ran: fixed-shape bundles pad to their length
    batch: int
    latency: LatencyStats
    throughput_per_s: float  # sequences per second, from the mean latency
    first_run_ms: float  # first run at this length: includes the interpreter's re-allocation
    tokenize_ms: float  # median time to tokenize the batch (not included in the latency)
    peak_rss_mb: Optional[float]  # process peak so far (cumulative over the lengths measured before)
    stopped_by: str  # "runs" or "max-seconds"


@dataclass
class BenchResult:
    bundle: str
    model: dict
    settings: dict
    machine: dict
    load_ms: float
    first_inference_ms: float
    rss_before_load_mb: Optional[float]
    rss_after_load_mb: Optional[float]
    peak_rss_mb: Optional[float]
    results: List[SeqLenResult] = field(default_factory=list)
    skipped: Dict[int, str] = field(default_factory=dict)
    budget_check: Optional[dict] = None

    @property
    def load_rss_increase_mb(self) -> Optional[float]:
        if self.rss_before_load_mb is None or self.rss_after_load_mb is None:
            return None
        return self.rss_after_load_mb - self.rss_before_load_mb

    def result_for(self, seq_len: int) -> Optional[SeqLenResult]:
        return next((r for r in self.results if r.seq_len == seq_len), None)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["load_rss_increase_mb"] = self.load_rss_increase_mb
        data["skipped"] = {str(k): v for k, v in self.skipped.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        return result_markdown(self)


def _model_summary(bundle) -> dict:
    manifest = bundle.manifest
    quantization = manifest.get("quantization") or {}
    source = manifest.get("source") or {}
    return {
        "task": manifest.get("task"),
        "quantization": quantization.get("mode"),
        "per_channel_dense": quantization.get("per_channel_dense"),
        "graph": manifest.get("graph"),
        "max_seq_len": manifest.get("max_seq_len"),
        "file_bytes": bundle.model_path.stat().st_size,
        "parameters": source.get("parameters"),
        "config": source.get("config") or {},
    }


def run_benchmark(
    bundle_path: PathLike,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    batch: int = DEFAULT_BENCH_BATCH,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    threads: Optional[int] = None,
    backend: Optional[str] = None,
    progress: Optional[Progress] = None,
    target: Optional[str] = None,
    trusted_key: Optional[PathLike] = None,
) -> BenchResult:
    """Load the bundle (timed, with its RSS increase), then time each sequence length in turn."""
    say = progress or (lambda message, final: None)
    if batch < 1 or runs < 1 or warmup < 0 or max_seconds <= 0:
        raise BenchError("{batch} and {runs} must be at least 1, {warmup} at least 0, {max_seconds} positive",
                         options=("batch", "runs", "warmup", "max_seconds"))
    check_batch(batch, "batch")
    seq_lens = [int(n) for n in seq_lens]
    interpreter = find_backend(backend)  # imported before the baseline, so the RSS increase is the model's
    threads = check_threads(threads) if threads else default_num_threads()
    settings = _bench_settings(bundle_path, seq_lens, batch, runs, warmup, max_seconds, threads, interpreter, target)
    result, model = _load_timed(bundle_path, settings, trusted_key)
    say(f"loaded {bundle_path} in {result.load_ms:.0f} ms ({interpreter}, {threads} threads)", True)
    for seq_len in seq_lens:
        if seq_len > model.session.max_seq_len:
            result.skipped[seq_len] = f"longer than the model's maximum {model.session.max_seq_len}"
            say(f"seq {seq_len}: skipped ({result.skipped[seq_len]})", True)
            continue
        entry = _measure_seq_len(model, seq_len, settings, say)
        if math.isnan(result.first_inference_ms):
            result.first_inference_ms = entry.first_run_ms
        result.results.append(entry)
    if not result.results:
        raise BenchError(f"no sequence length could be measured: {result.skipped}")
    result.peak_rss_mb = _mb(peak_rss_bytes())
    try:
        result.machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    return result


def _bench_settings(bundle_path: PathLike, seq_lens: List[int], batch: int, runs: int, warmup: int,
                    max_seconds: float, threads: int, interpreter, target: Optional[str]) -> dict:
    """Every setting spelled out, so that the result file alone is enough to rerun the measurement."""
    settings = {"seq_lens": seq_lens, "batch": batch, "runs": runs, "warmup": warmup, "max_seconds": max_seconds,
                "threads": threads, "backend": interpreter.name, "backend_version": interpreter.version}
    settings["command"] = " ".join(
        ["edge-albert", "bench", shlex.quote(str(bundle_path)), "--seq-lens", ",".join(map(str, seq_lens)),
         "--batch-size", str(batch), "--runs", str(runs), "--warmup", str(warmup), "--max-seconds", f"{max_seconds:g}",
         "--threads", str(threads), "--backend", interpreter.name] + (["--target", shlex.quote(str(target))] if target else []))
    return settings


def _load_timed(bundle_path: PathLike, settings: dict, trusted_key: Optional[PathLike]):
    """Load the model, timing it and measuring the RSS before and after; -> (result so far, model)."""
    machine = machine_info()
    rss_before = current_rss_bytes()
    started = time.perf_counter()
    model = load_model(bundle_path, num_threads=settings["threads"], backend=settings["backend"],
                       batch_size=settings["batch"], trusted_key=trusted_key)
    load_ms = (time.perf_counter() - started) * 1e3
    rss_after = current_rss_bytes()
    result = BenchResult(bundle=str(bundle_path), model=_model_summary(model.bundle), settings=settings,
                         machine=machine, load_ms=load_ms, first_inference_ms=float("nan"),
                         rss_before_load_mb=_mb(rss_before), rss_after_load_mb=_mb(rss_after), peak_rss_mb=None)
    return result, model


def _measure_seq_len(model, seq_len: int, settings: dict, say: Progress) -> SeqLenResult:
    """Time one sequence length: a first (re-allocating) run, then warm-up and measured runs."""
    batch, runs = settings["batch"], settings["runs"]
    session = model.session
    pair = model.bundle.task == "question-answering"
    ids, mask, types = inputs_of_length(model.tokenizer, seq_len, batch, pair=pair)
    tokenize_ms = _median_tokenize_ms(model.tokenizer, seq_len, batch, pair)

    def run():
        return session.run(ids, mask, types)

    begin = time.perf_counter()
    run()
    first_run_ms = (time.perf_counter() - begin) * 1e3

    def tick(done, samples):
        say(f"seq {seq_len}: {done}/{runs} runs, p50 so far {float(np.median(samples)):.2f} ms", False)

    samples, stopped_by = time_runs(run, runs, settings["warmup"], settings["max_seconds"], tick)
    stats = LatencyStats.from_samples(samples)
    entry = SeqLenResult(seq_len=seq_len, padded_length=session.padded_length(seq_len, batch), batch=batch,
                         latency=stats, throughput_per_s=batch * 1e3 / stats.mean_ms, first_run_ms=first_run_ms,
                         tokenize_ms=tokenize_ms, peak_rss_mb=_mb(peak_rss_bytes()), stopped_by=stopped_by)
    say(f"seq {seq_len}: p50 {stats.p50_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms over {stats.runs} runs"
        + (" (stopped by --max-seconds)" if stopped_by == "max-seconds" else ""), True)
    return entry


# -- real texts (early exit) ------------------------------------------------------------------
@dataclass
class TextsResult:
    """One model over a list of real texts, one text per run (batch 1), each timed `repeats` times.

    `latency` summarises each text's median time, so every text counts once; early-exit bundles
    add the exit distribution (random tokens exit differently from real text, so it matters
    which texts these are)."""

    bundle: str
    texts: int
    repeats: int
    latency: LatencyStats
    exit_rule: Optional[str] = None
    early_exit: Optional[dict] = None  # edge_albert.early_exit.call_distribution
    labels: List[int] = field(default_factory=list, repr=False)
    layer_calls: List[int] = field(default_factory=list, repr=False)
    per_text_ms: List[float] = field(default_factory=list, repr=False)

    def to_dict(self, with_rows: bool = False) -> dict:
        data = asdict(self)
        if not with_rows:
            for key in ("labels", "layer_calls", "per_text_ms"):
                data.pop(key)
        return data


def run_texts_benchmark(model, texts: Sequence[str], repeats: int = DEFAULT_REPEATS,
                        warmup: int = DEFAULT_WARMUP, name: Optional[str] = None) -> TextsResult:
    """Time `model` (a loaded TextClassifier) on each text alone; tokenizing is not timed.

    Repeats go round the whole list (text 1..n, then again), so a slow spell of a shared machine
    spreads over all texts instead of landing on a few.
    """
    if not texts:
        raise BenchError("no texts to measure")
    if repeats < 1:
        raise BenchError("{repeats} must be at least 1", options=("repeats",))
    session = model.session
    encoded = [model.tokenizer.encode([text], max_length=session.max_seq_len, truncation="longest_first")
               for text in texts]
    # Untimed: one text per padded length (each new input shape re-plans the interpreter's memory),
    # then the first `warmup` texts.
    first_of_length = {session.padded_length(enc.length): enc for enc in reversed(encoded)}
    for enc in list(first_of_length.values()) + encoded[:warmup]:
        session.run(enc.input_ids, enc.attention_mask, enc.token_type_ids)
    times = np.zeros((repeats, len(texts)))
    outputs: List[dict] = [{}] * len(texts)
    for repeat in range(repeats):
        for row, enc in enumerate(encoded):
            begin = time.perf_counter()
            outputs[row] = session.run(enc.input_ids, enc.attention_mask, enc.token_type_ids)
            times[repeat, row] = (time.perf_counter() - begin) * 1e3
    per_text = np.median(times, axis=0)
    labels = [int(np.argmax(out["logits"][0])) for out in outputs]
    calls = [int(out[CALLS_OUTPUT][0]) for out in outputs if CALLS_OUTPUT in out]
    rule = getattr(model, "exit_rule", None)
    depth = int((model.bundle.manifest.get("early_exit") or {}).get("max_calls") or 0)
    return TextsResult(bundle=name or str(model.bundle.path), texts=len(texts), repeats=repeats,
                       latency=LatencyStats.from_samples(per_text.tolist()),
                       exit_rule=rule.as_text() if rule is not None else None,
                       early_exit=call_distribution(calls, depth) if calls else None,
                       labels=labels, layer_calls=calls, per_text_ms=per_text.tolist())


def _median_tokenize_ms(tokenizer, seq_len: int, batch: int, pair: bool, repeats: int = 5) -> float:
    """What the tokenizer adds in front of every inference (not part of the model latency)."""
    texts, questions = bench_texts(tokenizer, seq_len, batch, pair)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        if pair:
            tokenizer.encode(questions, texts, max_length=seq_len, truncation="only_second")
        else:
            tokenizer.encode(texts, max_length=seq_len, truncation="longest_first")
        times.append((time.perf_counter() - begin) * 1e3)
    return float(np.median(times))


def parse_seq_lens(text: str) -> List[int]:
    """'16,32,64,128' -> [16, 32, 64, 128]."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise BenchError(f"{{seq_lens}} must be comma-separated integers, not {text!r}", options=("seq_lens",)) from None
    if not values or min(values) < 2:
        raise BenchError(f"{{seq_lens}} needs lengths of at least 2 tokens ([CLS] and [SEP]), got {text!r}",
                         options=("seq_lens",))
    return list(dict.fromkeys(values))
