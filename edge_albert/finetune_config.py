"""finetune's settings, apart from the training code so the CLI can show their defaults cheaply.

Only the standard library: `edge-albert --help` reads these defaults without loading finetune.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class FinetuneConfig:
    """Model shape and recipe. The defaults are the ones behind examples/sst2-albert."""

    vocab_size: int = 8000
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu_new"
    max_position_embeddings: int = 128
    max_length: int = 64
    dropout: float = 0.1
    classifier_dropout: float = 0.1
    epochs: float = 3.0
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_epochs: float = 0.0  # masked-LM warm-up on the same texts before the classifier
    mlm_learning_rate: float = 1e-3
    token_mask_prob: float = 0.0  # replace this share of input pieces by [MASK] while fine-tuning
    seed: int = 0
    threads: Optional[int] = None
    save_dtype: str = "float16"  # storage only; config.json says float32 and loaders cast up
    eval_every_epoch: bool = True
    # Early exit: train the one classifier after every call of the shared layer, losses weighted by
    # depth (PABEE), so every depth predicts well; the checkpoint gains no parameters.
    multi_depth: bool = False
    # Continue from this checkpoint (its tokenizer, shape and weights) instead of training from scratch.
    init_from: Optional[str] = None
