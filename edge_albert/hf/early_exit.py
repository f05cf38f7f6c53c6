"""The PyTorch reference for early exit: a transformers ALBERT classifier run one layer call at a time.

`per_call_logits` applies the model's own pooler and classifier after each call of the shared
layer (training uses it for the multi-depth loss, with dropout); `reference_early_exit` applies
an exit rule to those logits (edge_albert.early_exit.simulate), which is what the converter
verifies every early-exit bundle against. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..early_exit import ExitRule, simulate
from ..errors import CheckpointError
from .weights import CLASSIFIER, EMBEDDING_PROJECTION, POOLER, SHARED_LAYER_PATH


def per_call_logits(model, input_ids, attention_mask=None, token_type_ids=None):
    """logits[L, batch, labels] after each of the L calls of `model`'s shared layer.

    `model` is an AlbertForSequenceClassification with one layer group of one layer (the
    project's supported ALBERT); the last entry equals `model(...).logits`. Dropout applies
    exactly as in the model's forward, so this is also the training forward.
    """
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    albert = model.albert
    config = albert.config
    if config.num_hidden_groups != 1 or config.inner_group_num != 1 or albert.pooler is None:
        raise CheckpointError("per-call logits need one shared layer (num_hidden_groups = inner_group_num = 1) and a pooler")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    embedded = albert.embeddings(input_ids, token_type_ids=token_type_ids)
    mask = create_bidirectional_mask(config=config, inputs_embeds=embedded, attention_mask=attention_mask)
    hidden = albert.get_submodule(EMBEDDING_PROJECTION.name)(embedded)
    layer, pooler = albert.get_submodule(SHARED_LAYER_PATH), albert.get_submodule(POOLER.name)
    classifier = model.get_submodule(CLASSIFIER.name)
    logits = []
    for _ in range(config.num_hidden_layers):
        hidden = layer(hidden, mask)
        pooled = albert.pooler_activation(pooler(hidden[:, 0]))
        logits.append(classifier(model.dropout(pooled)))
    return torch.stack(logits)


def depth_weights(depth: int) -> Sequence[float]:
    """Loss weight of each call, proportional to its depth (PABEE), summing to 1."""
    total = depth * (depth + 1) / 2
    return [(call + 1) / total for call in range(depth)]


def multi_depth_loss(model, labels, **inputs):
    """Cross-entropy of the classifier after every call, weighted by depth: trains every depth to predict."""
    import torch

    logits = per_call_logits(model, **inputs)
    weights = depth_weights(logits.shape[0])
    losses = [torch.nn.functional.cross_entropy(call_logits, labels) for call_logits in logits]
    return sum(w * loss for w, loss in zip(weights, losses))


def reference_early_exit(
    model, rule: ExitRule, input_ids, attention_mask=None, token_type_ids=None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exit logits[batch, labels], calls[batch], all per-call logits[L, batch, labels]) in float32, no grad."""
    import torch

    model.eval()
    as_tensor = lambda x: None if x is None else torch.as_tensor(np.asarray(x), dtype=torch.long)  # noqa: E731
    with torch.no_grad():
        logits = per_call_logits(model, as_tensor(input_ids), as_tensor(attention_mask), as_tensor(token_type_ids))
    logits = logits.float().numpy()
    chosen, calls = simulate(logits, rule)
    return chosen, calls, logits
