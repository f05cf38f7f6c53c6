"""Build the student from the teacher: fewer calls, the important heads and FFN neurons.

Depth and FFN width are ordinary ALBERT config fields, so those tensors really shrink. Removed
heads cannot be expressed in transformers 5 (no `pruned_heads`/`prune_heads`; head size is
hidden_size / num_attention_heads), so they are zeroed in place and listed in config.json under
PRUNED_HEADS_KEY; see edge_albert/hf/checkpoint.py, which slices them out when converting.
"""

from __future__ import annotations

import copy
from typing import List, Sequence

from ..hf.checkpoint import PRUNED_HEADS_KEY
from ..hf.weights import HEAD_AXES, NEURON_AXES, shared_layer_name
from .importance import Importance
from .plan import CompressionPlan


def pruned_heads_of(config) -> List[int]:
    return sorted(getattr(config, PRUNED_HEADS_KEY, None) or [])


def choose(importance: Importance, plan: CompressionPlan, already_pruned: Sequence[int]):
    """The heads to remove (least important; heads the teacher had already removed first) and the
    FFN neurons to keep (most important, in their original order)."""
    already = set(already_pruned)
    num_heads = len(importance.heads)
    by_score = sorted(range(num_heads), key=lambda h: (h not in already, importance.heads[h], h))
    removed_heads = sorted(by_score[: num_heads - plan.heads])
    neurons = sorted(range(len(importance.neurons)), key=lambda n: (-importance.neurons[n], n))
    kept_neurons = sorted(neurons[: plan.intermediate_size])
    return removed_heads, kept_neurons


def build_student(teacher, plan: CompressionPlan, removed_heads: Sequence[int], kept_neurons: Sequence[int]):
    """A new AlbertForSequenceClassification holding the teacher's weights, cut to the plan."""
    import torch
    from transformers import AlbertForSequenceClassification

    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = plan.num_hidden_layers
    config.intermediate_size = plan.intermediate_size
    setattr(config, PRUNED_HEADS_KEY, [int(h) for h in removed_heads])
    student = AlbertForSequenceClassification(config)
    index = torch.as_tensor(list(kept_neurons), dtype=torch.long)
    state = {name: tensor.detach().clone() for name, tensor in teacher.state_dict().items()}
    for name, axis in NEURON_AXES.items():
        key = shared_layer_name(name)
        state[key] = state[key].index_select(axis, index)
    student.load_state_dict(state, strict=True)
    zero_pruned_heads(student)
    return student


def head_masks(model):
    """{parameter: 0/1 mask} for the pruned heads' slices along weights.HEAD_AXES (query/key/value
    rows, attention.dense columns)."""
    import torch

    config = model.config
    pruned = pruned_heads_of(config)
    size = config.hidden_size // config.num_attention_heads
    masks = {}
    for name, axis in HEAD_AXES.items():
        parameter = model.get_parameter(shared_layer_name(name))
        mask = torch.ones_like(parameter)
        for head in pruned:
            mask.narrow(axis, head * size, size).zero_()
        masks[parameter] = mask
    return masks


def zero_pruned_heads(model) -> None:
    import torch

    with torch.no_grad():
        for parameter, mask in head_masks(model).items():
            parameter.mul_(mask)


def freeze_pruned_heads(model) -> list:
    """Keep pruned heads at exactly zero while training: their gradients are masked to zero, and
    AdamW moves a zero weight with zero gradient by exactly zero (weight decay of 0 is 0)."""
    handles = []
    for parameter, mask in head_masks(model).items():
        handles.append(parameter.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


def pruned_heads_are_zero(model) -> bool:
    return all(not (parameter * (1 - mask)).any() for parameter, mask in head_masks(model).items())
