"""Plain-text tables for conversion results and bundle inspection (no heavy imports)."""

from __future__ import annotations

from typing import Iterable, List, Sequence

from .runtime import describe_min_runtime


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines = [line.rstrip() for line in lines]
    return "\n".join(lines)


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def conversion_table(variants) -> str:
    """One row per variant: size, ratio to ideal, parity, agreement, time, where it went."""
    rows: List[list] = []
    for v in variants:
        if v.check is None:  # the converter itself failed: nothing to measure
            rows.append([v.quantize, v.graph, "-", "-", "-", "-", "FAIL", f"{v.convert_seconds:.1f}s", "not converted"])
            continue
        agreement = "-" if v.check.label_agreement is None else f"{v.check.label_agreement:.1%}"
        rows.append([
            v.quantize,
            v.graph,
            megabytes(v.inspection.file_bytes),
            f"{v.inspection.size_ratio:.3f}",
            f"{v.check.max_abs_diff:.2e}",
            agreement,
            "pass" if v.check.passed else ("FORCED" if v.bundled else "FAIL"),
            f"{v.convert_seconds:.1f}s",
            str(v.bundle_path) if v.bundled else "not bundled",
        ])
    headers = ["variant", "graph", "size", "x ideal", "max |diff|", "agreement", "check", "time", "bundle"]
    return format_table(headers, rows)


def shape_text(config: dict) -> str:
    """The encoder's shape in one line: calls of the shared layer, attention heads, FFN width."""
    if not config:
        return "-"
    heads = config.get("num_attention_heads")
    pruned = config.get("pruned_heads") or []
    head_text = f"{heads - len(pruned)} of {heads} heads (pruned: {', '.join(map(str, pruned))})" if pruned else f"{heads} heads"
    return (
        f"{config.get('num_hidden_layers')} calls of one shared layer, H={config.get('hidden_size')}, "
        f"{head_text}, FFN {config.get('intermediate_size')}, E={config.get('embedding_size')}"
    )


def inspection_text(manifest: dict) -> str:
    """Human summary of a bundle manifest: task, shapes, quantization, parity, size breakdown."""
    inspection = manifest.get("inspection", {})
    validation = manifest.get("validation", {})
    source = manifest.get("source", {})
    lines = [
        f"task:          {manifest.get('task')}  labels: {', '.join(manifest.get('labels') or []) or '-'}",
        f"graph:         {manifest.get('graph')}  max_seq_len: {manifest.get('max_seq_len')}",
        f"quantization:  {manifest.get('quantization', {}).get('mode')}  "
        f"min runtime: {describe_min_runtime(manifest.get('quantization', {}).get('min_runtime')) or '-'}",
        f"source:        {source.get('architecture')}, {source.get('parameters', 0):,} parameters",
        f"shape:         {shape_text(source.get('config') or {})}",
        f"validation:    {validation.get('message')} (reference: {validation.get('reference')})",
    ]
    early_exit = manifest.get("early_exit")
    if early_exit:
        lines.insert(2, f"early exit:    {early_exit['rule']}, default {early_exit['default']} (runtime input "
                        f"{early_exit['input']}), at most {early_exit.get('max_calls')} layer calls; "
                        f"calls run per row in output {early_exit['calls_output']}")
    if inspection:
        lines.append(
            f"model.tflite:  {megabytes(inspection.get('file_bytes', 0))}, {inspection.get('size_ratio', 0):.3f}x ideal, "
            f"{inspection.get('weight_buffers', '?')} weight buffers, {inspection.get('subgraphs', '?')} subgraphs"
        )
        parts = inspection.get("bytes_by_part", {})
        precisions = inspection.get("precision_by_part", {})  # bundles converted before it have none
        total = sum(parts.values()) or 1
        rows = [[part, megabytes(size), f"{size / total:.1%}"] + ([precisions.get(part, "-")] if precisions else [])
                for part, size in parts.items()]
        lines.append("")
        lines.append(format_table(["part", "bytes", "share"] + (["matrices stored as"] if precisions else []), rows))
    files = manifest.get("files", {})
    if files:
        lines.append("")
        lines.append(format_table(["file", "size", "sha256"], [[n, megabytes(r["bytes"]), r["sha256"][:16]] for n, r in files.items()]))
    return "\n".join(lines)
