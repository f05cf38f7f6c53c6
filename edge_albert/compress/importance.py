"""Which attention heads and FFN neurons of the shared layer matter, measured on task data.

Heads: Michel et al. (2019), "Are Sixteen Heads Really Better than One?": a gate xi_h multiplies
head h's output and its importance is the accumulated |dL/dxi_h| over task batches (as in
transformers' old bertology example: absolute gradient per batch, summed). Neurons: the same
first-order Taylor score for a gate on each intermediate FFN activation (Molchanov et al. 2017).
ALBERT shares one layer across calls, so one gate per head/neuron serves every call and the
gradient sums over calls: the pruned heads are the same at every call by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List

from ..hf.weights import ATTENTION_OUTPUT, FFN_OUTPUT, shared_layer_name

IMPORTANCE_METHOD = (
    "gradient of the task loss (cross-entropy on the training labels) w.r.t. a gate on each attention "
    "head's output (Michel et al. 2019) and on each FFN intermediate neuron (first-order Taylor), "
    "|per-batch gradient| summed over batches, measured on the model at the student's depth"
)


@dataclass
class Importance:
    heads: List[float]
    neurons: List[float]
    batches: int
    examples: int

    def to_dict(self) -> dict:
        return {"heads": self.heads, "neurons_summary": _summary(self.neurons), "batches": self.batches,
                "examples": self.examples, "method": IMPORTANCE_METHOD}


def shared_layer(model):
    """The one ALBERT layer every call runs (num_hidden_groups = inner_group_num = 1)."""
    return model.get_submodule(shared_layer_name())


def measure_importance(model, batches: Iterable[dict]) -> Importance:
    """Accumulate |dL/dgate| for every head and FFN neuron over `batches` (dicts with labels)."""
    import torch

    config = model.config
    num_heads = config.num_attention_heads
    head_size = config.hidden_size // num_heads
    head_gate = torch.ones(num_heads, requires_grad=True)
    neuron_gate = torch.ones(config.intermediate_size, requires_grad=True)

    def gate_heads(module, args):
        context = args[0]
        shape = context.shape
        gated = context.view(*shape[:-1], num_heads, head_size) * head_gate.view(num_heads, 1)
        return (gated.view(shape), *args[1:])

    def gate_neurons(module, args):
        return (args[0] * neuron_gate, *args[1:])

    layer = shared_layer(model)
    # the gates sit on the inputs of the modules that read the heads and the neurons (weights.py)
    hooks = [layer.get_submodule(ATTENTION_OUTPUT.name).register_forward_pre_hook(gate_heads),
             layer.get_submodule(FFN_OUTPUT.name).register_forward_pre_hook(gate_neurons)]
    was_training = model.training
    model.eval()  # no dropout: the score belongs to the model as it predicts
    head_scores = torch.zeros(num_heads)
    neuron_scores = torch.zeros(config.intermediate_size)
    count = examples = 0
    try:
        for batch in batches:
            loss = model(**batch).loss
            head_grad, neuron_grad = torch.autograd.grad(loss, [head_gate, neuron_gate])
            head_scores += head_grad.abs()
            neuron_scores += neuron_grad.abs()
            count += 1
            examples += int(batch["labels"].shape[0])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return Importance(heads=head_scores.tolist(), neurons=neuron_scores.tolist(), batches=count, examples=examples)


def _summary(values: List[float]) -> dict:
    ordered = sorted(values)
    return {"count": len(values), "min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}
