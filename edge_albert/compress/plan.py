"""What a student keeps of its teacher: calls of the shared layer, attention heads, FFN width.

Validated against the teacher's config before any data is read or any training starts, so an
impossible plan costs one error line, not an hour of CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional

from ..errors import CompressionError
from ..hf.macs import albert_macs


@dataclass(frozen=True)
class CompressionPlan:
    """The student's shape. `heads` counts the shared layer's heads it keeps (same at every call)."""

    num_hidden_layers: int
    heads: int
    intermediate_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def make_plan(
    teacher_config: dict,
    layers: Optional[int] = None,
    heads: Optional[int] = None,
    remove_heads: Optional[int] = None,
    ffn: Optional[int] = None,
    already_pruned: int = 0,
) -> CompressionPlan:
    """Build and check a plan; unspecified parts keep the teacher's value.

    `heads` (kept) and `remove_heads` (removed) are two ways to say the same thing; give one.
    `already_pruned` counts heads the teacher itself had removed (a student compressed again).
    """
    t_layers = int(teacher_config["num_hidden_layers"])
    t_heads = int(teacher_config["num_attention_heads"])
    t_ffn = int(teacher_config["intermediate_size"])
    active = t_heads - already_pruned
    if heads is not None and remove_heads is not None:
        raise CompressionError("give either the heads to keep or the heads to remove, not both")
    if layers is None:
        layers = t_layers
    if not 1 <= layers <= t_layers:
        raise CompressionError(
            f"depth {layers}: the student must call the shared layer at least once and at most as often as "
            f"the teacher ({t_layers})"
        )
    if remove_heads is not None:
        if remove_heads < 0:
            raise CompressionError(f"cannot remove {remove_heads} heads")
        if remove_heads >= active:
            raise CompressionError(
                f"removing {remove_heads} attention heads, but the teacher's shared layer has {active}"
                f"{' active' if already_pruned else ''}; at least one must stay"
            )
        heads = active - remove_heads
    if heads is None:
        heads = active
    if not 1 <= heads <= active:
        raise CompressionError(f"keeping {heads} attention heads: choose 1..{active} (the teacher has {active})")
    if ffn is None:
        ffn = t_ffn
    if not 1 <= ffn <= t_ffn:
        raise CompressionError(f"FFN width {ffn}: choose 1..{t_ffn} (the teacher's intermediate_size)")
    return CompressionPlan(num_hidden_layers=layers, heads=heads, intermediate_size=ffn)


def student_config_dict(teacher_config: dict, plan: CompressionPlan, pruned_heads) -> dict:
    """The fields of the teacher's config that the plan changes, in the shape albert_macs reads."""
    config = dict(teacher_config)
    config.update(num_hidden_layers=plan.num_hidden_layers, intermediate_size=plan.intermediate_size,
                  pruned_heads=list(pruned_heads))
    return config


def compute_ratio(teacher_config: dict, plan: CompressionPlan, seq_len: int = 128) -> Dict[str, float]:
    """Student / teacher multiply-accumulates at `seq_len` (the compute model behind the latency)."""
    removed = int(teacher_config["num_attention_heads"]) - plan.heads
    student = student_config_dict(teacher_config, plan, range(removed))
    teacher = dict(teacher_config, pruned_heads=list(teacher_config.get("pruned_heads") or []))
    return {
        "seq_len": seq_len,
        "teacher_macs": albert_macs(teacher, seq_len)["total"],
        "student_macs": albert_macs(student, seq_len)["total"],
        "ratio": albert_macs(student, seq_len)["total"] / albert_macs(teacher, seq_len)["total"],
    }


def plan_for_speedup(teacher_config: dict, speedup: float, already_pruned: int = 0, seq_len: int = 128) -> CompressionPlan:
    """A plan whose compute (albert_macs at `seq_len`) is at most 1/`speedup` of the teacher's.

    Depth is kept before width, down to half width: at equal compute 3 calls / 2 heads / FFN 512
    beat 2 / 2 / 1024 on SST-2 (examples/sst2-albert-student/TRAINING.md). So the student has the
    most calls at which half of the heads and half of the FFN fit the budget; at that depth heads
    and FFN (in steps of 1/16 of the teacher's) shrink together: the largest smaller fraction of
    the two within the budget, then the most compute, then more heads. Only when one call at half
    width is over budget do widths go below half.
    """
    if not speedup > 1:
        raise CompressionError(f"{{target_speedup}} must be above 1 (a student slower than its teacher is no target), "
                               f"not {speedup}", options=("target_speedup",))
    t_layers, t_ffn = int(teacher_config["num_hidden_layers"]), int(teacher_config["intermediate_size"])
    active = int(teacher_config["num_attention_heads"]) - already_pruned
    step = max(1, t_ffn // 16)
    widths = sorted({*range(step, t_ffn + 1, step), t_ffn})
    budget = 1.0 / speedup

    def best(layers: int, min_heads: int, min_ffn: int) -> Optional[CompressionPlan]:
        fits = [CompressionPlan(layers, heads, ffn) for heads in range(min_heads, active + 1) for ffn in widths
                if ffn >= min_ffn]
        fits = [p for p in fits if compute_ratio(teacher_config, p, seq_len)["ratio"] <= budget]
        return max(fits, key=lambda p: (min(p.heads / active, p.intermediate_size / t_ffn),
                                        compute_ratio(teacher_config, p, seq_len)["ratio"], p.heads), default=None)

    for layers in range(t_layers, 0, -1):
        plan = best(layers, (active + 1) // 2, t_ffn / 2)
        if plan:
            return plan
    plan = best(1, 1, 0)
    if plan is None:
        smallest = compute_ratio(teacher_config, CompressionPlan(1, 1, widths[0]), seq_len)["ratio"]
        raise CompressionError(f"{{target_speedup}} {speedup}: the smallest student (1 call, 1 head, FFN {widths[0]}) "
                               f"needs only {1 / smallest:.1f}x less compute than the teacher (albert_macs at "
                               f"{seq_len} tokens)", options=("target_speedup",))
    return plan


def choose_plan(teacher_config: dict, layers: Optional[int] = None, heads: Optional[int] = None,
                remove_heads: Optional[int] = None, ffn: Optional[int] = None, target_speedup: Optional[float] = None,
                already_pruned: int = 0) -> CompressionPlan:
    """The plan from explicit numbers (make_plan) or from a compute target (plan_for_speedup), never both."""
    if target_speedup is None:
        return make_plan(teacher_config, layers, heads, remove_heads, ffn, already_pruned)
    given = [name for name, value in (("layers", layers), ("heads", heads), ("remove_heads", remove_heads), ("ffn", ffn))
             if value is not None]
    if given:
        raise CompressionError("{target_speedup} chooses the calls, heads and FFN width itself; give it or "
                               + ", ".join("{%s}" % name for name in given) + ", not both",
                               options=("target_speedup", *given))
    return plan_for_speedup(teacher_config, target_speedup, already_pruned)
