"""Measure a bundle on the machine at hand: latency, load time and memory, checked against budgets.

One module per job: `measure` (latency and load runs on inputs of an exact length), `machine`
(CPU, SIMD flags, memory probes), `budgets` (targets and budgets from TOML, checked against a
result), `scaling` (albert-base budgets carried to another shape by MACs and weight bytes),
`report` (console, Markdown, JSON, plot). The public names are re-exported here, so
`edge_albert.bench.run_benchmark` and the like keep working.

Runtime-only imports (numpy, the runtime, the tokenizer): this runs on a Raspberry Pi with the
light install. psutil is used when present, /proc otherwise; matplotlib only for a plot.
"""

from ..errors import BenchError
from .budgets import (BUDGET_EXCEEDED_EXIT, BUDGET_METRICS, TARGETS_DIR, Budget, Target, check_budgets,
                      check_target_applies, exceeded_lines, known_targets, load_target, run_benchmark_for_target,
                      target_for_bundle)
from .machine import MB, SIMD_FLAGS, current_rss_bytes, device_model, is_android, machine_info, peak_rss_bytes
from .measure import (BENCH_QUESTION, BENCH_TEXT, BenchResult, LatencyStats, PathLike, Progress, SeqLenResult,
                      TextsResult, bench_texts, inputs_of_length, parse_seq_lens, run_benchmark, run_texts_benchmark,
                      time_runs)
from .report import (progress_printer, result_markdown, result_text, scaled_budget_lines, texts_result_text,
                     write_outputs, write_plot)
from .scaling import BudgetScale, budget_scale

__all__ = [
    "BENCH_QUESTION", "BENCH_TEXT", "BUDGET_EXCEEDED_EXIT", "BUDGET_METRICS", "MB", "SIMD_FLAGS", "TARGETS_DIR",
    "BenchError", "BenchResult", "Budget", "BudgetScale", "LatencyStats", "PathLike", "Progress", "SeqLenResult",
    "Target", "budget_scale", "scaled_budget_lines",
    "TextsResult", "bench_texts", "check_budgets", "check_target_applies", "current_rss_bytes", "device_model",
    "exceeded_lines", "inputs_of_length", "is_android", "known_targets", "load_target", "machine_info",
    "parse_seq_lens", "peak_rss_bytes", "progress_printer", "result_markdown", "result_text", "run_benchmark",
    "run_benchmark_for_target", "run_texts_benchmark", "target_for_bundle", "texts_result_text", "time_runs",
    "write_outputs", "write_plot",
]
