"""Measure a bundle on the machine at hand: latency, load time and memory, checked against budgets.

Modelled on TFLite's `benchmark_model`: warm-up runs separate from measured runs, a run count
capped by a time limit, peak memory reported, and every setting printed with the result so
that a result file is enough to rerun the measurement. Inputs are real text tokenized by the
bundle's own tokenizer to exactly the requested length (zeros would be unrealistic for
nothing here, but a model's cost must be measured on what it will see).

Runtime-only imports (numpy, the runtime, the tokenizer): this runs on a Raspberry Pi with the
light install. psutil is used when present, /proc otherwise; matplotlib only for a plot.
Budgets live in edge_albert/targets/*.toml; a target's budgets are checked only on the kind of
machine they are for, so that no ARM figure is ever produced anywhere else.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import __version__
from .device_options import (DEFAULT_BENCH_BATCH, DEFAULT_MAX_SECONDS, DEFAULT_REPEATS, DEFAULT_RUNS, DEFAULT_SEQ_LENS,
                             DEFAULT_WARMUP)
from .errors import BenchError

PathLike = Union[str, os.PathLike]
Progress = Callable[[str, bool], None]  # (message, final): a final message ends a line
TARGETS_DIR = Path(__file__).resolve().parent / "targets"  # package data: works after pip install on a Pi
BUDGET_EXCEEDED_EXIT = 3  # distinct from 1 (could not measure) so scripts can tell them apart
MB = 1e6

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


# -- memory ----------------------------------------------------------------------------------
def _proc_status() -> Dict[str, int]:
    """Byte values of /proc/self/status (Linux, Android, Raspberry Pi OS); {} elsewhere."""
    values = {}
    try:
        with open("/proc/self/status", "r", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return values


def current_rss_bytes() -> Optional[int]:
    """Resident set size now: psutil when installed, /proc otherwise."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return _proc_status().get("VmRSS")


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process so far (VmHWM; getrusage where /proc is missing)."""
    peak = _proc_status().get("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def _mb(value: Optional[int]) -> Optional[float]:
    return None if value is None else value / MB


# -- machine ---------------------------------------------------------------------------------
def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read().replace("\x00", "").strip()
    except OSError:
        return None


def _cpuinfo() -> Dict[str, str]:
    info: Dict[str, str] = {}
    text = _read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in info:
            info[key] = value.strip()
    return info


def is_android() -> bool:
    return sys.platform == "android" or "ANDROID_ROOT" in os.environ or os.path.exists("/system/build.prop")


def device_model() -> Optional[str]:
    """'Raspberry Pi 4 Model B Rev 1.4' from the device tree, the phone model on Android, else None."""
    model = _read_text("/proc/device-tree/model") or _read_text("/sys/firmware/devicetree/base/model")
    if model:
        return model
    if is_android():
        try:
            import subprocess

            found = subprocess.run(["getprop", "ro.product.model"], capture_output=True, text=True, timeout=5)
            return found.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    return None


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve", "fphp")


def machine_info() -> dict:
    """What a result needs to be reproduced and compared: CPU, cores, architecture, OS, Python."""
    cpuinfo = _cpuinfo()
    flags = set((cpuinfo.get("flags") or cpuinfo.get("Features") or "").split())
    os_release = _read_text("/etc/os-release") or ""
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.splitlines()
                   if line.startswith("PRETTY_NAME=")), None)
    cpu_model = cpuinfo.get("model name") or cpuinfo.get("Model") or cpuinfo.get("Hardware") or platform.processor() or None
    mhz = cpuinfo.get("cpu MHz")
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model,
        "cpu_mhz": float(mhz) if mhz else None,
        "device_model": device_model(),
        "cores": os.cpu_count(),
        "architecture": platform.machine(),
        "simd": sorted(flags & set(SIMD_FLAGS)),
        "memory_mb": _mb(_meminfo_total()),
        "os": pretty or platform.platform(),
        "kernel": platform.release(),
        "android": is_android(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "edge_albert": __version__,
        "load_average": load,
    }


def _meminfo_total() -> Optional[int]:
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


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
    from .runtime import check_batch, check_threads, default_num_threads, find_backend

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
    from .tasks import load_model

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
    entry = SeqLenResult(seq_len=seq_len, padded_length=session.padded_length(seq_len), batch=batch,
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
    from .early_exit import CALLS_OUTPUT, call_distribution

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


def texts_result_text(result: TextsResult) -> str:
    """One line per measured configuration: latency over the texts and, for early exit, the calls."""
    from .early_exit import describe_calls

    l = result.latency
    line = (f"{Path(result.bundle).name}: {result.texts} texts x {result.repeats}: p50 {l.p50_ms:.2f} ms  "
            f"mean {l.mean_ms:.2f}  p90 {l.p90_ms:.2f}  p99 {l.p99_ms:.2f}")
    if result.early_exit is not None:
        line += "\n  " + describe_calls({"rule": result.exit_rule, **result.early_exit})
    return line


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


# -- budgets ---------------------------------------------------------------------------------
BUDGET_METRICS = ("p50_ms", "p99_ms", "peak_rss_mb", "load_ms")


@dataclass
class Budget:
    quantization: str
    seq_len: int
    limits: Dict[str, float]  # metric -> limit
    sources: Dict[str, str]  # metric -> where the number comes from


@dataclass
class Target:
    name: str
    description: str
    architectures: List[str]
    threads: Optional[int]
    device_model_contains: Optional[str]
    android: bool
    model: Dict[str, int]
    budgets: List[Budget]
    path: Path

    @property
    def is_arm(self) -> bool:
        return any(a.lower() in ("aarch64", "arm64", "armv7l", "armv8l") for a in self.architectures)


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise BenchError("reading a target needs Python >= 3.11 (tomllib) or `pip install tomli`") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise BenchError(f"cannot read target {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path} is not valid TOML: {exc}") from None


def known_targets() -> List[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml")) if TARGETS_DIR.is_dir() else []


def load_target(name_or_path: PathLike) -> Target:
    """A target by name (edge_albert/targets/NAME.toml, shipped with the package) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGETS_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            where = f"known: {', '.join(known_targets())}" if known_targets() else (
                f"{TARGETS_DIR} holds no targets; pass the path to a target .toml")
            raise BenchError(f"unknown target {name_or_path!r}; {where}")
    data = _load_toml(path)
    meta = data.get("target") or {}
    budgets = []
    for index, entry in enumerate(data.get("budget") or []):
        try:
            quantization, seq_len = str(entry["quantization"]), int(entry["seq_len"])
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"{path}: budget #{index + 1} needs quantization and seq_len") from None
        limits = {m: float(entry[m]) for m in BUDGET_METRICS if m in entry}
        missing = [m for m in limits if not str(entry.get(f"{m}_source", "")).strip()]
        if missing:
            raise BenchError(f"{path}: budget {quantization} seq {seq_len} gives {', '.join(missing)} without "
                             f"a source ({', '.join(m + '_source' for m in missing)}): say where each number comes from")
        budgets.append(Budget(quantization, seq_len, limits, {m: str(entry[f"{m}_source"]) for m in limits}))
    if not meta.get("architectures"):
        raise BenchError(f"{path}: [target] needs architectures = [...] (the machines its budgets are for)")
    return Target(
        name=str(meta.get("name", path.stem)), description=str(meta.get("description", "")),
        architectures=[str(a) for a in meta["architectures"]], threads=meta.get("threads"),
        device_model_contains=meta.get("device_model_contains"), android=bool(meta.get("android", False)),
        model={k: int(v) for k, v in (data.get("model") or {}).items()}, budgets=budgets, path=path)


def check_target_applies(target: Target, machine: Optional[dict] = None, model: Optional[dict] = None,
                         batch: int = 1) -> List[str]:
    """Refuse (BenchError) to check `target` here when this is not its kind of machine or model;
    return warnings for what cannot be confirmed. Called before measuring anything."""
    machine = machine or machine_info()
    arch = str(machine.get("architecture") or "")
    allowed = [a.lower() for a in target.architectures]
    if arch.lower() not in allowed:
        kind = "an ARM device" if target.is_arm else "a machine"
        raise BenchError(
            f"target {target.name} is for {kind} ({'/'.join(target.architectures)}); this machine is {arch or 'unknown'}. "
            f"Its budgets are checked only on that device: a latency measured here says nothing about it. "
            f"Run `edge-albert bench BUNDLE --target {target.name}` on the device, or bench without {{target}} here",
            options=("target",))
    warnings = []
    found = machine.get("device_model")
    if target.device_model_contains:
        if found and target.device_model_contains.lower() not in found.lower():
            raise BenchError(f"target {target.name} is for a {target.device_model_contains}; this device is {found!r}")
        if not found:
            warnings.append(f"cannot confirm this is a {target.device_model_contains} (no device-tree model)")
    if target.android and not machine.get("android"):
        raise BenchError(f"target {target.name} is for Android; this machine is not running Android")
    if batch != 1:
        raise BenchError(f"target {target.name} budgets are per sequence at batch 1; run with {{batch}} 1",
                         options=("batch",))
    if model is not None and target.model:
        config = model.get("config") or {}
        different = {k: (v, config.get(k)) for k, v in target.model.items() if config.get(k) != v}
        if different:
            detail = ", ".join(f"{k}={got} (budget for {want})" for k, (want, got) in different.items())
            raise BenchError(f"target {target.name} budgets are for another model shape: {detail}")
    return warnings


def _budget_quantization(model: dict) -> str:
    return str(model.get("quantization") or "")


def check_budgets(result: BenchResult, target: Target) -> dict:
    """Compare every measured length with its budget; the result says what was exceeded, by how much."""
    quantization = _budget_quantization(result.model)
    checked, exceeded = [], []
    for entry in result.results:
        budget = next((b for b in target.budgets if b.quantization == quantization and b.seq_len == entry.seq_len), None)
        if budget is None:
            continue
        measured = {"p50_ms": entry.latency.p50_ms, "p99_ms": entry.latency.p99_ms,
                    "peak_rss_mb": entry.peak_rss_mb, "load_ms": result.load_ms}
        for metric, limit in budget.limits.items():
            value = measured[metric]
            if value is None:
                continue
            row = {"seq_len": entry.seq_len, "quantization": quantization, "metric": metric, "measured": value,
                   "budget": limit, "ok": value <= limit, "source": budget.sources[metric]}
            checked.append(row)
            if not row["ok"]:
                exceeded.append(row)
    if not checked:
        lengths = ", ".join(str(r.seq_len) for r in result.results)
        have = sorted({(b.quantization, b.seq_len) for b in target.budgets})
        raise BenchError(f"target {target.name} has no budget for {quantization or 'this quantization'} at seq "
                         f"{lengths}; it has {', '.join(f'{q}@{n}' for q, n in have)}")
    return {"target": target.name, "file": str(target.path), "checked": checked, "exceeded": exceeded,
            "passed": not exceeded}


def exceeded_lines(check: dict) -> List[str]:
    """One line per exceeded budget: what, measured, budget, ratio."""
    lines = []
    for row in check["exceeded"]:
        unit = "MB" if row["metric"].endswith("_mb") else "ms"
        lines.append(f"{row['quantization']} seq {row['seq_len']} {row['metric']}: {row['measured']:.1f} {unit} > "
                     f"budget {row['budget']:.1f} {unit} ({row['measured'] / row['budget']:.2f}x)")
    return lines


# -- reports ---------------------------------------------------------------------------------
def _fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def result_markdown(result: BenchResult) -> str:
    """The result as Markdown: settings, machine, per-length table, memory, budget check."""
    s, m, model = result.settings, result.machine, result.model
    lines = [f"# edge-albert bench: {Path(result.bundle).name}", ""]
    if s.get("command"):
        lines += ["Command:", "", f"    {s['command']}", ""]
    lines += [
        f"- model: {model['task']}, {model['quantization']}, {model['graph']} graph, max_seq_len {model['max_seq_len']}, "
        f"{model['file_bytes'] / MB:.2f} MB model.tflite, {_fmt(model.get('parameters'), ',')} parameters",
        f"- settings: batch {s['batch']}, threads {s['threads']}, {s['backend']} {s['backend_version']}, "
        f"runs {s['runs']} (warm-up {s['warmup']}, at most {s['max_seconds']:g} s per length)",
        f"- machine: {m.get('device_model') or m.get('cpu_model')}, {m['cores']} cores, {m['architecture']} "
        f"({', '.join(m.get('simd') or []) or 'no SIMD flags read'}), {m['os']}, Python {m['python']}, "
        f"load average {m.get('load_average')} before, {m.get('load_average_after')} after",
        f"- load: {result.load_ms:.0f} ms (sha256 check, tokenizer, interpreter); first inference "
        f"{_fmt(result.first_inference_ms)} ms; RSS {_fmt(result.rss_before_load_mb)} -> {_fmt(result.rss_after_load_mb)} MB "
        f"(+{_fmt(result.load_rss_increase_mb)} MB for the model); peak RSS {_fmt(result.peak_rss_mb)} MB",
        "",
        "| seq | ran at | runs | min ms | p50 ms | p90 ms | p99 ms | mean ms | std ms | seq/s | first run ms | tokenize ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.results:
        l = r.latency
        lines.append(f"| {r.seq_len} | {r.padded_length} | {l.runs}{'*' if r.stopped_by == 'max-seconds' else ''} | "
                     f"{l.min_ms:.2f} | {l.p50_ms:.2f} | {l.p90_ms:.2f} | {l.p99_ms:.2f} | {l.mean_ms:.2f} | "
                     f"{l.std_ms:.2f} | {r.throughput_per_s:.1f} | {r.first_run_ms:.1f} | {r.tokenize_ms:.2f} | "
                     f"{_fmt(r.peak_rss_mb)} |")
    if any(r.stopped_by == "max-seconds" for r in result.results):
        lines.append("\n\\* fewer runs than asked: stopped by --max-seconds.")
    for seq_len, reason in result.skipped.items():
        lines.append(f"\nseq {seq_len} skipped: {reason}.")
    if result.budget_check:
        check = result.budget_check
        lines += ["", f"## Budgets: {check['target']} ({'passed' if check['passed'] else 'EXCEEDED'})", "",
                  "| seq | metric | measured | budget | ok | budget source |", "|---|---|---|---|---|---|"]
        for row in check["checked"]:
            lines.append(f"| {row['seq_len']} | {row['metric']} | {row['measured']:.1f} | {row['budget']:.1f} | "
                         f"{'yes' if row['ok'] else '**no**'} | {row['source']} |")
    return "\n".join(lines) + "\n"


def result_text(result: BenchResult) -> str:
    """A short console summary (the Markdown table is the full record)."""
    s = result.settings
    head = (f"{Path(result.bundle).name}: {result.model['quantization']} {result.model['graph']}, "
            f"{s['backend']} {s['backend_version']}, {s['threads']} threads, batch {s['batch']} | "
            f"load {result.load_ms:.0f} ms, first inference {_fmt(result.first_inference_ms)} ms, "
            f"model RSS +{_fmt(result.load_rss_increase_mb)} MB, peak RSS {_fmt(result.peak_rss_mb)} MB")
    m = result.machine
    machine = (f"machine: {m.get('device_model') or m.get('cpu_model')}, {m['cores']} cores, {m['architecture']}, "
               f"{m['os']}, Python {m['python']}, load average {m.get('load_average')}; runs {s['runs']}, "
               f"warm-up {s['warmup']}, max {s['max_seconds']:g} s per length")
    rows = [f"  seq {r.seq_len:>4}: p50 {r.latency.p50_ms:8.2f} ms  p90 {r.latency.p90_ms:8.2f}  "
            f"p99 {r.latency.p99_ms:8.2f}  min {r.latency.min_ms:8.2f}  {r.throughput_per_s:7.1f} seq/s  "
            f"({r.latency.runs} runs)" for r in result.results]
    return "\n".join([head, machine] + rows)


def write_plot(result: BenchResult, path: PathLike) -> Path:
    """Latency (p50 with p90/p99 and min) against sequence length, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = [r.seq_len for r in result.results]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, style in (("p99_ms", ":"), ("p90_ms", "--"), ("p50_ms", "-"), ("min_ms", "-.")):
        ax.plot(lengths, [getattr(r.latency, key) for r in result.results], style, marker="o", label=key[:-3])
    if result.budget_check:
        for row in result.budget_check["checked"]:
            if row["metric"] == "p50_ms":
                ax.plot([row["seq_len"]], [row["budget"]], "rx", markersize=9)
        ax.plot([], [], "rx", label="p50 budget")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("latency (ms)")
    ax.set_xticks(lengths)
    s = result.settings
    ax.set_title(f"{Path(result.bundle).name}: {result.model['quantization']}, {s['threads']} threads, batch {s['batch']}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_outputs(result: BenchResult, json_out: Optional[PathLike] = None, markdown_out: Optional[PathLike] = None,
                  plot_out: Optional[PathLike] = None) -> List[Path]:
    """Write the requested result files; returns the paths written."""
    written = []
    for out, write in ((json_out, lambda p: p.write_text(result.to_json())),
                       (markdown_out, lambda p: p.write_text(result.to_markdown())),
                       (plot_out, lambda p: write_plot(result, p))):
        if out:
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            write(out)
            written.append(out)
    return written


def progress_printer(stream=None) -> Progress:
    """Progress on stderr: updated in place on a terminal, only finished lines otherwise."""
    stream = stream or sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty()
    started = time.perf_counter()

    def say(message: str, final: bool) -> None:
        text = f"[{time.perf_counter() - started:6.1f}s] {message}"
        if interactive:
            stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            stream.write(text + "\n")
        stream.flush()

    return say


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


def run_benchmark_for_target(bundle_path: PathLike, target: Optional[str], warn: Callable[[str], None],
                             seq_lens: Sequence[int] = DEFAULT_SEQ_LENS, batch: int = DEFAULT_BENCH_BATCH,
                             threads: Optional[int] = None, **options) -> BenchResult:
    """run_benchmark; with a `target`, first refuse one that does not apply here (its warnings go to
    `warn`), run with its thread count unless `threads` is given, then check its budgets
    (`result.budget_check`). `options` are run_benchmark's.
    """
    budget_target = None
    if target:
        budget_target, warnings = target_for_bundle(target, bundle_path, batch=batch, seq_lens=seq_lens)
        for warning in warnings:
            warn(warning)
        threads = threads or budget_target.threads
    result = run_benchmark(bundle_path, seq_lens=seq_lens, batch=batch, threads=threads, target=target, **options)
    if budget_target is not None:
        result.budget_check = check_budgets(result, budget_target)
    return result


def target_for_bundle(name_or_path: PathLike, bundle_path: PathLike, batch: int = 1,
                      seq_lens: Optional[Sequence[int]] = None) -> Tuple[Target, List[str]]:
    """Load a target and confirm, before anything is measured, that this machine and bundle are its
    kind and that it has a budget for the bundle's quantization at one of `seq_lens`."""
    from .bundle import load_bundle

    target = load_target(name_or_path)
    bundle = load_bundle(bundle_path, verify=False)  # run_benchmark verifies when it loads
    model = _model_summary(bundle)
    warnings = check_target_applies(target, machine_info(), model, batch=batch)
    quantization = _budget_quantization(model)
    if seq_lens is not None and not any(b.quantization == quantization and b.seq_len in seq_lens for b in target.budgets):
        have = sorted({(b.quantization, b.seq_len) for b in target.budgets})
        raise BenchError(f"target {target.name} has no budget for {quantization} at seq {', '.join(map(str, seq_lens))}; "
                         f"it has {', '.join(f'{q}@{n}' for q, n in have)}")
    return target, warnings
