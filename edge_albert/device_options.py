"""Defaults of the commands that run bundles (predict, evaluate, bench), in one light module.

tasks.py and bench/ import numpy; keeping their defaults here lets the CLI show them without it.
"""

from __future__ import annotations

DEFAULT_BATCH_SIZE = 16  # texts per interpreter call for predict and evaluate
DEFAULT_SEQ_LENS = (16, 32, 64, 128)  # bench: input lengths measured, [CLS] and [SEP] included
DEFAULT_BENCH_BATCH = 1  # bench: one text per call, the latency a device user sees
DEFAULT_RUNS = 50
DEFAULT_WARMUP = 5
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_REPEATS = 3  # bench over real texts: passes over the list
