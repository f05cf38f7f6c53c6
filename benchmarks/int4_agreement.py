"""Why int4 bundles of a random-weight checkpoint fail label agreement (issue 21): near-tied logits or
real quantization error? Compares each bundle's logit error with the spread of the reference logits.

Usage: python benchmarks/int4_agreement.py CKPT OUT.json NAME=BUNDLE [NAME=BUNDLE ...] [--samples 64]

Samples are random token ids (lengths 8..64, seed 0), run by PyTorch and by each bundle's .tflite.
Per bundle: label agreement, max abs logit diff, and for the decision value m = logit1 - logit0:
the reference spread std(m), the error std(m_bundle - m), their ratio (error / spread: ~0 means the
bundle keeps what a classifier reads; near 1 means the int4 error is as large as the signal), and
the fraction of samples whose |m| exceeds 3x the error (the ones a label flip could not explain).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _batches(samples: int, batch: int = 8):
    rng = np.random.RandomState(0)
    out = []
    for start in range(0, samples, batch):
        length = int(rng.randint(8, 65))
        ids = rng.randint(5, 30000, size=(min(batch, samples - start), length)).astype(np.int32)
        out.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    return out


def stats(reference: np.ndarray, got: np.ndarray) -> dict:
    """Agreement, max diff and the decision-value error against its spread (see the module docstring)."""
    margin = reference[:, 1] - reference[:, 0]
    error = (got[:, 1] - got[:, 0]) - margin
    return {"label_agreement": round(float((got.argmax(-1) == reference.argmax(-1)).mean()), 4),
            "max_abs_diff": round(float(np.abs(got - reference).max()), 4),
            "margin_error_std": round(float(error.std()), 4), "margin_error_mean": round(float(error.mean()), 4),
            "error_over_spread": round(float(error.std() / margin.std()), 3),
            "clear_margin_share": round(float((np.abs(margin) > 3 * np.abs(error).std()).mean()), 3)}


def main(argv) -> int:
    from edge_albert.converters import verify
    from edge_albert.hf.checkpoint import load_checkpoint

    checkpoint, out = Path(argv[0]), Path(argv[1])
    samples, bundles = 64, {}
    rest = iter(argv[2:])
    for arg in rest:
        if arg == "--samples":
            samples = int(next(rest))
        else:
            name, path = arg.split("=", 1)
            bundles[name] = Path(path)
    batches = _batches(samples)
    reference = np.concatenate([r["logits"] for r in verify.reference_outputs(load_checkpoint(checkpoint), batches)])
    margin = reference[:, 1] - reference[:, 0]
    result = {"command": "python benchmarks/int4_agreement.py " + " ".join(argv), "samples": samples,
              "reference": {"logit_abs_max": float(np.abs(reference).max()), "margin_mean": float(margin.mean()),
                            "margin_std": float(margin.std()), "label_share": float((margin > 0).mean())},
              "bundles": {}}
    for name, path in bundles.items():
        got = np.concatenate([g["logits"] for g in verify.tflite_outputs(
            (path / "model.tflite").read_bytes(), batches, ["logits"])])
        result["bundles"][name] = stats(reference, got)
        print(name, result["bundles"][name], flush=True)
    print(result["reference"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
