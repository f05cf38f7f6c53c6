"""A measurement written for people and files: console lines, Markdown, JSON, a plot, progress.

matplotlib is imported only for a plot.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from ..early_exit import describe_calls
from .machine import MB

if TYPE_CHECKING:
    from .measure import BenchResult, PathLike, Progress, TextsResult


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
        lines += ["", f"## Budgets: {check['target']} ({'passed' if check['passed'] else 'EXCEEDED'})", ""]
        if check.get("scaling"):
            lines += [check["scaling"]["summary"] + ".", ""]
        lines += ["| seq | metric | measured | budget | ok | budget source |", "|---|---|---|---|---|---|"]
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
    scaled = scaled_budget_lines(result.budget_check) if result.budget_check else []
    return "\n".join([head, machine] + rows + scaled)


def scaled_budget_lines(check: dict) -> List[str]:
    """For budgets scaled to another shape: the scale, then each budget checked with its albert-base figure."""
    scaling = check.get("scaling")
    if not scaling:
        return []
    lines = [f"{check['target']}: {scaling['summary']}"]
    for row in check["checked"]:
        unit = "MB" if row["metric"].endswith("_mb") else "ms"
        lines.append(f"  seq {row['seq_len']} {row['metric']}: budget {row['budget']:.1f} {unit} (albert-base "
                     f"{row['albert_base_budget']:g}), measured {row['measured']:.1f} {unit}"
                     f"{'' if row['ok'] else '  EXCEEDED'}")
    lines += [f"  seq {row['seq_len']} {row['metric']}: not checked: {row['reason']}" for row in scaling["not_checked"]]
    return lines


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


def texts_result_text(result: TextsResult) -> str:
    """One line per measured configuration: latency over the texts and, for early exit, the calls."""
    l = result.latency
    line = (f"{Path(result.bundle).name}: {result.texts} texts x {result.repeats}: p50 {l.p50_ms:.2f} ms  "
            f"mean {l.mean_ms:.2f}  p90 {l.p90_ms:.2f}  p99 {l.p99_ms:.2f}")
    if result.early_exit is not None:
        line += "\n  " + describe_calls({"rule": result.exit_rule, **result.early_exit})
    return line
