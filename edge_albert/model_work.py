"""The work of one ALBERT model, from its Hugging Face config: MACs per sequence, weights stored.

Standard library only, device side: compress's plan sizes a student by it, the benchmarks
(benchmarks/make_targets.py, compress_table.py, compare.py) turn it into latency bounds, and
`bench --target` scales an albert-base budget to another shape by it.
"""

from __future__ import annotations

from typing import Dict


def albert_macs(config: dict, seq_len: int) -> Dict[str, int]:
    """Multiply-accumulates of one ALBERT sequence: dense layers (weights) and attention scores.

    Per token per layer: attention projections 4*H*A (A = H unless heads were pruned) and the
    FFN 2*H*I; attention scores and the weighted sum add 2*seq*A per token per layer (activation x activation, never int8 in
    dynamic-range models). Plus the embedding projection E*H per token and the pooler H*H.
    """
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    layers, embedding = int(config["num_hidden_layers"]), int(config["embedding_size"])
    # Head-pruned models (compress; manifest config "pruned_heads") attend over fewer head dimensions.
    heads = int(config.get("num_attention_heads") or 1)
    width = hidden * (heads - len(config.get("pruned_heads") or ())) // heads
    dense = seq_len * (layers * (4 * hidden * width + 2 * hidden * inter) + embedding * hidden) + hidden * hidden
    attention = layers * 2 * seq_len * seq_len * width
    return {"dense": dense, "attention": attention, "total": dense + attention}


def albert_parameters(config: dict) -> int:
    """Weights of the encoder (embeddings, projection, ONE shared layer, pooler), classifier head excluded.

    What a bundle stores and the interpreter holds, whatever the number of layer calls: the
    memory and load side of a model's cost, as the MACs are its latency side.
    """
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    embedding, vocab = int(config["embedding_size"]), int(config["vocab_size"])
    heads = int(config.get("num_attention_heads") or 1)
    width = hidden * (heads - len(config.get("pruned_heads") or ())) // heads
    positions, types = int(config.get("max_position_embeddings") or 512), int(config.get("type_vocab_size") or 2)
    embeddings = (vocab + positions + types) * embedding + 2 * embedding + embedding * hidden + hidden
    attention = 3 * (hidden * width + width) + width * hidden + hidden + 2 * hidden
    ffn = hidden * inter + inter + inter * hidden + hidden + 2 * hidden
    return embeddings + attention + ffn + hidden * hidden + hidden
