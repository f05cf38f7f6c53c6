"""A target's albert-base budgets carried over to another ALBERT shape, by the model's work.

The shipped targets were estimated (ARM) or measured (x86) for the albert-base-v2 shape
(benchmarks/make_targets.py). A smaller or larger ALBERT does proportionally less or more of
what those budgets are made of, so rather than refusing it:
- latency (p50_ms, p99_ms) scales by the MACs of one sequence at each length (model / albert-base);
- peak_rss_mb: only the weights are swapped: the budget less albert-base's weight bytes plus this
  model's (parameters x the mode's bytes per weight). The rest (Python, numpy, the runtime, the
  tokenizer, the interpreter's arena) does not shrink with the weights: the example model adds
  about 0.57x albert-base's RSS at 0.165x its weight bytes (measured on x86), so scaling the whole
  budget by the weights refused a model that a Pi runs comfortably;
- load_ms scales up by the weight bytes for a larger model, never down (interpreter and tokenizer
  set-up do not shrink with the weights).
Every scaled budget is still an estimate, and says so in its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from ..errors import BenchError
from ..model_work import albert_macs, albert_parameters
from ..quantization import quantization_mode

# What albert_macs and albert_parameters read from a config; without them the work is unknown.
SHAPE_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "intermediate_size")
MB = 1e6


@dataclass
class BudgetScale:
    """How the budgets of a target written for `reference` apply to `model`."""

    reference: Dict[str, int]  # the target's [model] table (albert-base)
    model: Dict[str, int]  # the bundle's shape (the same keys)
    quantization: str
    bytes_per_weight: float
    model_weight_mb: float
    reference_weight_mb: float
    latency: Dict[int, float]  # seq_len -> MACs(model) / MACs(reference)

    @property
    def weights(self) -> float:
        return self.model_weight_mb / self.reference_weight_mb

    def latency_at(self, seq_len: int) -> float:
        if seq_len not in self.latency:
            self.latency[seq_len] = (albert_macs(self.model, seq_len)["total"]
                                     / albert_macs(self.reference, seq_len)["total"])
        return self.latency[seq_len]

    def limit(self, metric: str, base: float, seq_len: int, rss_before_mb: Optional[float]) -> Optional[float]:
        """The scaled limit of one budget; None where it cannot be scaled (no RSS before loading)."""
        if metric in ("p50_ms", "p99_ms"):
            return base * self.latency_at(seq_len)
        if metric == "peak_rss_mb":
            return base - self.reference_weight_mb + self.model_weight_mb
        if metric == "load_ms":
            return base * max(1.0, self.weights)
        raise ValueError(metric)

    def how(self, metric: str, seq_len: int, rss_before_mb: Optional[float]) -> str:
        if metric in ("p50_ms", "p99_ms"):
            return f"x{self.latency_at(seq_len):.4f} (MACs at seq {seq_len})"
        if metric == "peak_rss_mb":
            return f"the albert-base budget with this model's {self.model_weight_mb:.2f} MB of weights for its {self.reference_weight_mb:.2f} MB"
        return f"x{max(1.0, self.weights):.4f} (weight bytes, never below the albert-base budget)"

    def summary(self) -> str:
        shape = " ".join(f"{k}={self.model[k]}" for k in SHAPE_KEYS)
        lengths = sorted(self.latency)
        latency = ", ".join(f"x{self.latency[n]:.4f} at seq {n}" for n in lengths)
        return (f"budgets scaled from albert-base to this model ({shape}): latency {latency} (MACs); "
                f"memory: the weights swapped ({self.model_weight_mb:.2f} MB for "
                f"{self.reference_weight_mb:.2f} MB at {self.bytes_per_weight:g} bytes per weight, {self.quantization}); "
                f"load never below the albert-base budget. Estimates, not measurements")

    def to_dict(self) -> dict:
        return {"reference": self.reference, "model": self.model, "quantization": self.quantization,
                "bytes_per_weight": self.bytes_per_weight, "model_weight_mb": self.model_weight_mb,
                "reference_weight_mb": self.reference_weight_mb, "weights": self.weights,
                "latency": {str(n): v for n, v in sorted(self.latency.items())}}


def own_budget_hint(path) -> str:
    """Exactly how to get a budget where scaling cannot: a target file of one's own."""
    return (f"to check this model, copy {path} to a .toml of your own, set its [model] to this bundle's config "
            f"(manifest.json source.config) and its budgets to your numbers (each with a *_source), then "
            f"`edge-albert bench BUNDLE --target YOUR.toml`")


def budget_scale(target_name: str, target_path, reference: Dict[str, int], config: dict, quantization: str,
                 seq_lens=()) -> Optional[BudgetScale]:
    """None when `config` is the target's shape (its budgets apply as written); else the scale,
    or a BenchError saying how to get a budget where the work of this model cannot be computed."""
    if not reference or all(config.get(k) == v for k, v in reference.items()):
        return None
    missing = [k for k in SHAPE_KEYS if not isinstance(config.get(k), int) or isinstance(config.get(k), bool)
               or config.get(k) <= 0 or k not in reference]
    try:
        bytes_per_weight = quantization_mode(quantization).weight_bytes
    except ValueError:
        missing.append(f"bytes per weight of {quantization or 'an unrecorded quantization'}")
    if missing:
        raise BenchError(f"target {target_name} budgets are for the albert-base shape and this bundle's "
                         f"{', '.join(missing)} is unknown, so they cannot be scaled; "
                         + own_budget_hint(target_path))
    model = {k: int(config[k]) for k in SHAPE_KEYS}
    extra = {k: config[k] for k in ("pruned_heads", "max_position_embeddings", "type_vocab_size") if config.get(k)}
    model_bytes = albert_parameters({**model, **extra}) * bytes_per_weight
    reference_bytes = albert_parameters(dict(reference)) * bytes_per_weight
    scale = BudgetScale(reference=dict(reference), model={**model, **extra}, quantization=quantization,
                        bytes_per_weight=bytes_per_weight, model_weight_mb=model_bytes / MB,
                        reference_weight_mb=reference_bytes / MB, latency={})
    for seq_len in seq_lens:
        scale.latency_at(int(seq_len))
    return scale
