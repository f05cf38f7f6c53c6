"""`edge-albert export-mediapipe`: a bundle as a .tflite that MediaPipe Tasks' TextClassifier loads as is.

What is written: the bundle's unrolled model with a probability output (graph.py), MediaPipe
metadata written by MediaPipe's own writer (labels, input tensor names, and a spiece.model whose
normalizer is the bundle's tokenizer.json normalizer compiled to a charsmap, spiece.py). Before
the file is written, MediaPipe's Python TextClassifier classifies the verification texts and its
labels and probabilities must equal what edge-albert's runtime gives the bundle.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from ..bundle import Bundle, load_bundle
from ..contract import INPUT_NAMES, SIGNATURE_NAME
from ..errors import BundleError, OutputError, VerificationError
from ..quantization import MODES, UNROLLED
from ..tasks import load_model
from . import client
from .graph import with_probability_output
from .spiece import compile_spiece, token_differences

TASK = "text-classification"
MULTI_LABEL = "multi_label_classification"
# Texts with capitals, accents, quotes, odd whitespace and scripts: what the compiled normalizer must get right.
CHECK_TEXTS = (
    "a gorgeous, witty, seductive movie.",
    "The plot is thin and the acting is worse.",
    "HELLO, MY DOG IS CUTE",
    "Crème brûlée at the café cost €4.50 — naïve pricing, ÅNGSTRÖM!",
    "``Quoted'' words, ''double'' quotes and “smart quotes” with tabs\tand\nnewlines.",
    "  İstanbul   ΣΊΣΥΦΟΣ straße\u00a0and\u3000ideographic space",
    "東京 is a city; emoji 😀 👍🏽 too.",
    "It's not the best film I've seen this year, but the last hour is genuinely moving.",
)
PathLike = Union[str, os.PathLike]


@dataclass
class MediaPipeExport:
    """What export_mediapipe wrote and how MediaPipe's classifier compared with the bundle."""

    out: Path
    file_bytes: int
    quantization: str
    mediapipe_python: str
    texts: int
    label_mismatches: List[str]
    max_probability_diff: float
    tolerance: float
    token_differences: List[str] = field(default_factory=list)
    normalizer_rules: int = 0
    written: bool = True

    @property
    def agrees(self) -> bool:
        return not self.label_mismatches and self.max_probability_diff <= self.tolerance


def check_bundle(bundle: Bundle) -> str:
    """Refuse, in one line, a bundle MediaPipe's TextClassifier cannot run; its quantization mode."""
    manifest = bundle.manifest
    if manifest.get("task") != TASK:
        raise BundleError(f"the bundle's task is {manifest.get('task')!r}; MediaPipe's TextClassifier runs "
                          f"{TASK} bundles only (MediaPipe has no ALBERT question answering, token "
                          "classification or feature task)")
    if manifest.get("early_exit"):
        rule = manifest["early_exit"]
        raise BundleError(f"the bundle stops early ({rule.get('rule')}={rule.get('default')}), which needs the loop "
                          "form's WHILE; MediaPipe runs single-subgraph models, and exporting the full depth would "
                          "not be this bundle's behaviour: convert the checkpoint without --early-exit and with "
                          f"--graph {UNROLLED}, then export that")
    if manifest.get("graph") != UNROLLED:
        raise BundleError(f"the bundle's graph is {manifest.get('graph')!r}; MediaPipe runs single-subgraph text "
                          "models only (it refuses the loop form's WHILE): convert the checkpoint again with "
                          f"--graph {UNROLLED} (same weights, same quantization) and export that")
    mode = (manifest.get("quantization") or {}).get("mode")
    if mode not in MODES or MODES[mode].app_logit_tolerance is None:
        raise BundleError(f"the bundle's quantization {mode!r} has no fast CPU kernels in MediaPipe's TFLite; export "
                          f"one of {', '.join(n for n, m in MODES.items() if m.app_logit_tolerance is not None)}")
    if len(bundle.labels) < 2:
        raise BundleError("the bundle's manifest has fewer than two label names; MediaPipe's metadata needs one per "
                          "output")
    return mode


def check_output(out: PathLike, overwrite: bool) -> Path:
    """Refuse an output that exists (without `overwrite`), is a directory, or sits in a missing folder."""
    path = Path(out)
    if path.is_dir():
        raise OutputError(f"{out} is a directory; name the .tflite file to write")
    if path.exists() and not overwrite:
        raise OutputError(f"{out} already exists; pass {{overwrite}} to replace it", options=("overwrite",))
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {out}: {path.parent} is not a directory")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write {out}: {path.parent} is not writable")
    return path


def export_mediapipe(bundle_path: PathLike, out: PathLike, texts: Optional[Sequence[str]] = None,
                     force: bool = False, overwrite: bool = False, mediapipe_python: Optional[str] = None,
                     trusted_key: Optional[PathLike] = None, num_threads: Optional[int] = None,
                     warn: Callable[[str], None] = lambda message: None) -> MediaPipeExport:
    """Write OUT.tflite for MediaPipe's TextClassifier after checking it classifies `texts` as the bundle does.

    The texts checked are CHECK_TEXTS (capitals, accents, quotes) and `texts`. Disagreement (a different label, or a probability further than the
    quantization's device tolerance: 1e-3 for fp32) raises VerificationError unless `force`.
    """
    path = check_output(out, overwrite)
    bundle = load_bundle(bundle_path, trusted_key=trusted_key)
    mode = check_bundle(bundle)
    python = client.mediapipe_python(mediapipe_python)
    texts = list(CHECK_TEXTS) + list(texts or [])

    multi_label = (bundle.manifest.get("source") or {}).get("problem_type") == MULTI_LABEL
    model = with_probability_output(bundle.model_path.read_bytes(), multi_label=multi_label)
    tokenizer_json = bundle.tokenizer_path.read_text(encoding="utf-8")
    spiece_name = (bundle.manifest.get("tokenizer") or {}).get("spiece_file")
    if not spiece_name or not bundle.file(spiece_name).is_file():
        raise BundleError("the bundle carries no spiece.model; MediaPipe's SentencePiece tokenizer needs one")
    spiece = compile_spiece(bundle.file(spiece_name).read_bytes(), tokenizer_json)
    differ = token_differences(spiece.model, tokenizer_json, texts)
    for text in differ:
        warn(f"MediaPipe's tokenizer gives other token ids than the bundle's for {text!r}")

    with tempfile.TemporaryDirectory(prefix=".edge-albert-mediapipe-", dir=path.parent) as folder:
        staged = Path(folder)
        (staged / "model.tflite").write_bytes(model)
        (staged / "spiece.model").write_bytes(spiece.model)
        client.run_worker(python, {
            "job": "write", "model": str(staged / "model.tflite"), "spiece": str(staged / "spiece.model"),
            "labels": bundle.labels, "inputs": input_tensor_names(), "out": str(staged / "out.tflite")})
        answer = client.run_worker(python, {"job": "classify", "model": str(staged / "out.tflite"), "texts": texts})
        got = np.asarray(answer["scores"], dtype=np.float64)
        expected = bundle_probabilities(bundle_path, texts, trusted_key=trusted_key, num_threads=num_threads)
        result = compare(got, expected, texts, MODES[mode].app_logit_tolerance)
        result.update(out=path, quantization=mode, mediapipe_python=python, token_differences=differ,
                      normalizer_rules=spiece.rules, file_bytes=(staged / "out.tflite").stat().st_size)
        export = MediaPipeExport(**result)
        if not export.agrees:
            message = disagreement(export)
            if not force:
                raise VerificationError(f"{message}; nothing written")
            warn(f"{message}; written anyway (forced)")
        _move_into_place(staged / "out.tflite", path, overwrite)
    return export


def input_tensor_names() -> List[str]:
    """The converter's input tensor names (ids, mask, segment), as MediaPipe's metadata must name them."""
    return [f"{SIGNATURE_NAME}_{name}:0" for name in INPUT_NAMES]


def bundle_probabilities(bundle_path: PathLike, texts: Sequence[str], trusted_key: Optional[PathLike] = None,
                         num_threads: Optional[int] = None) -> np.ndarray:
    """What `edge-albert predict` says for each text: probabilities in label order."""
    model = load_model(bundle_path, trusted_key=trusted_key, num_threads=num_threads)
    labels = model.labels
    return np.asarray([[p.scores[label] for label in labels] for p in model.predict(list(texts))], dtype=np.float64)


def compare(got: np.ndarray, expected: np.ndarray, texts: Sequence[str], tolerance: float) -> dict:
    """Labels (argmax) and the largest probability difference between MediaPipe and the bundle."""
    if got.shape != expected.shape:
        raise VerificationError(f"MediaPipe gave scores of shape {got.shape}; the bundle gives {expected.shape}")
    mismatched = np.argmax(got, axis=1) != np.argmax(expected, axis=1)
    return dict(texts=len(texts), label_mismatches=[text for text, bad in zip(texts, mismatched) if bad],
                max_probability_diff=float(np.max(np.abs(got - expected))) if len(texts) else 0.0,
                tolerance=tolerance)


def disagreement(export: MediaPipeExport) -> str:
    parts = []
    if export.label_mismatches:
        parts.append(f"labels differ on {len(export.label_mismatches)} of {export.texts} texts "
                     f"(first: {export.label_mismatches[0][:60]!r})")
    if export.max_probability_diff > export.tolerance:
        parts.append(f"probabilities differ by up to {export.max_probability_diff:.2e} "
                     f"(tolerance {export.tolerance:g} for {export.quantization})")
    return "MediaPipe's TextClassifier disagrees with the bundle: " + "; ".join(parts)


def _move_into_place(staged: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished file over the target (same folder, so atomic); never a half-written OUT."""
    with open(staged, "rb") as handle:
        os.fsync(handle.fileno())
    if overwrite:
        os.replace(staged, target)
    else:
        try:
            os.link(staged, target)  # fails if OUT appeared meanwhile, instead of replacing it
        except FileExistsError:
            raise OutputError(f"{target} already exists; pass {{overwrite}} to replace it",
                              options=("overwrite",)) from None
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def report_text(export: MediaPipeExport) -> str:
    """The export's report: file, agreement, and the texts whose tokens differ."""
    lines = [f"{'wrote' if export.written else 'checked'} {export.out} ({export.file_bytes / 1e6:.2f} MB, "
             f"{export.quantization}, metadata by mediapipe {client.MEDIAPIPE_VERSION})",
             f"MediaPipe TextClassifier vs the bundle on {export.texts} texts: "
             f"{export.texts - len(export.label_mismatches)} labels identical, max probability difference "
             f"{export.max_probability_diff:.2e} (tolerance {export.tolerance:g})",
             f"tokenizer: tokenizer.json's normalizer compiled into spiece.model ({export.normalizer_rules} rules); "
             + (f"token ids differ on {len(export.token_differences)} texts:" if export.token_differences
                else "token ids identical on every text")]
    lines += [f"  {json.dumps(text, ensure_ascii=False)[:100]}" for text in export.token_differences]
    return "\n".join(lines)
