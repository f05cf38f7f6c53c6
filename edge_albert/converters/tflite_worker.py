"""Conversion worker: `python -m edge_albert.converters.tflite_worker WORK_DIR PARENT_PID` (started by
BackgroundConversion; it dies with PARENT_PID).

For each job of WORK_DIR/request.json, in order: touch N.started, then write N.tflite, or N.error
(one line) when the conversion fails in Python. A native abort ends the process; the parent sees
which job had started without finishing, reports it, and starts a new worker for the rest.
The worker reads the checkpoint and builds the TF graph itself, so the parent never loads TensorFlow.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..contract import INPUT_NAMES
from ..early_exit import parse_rule
from ..errors import ConversionError, EdgeAlbertError
from ..lifetime import die_with_parent
from ..quantization import MODES, QuantizationMode
from ..runtime import native_logs_silenced
from ..hf.checkpoint import load_checkpoint
from .graph import GraphOptions, build_albert_module
from .tflite import REQUEST_FILE, convert_module
from .weight_quantizer import quantize_weights


def request_mode(job: dict) -> QuantizationMode:
    """The job's mode from its name and the run's choices: the one place a mode is looked up by name again."""
    name = job["quantize"]
    if name not in MODES:
        raise ConversionError(f"unknown quantization {name!r}; choose one of {', '.join(MODES)}")
    return MODES[name].for_run(job["per_channel_dense"])


def load_calibration(path):
    if path is None:
        return None
    with np.load(path) as arrays:
        count = len(arrays.files) // len(INPUT_NAMES)
        return [{name: arrays[f"{i}/{name}"] for name in INPUT_NAMES} for i in range(count)]


class Converter:
    """Converts jobs one by one, building each (checkpoint, graph options) module once."""

    def __init__(self):
        self.checkpoints = {}
        self.modules = {}
        self.seconds = 0.0

    def __call__(self, job: dict) -> bytes:
        rule = parse_rule(job["early_exit"]) if job.get("early_exit") else None
        options = GraphOptions(job["graph"], job["max_seq_len"], job["mask_bias"], rule)
        key = (job["checkpoint"], options)
        if key not in self.modules:
            if job["checkpoint"] not in self.checkpoints:
                self.checkpoints[job["checkpoint"]] = load_checkpoint(job["checkpoint"])
            with native_logs_silenced():
                self.modules[key] = build_albert_module(self.checkpoints[job["checkpoint"]], options)
        started = time.perf_counter()
        try:
            mode = request_mode(job)
            model_bytes = convert_module(self.modules[key], mode, load_calibration(job["calibration"]))
            if mode.converter == "ai-edge-quantizer":  # the fp32 file, quantized by AI Edge Quantizer
                # the checkpoint's weights name the weight groups the mode's recipe addresses
                model_bytes = quantize_weights(model_bytes, mode, self.checkpoints[job["checkpoint"]].weights)
            return model_bytes
        finally:
            self.seconds = time.perf_counter() - started  # the conversion alone, not the graph building


def main(work_dir: str, convert=None) -> int:
    work = Path(work_dir)
    convert = convert or Converter()
    for job in json.loads((work / REQUEST_FILE).read_text()):
        index = job["index"]
        (work / f"{index}.started").touch()
        started = time.perf_counter()
        try:
            model = convert(job)
        except EdgeAlbertError as exc:
            (work / f"{index}.error").write_text(f"{exc}\n")
            continue
        finally:
            seconds = getattr(convert, "seconds", None) or time.perf_counter() - started
            (work / f"{index}.seconds").write_text(f"{seconds:.3f}\n")
        staging = work / f"{index}.tflite.part"
        staging.write_bytes(model)
        staging.replace(work / f"{index}.tflite")
    return 0


if __name__ == "__main__":
    die_with_parent(int(sys.argv[2]) if len(sys.argv) > 2 else None)  # never outlive convert, even on SIGKILL
    sys.exit(main(sys.argv[1]))
