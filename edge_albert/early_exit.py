"""Per-input early exit for ALBERT text classifiers: the exit rules, shared by every side.

ALBERT calls one shared layer L times, and one classifier (pooler + head) can read the hidden
state after any call. An early-exit bundle stops the loop for an input as soon as its rule
fires and reports how many calls it ran:

- patience=N (PABEE, Zhou et al. 2020): stop after a call whose predicted label is the same as
  the previous N calls' (the label stayed unchanged N times in a row); patience 0 stops after
  the first call. With L calls, patience >= L-1 never stops early.
- entropy=T (DeeBERT-style confidence): stop after the first call whose softmax entropy, in
  nats, is below T; 0 never stops early.

The last call always stops. This module is numpy-only: the runtime reads rules from manifests
with it, and `simulate` is the one definition the converter's PyTorch reference and the tests
follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeAlbertError, setting_error_type

RULES = ("patience", "entropy")
# Names of the extra signature input (the rule's value) and output (calls run per row).
INPUT_NAMES = {"patience": "exit_patience", "entropy": "exit_entropy"}
CALLS_OUTPUT = "layer_calls"
# The largest values the rule's model input can carry: int32 patience, float32 entropy.
LIMITS = {"patience": 2**31 - 1, "entropy": float(np.finfo(np.float32).max)}


@dataclass(frozen=True)
class ExitRule:
    """One early-exit rule; `value` is the default the converter bakes into the manifest."""

    kind: str
    value: float

    def __post_init__(self):
        if self.kind not in RULES:
            raise EdgeAlbertError(f"early exit rule must be one of {', '.join(RULES)}, not {self.kind!r}")
        check_value(self.kind, self.value)

    @property
    def input_name(self) -> str:
        return INPUT_NAMES[self.kind]

    @property
    def input_dtype(self):
        return np.int32 if self.kind == "patience" else np.float32

    def with_value(self, value: float, setting: str = "exit_value") -> "ExitRule":
        """This rule with another value (a run-time choice), refused in one line naming `setting`."""
        check_value(self.kind, value, setting)
        return ExitRule(self.kind, float(value))

    def feed(self) -> Dict[str, np.ndarray]:
        """The signature input that carries this rule's value."""
        return {self.input_name: np.asarray(self.value, dtype=self.input_dtype)}

    def from_feed(self, feed: Dict[str, np.ndarray]) -> "ExitRule":
        """The rule with the value a feed carries (float32 0.45 reads back as 0.45, not 0.449999988)."""
        return self.with_value(float(str(np.asarray(feed[self.input_name], dtype=self.input_dtype)[()])))

    def as_text(self) -> str:
        return f"{self.kind}={int(self.value) if self.kind == 'patience' else self.value:g}"

    def to_manifest(self) -> Dict[str, Any]:
        return {"rule": self.kind, "default": int(self.value) if self.kind == "patience" else float(self.value),
                "input": self.input_name, "calls_output": CALLS_OUTPUT}

    @classmethod
    def from_manifest(cls, entry: Dict[str, Any]) -> "ExitRule":
        return cls(str(entry["rule"]), float(entry["default"]))


def check_value(kind: str, value: Any, setting: str = "early_exit") -> None:
    """Refuse a value the rule's model input cannot carry: NaN, negative, fractional patience, beyond
    int32 (patience) or float32 (entropy); a ValueError too, naming `setting`."""
    limit = LIMITS[kind]
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = number and math.isfinite(value) and 0 <= value <= limit and (kind != "patience" or value == int(value))
    if not ok:
        what = f"a whole number of calls from 0 to {limit}" if kind == "patience" else f"a number from 0 to {limit:g}"
        shown = f"{value:g}" if number else repr(value)
        raise setting_error_type(EdgeAlbertError)(f"{{{setting}}} {kind} must be {what}, not {shown}",
                                                  options=(setting,))


def rule_of(manifest: Dict[str, Any]) -> Optional[ExitRule]:
    """The bundle's exit rule, or None for an ordinary (full-depth) bundle."""
    entry = manifest.get("early_exit")
    return ExitRule.from_manifest(entry) if entry else None


def parse_rule(text: str) -> ExitRule:
    """`patience=N` or `entropy=T` (the `convert --early-exit` value) -> ExitRule."""
    kind, sep, value = text.partition("=")
    kind = kind.strip().lower()
    if not sep or kind not in RULES:
        raise EdgeAlbertError(f"{{early_exit}} takes patience=N or entropy=T, not {text!r}", options=("early_exit",))
    try:
        number = float(value)
    except ValueError:
        raise EdgeAlbertError(f"{{early_exit}} {kind}= needs a number, not {value.strip()!r}",
                              options=("early_exit",)) from None
    return ExitRule(kind, number)


def entropy(logits: np.ndarray) -> np.ndarray:
    """Softmax entropy in nats over the last axis."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(np.exp(log_probs) * log_probs).sum(axis=-1)


def simulate(per_call_logits: np.ndarray, rule: ExitRule) -> Tuple[np.ndarray, np.ndarray]:
    """Apply `rule` to logits[L, batch, labels] from every call; return (exit logits[batch, labels], calls[batch]).

    The reference semantics: each row on its own, the first call where the rule fires (or L).
    """
    per_call_logits = np.asarray(per_call_logits)
    depth, batch = per_call_logits.shape[:2]
    calls = np.full(batch, depth, dtype=np.int32)
    for row in range(batch):
        calls[row] = exit_call(per_call_logits[:, row], rule)
    chosen = per_call_logits[calls - 1, np.arange(batch)]
    return chosen, calls


def exit_call(row_logits: np.ndarray, rule: ExitRule) -> int:
    """1-based call at which one row exits, given its logits[L, labels] after every call."""
    depth = len(row_logits)
    streak, previous = 0, None
    for call in range(1, depth + 1):
        logits = row_logits[call - 1]
        if rule.kind == "patience":
            label = int(np.argmax(logits))
            streak = streak + 1 if label == previous else 0
            previous = label
            if streak >= rule.value:
                return call
        elif float(entropy(logits)) < rule.value:
            return call
    return depth


def call_distribution(calls: Sequence[int], depth: int) -> Dict[str, Any]:
    """Mean calls and how many rows exited at each call 1..depth (for evaluate, bench, reports)."""
    counts: List[int] = [0] * depth
    for call in calls:
        counts[int(call) - 1] += 1
    total = max(1, len(calls))
    return {
        "mean_calls": sum(int(c) for c in calls) / total,
        "max_calls": depth,
        "exits_per_call": {str(i + 1): n for i, n in enumerate(counts)},
    }


def describe_calls(summary: Dict[str, Any]) -> str:
    """'early exit patience=2: mean 2.41 of 4 layer calls; exits after call 1/2/3/4: 0/512/203/157'."""
    exits = summary["exits_per_call"]
    return (f"early exit {summary['rule']}: mean {summary['mean_calls']:.2f} of {summary['max_calls']} layer calls; "
            f"exits after call {'/'.join(exits)}: {'/'.join(str(n) for n in exits.values())}")
