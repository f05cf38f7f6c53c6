"""Targets and budgets: what a kind of machine must reach, read from TOML, checked against a measurement.

Budgets live in edge_albert/targets/*.toml; a target's budgets are checked only on the kind of
machine they are for, so that no ARM figure is ever produced anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..bundle import load_bundle
from ..device_options import DEFAULT_BENCH_BATCH, DEFAULT_SEQ_LENS
from ..errors import BenchError
from .machine import machine_info
from .measure import BenchResult, PathLike, _model_summary, run_benchmark
from .scaling import BudgetScale, budget_scale

TARGETS_DIR = Path(__file__).resolve().parents[1] / "targets"  # package data: works after pip install on a Pi
BUDGET_EXCEEDED_EXIT = 3  # distinct from 1 (could not measure) so scripts can tell them apart


# -- budgets ---------------------------------------------------------------------------------
BUDGET_METRICS = ("p50_ms", "p99_ms", "peak_rss_mb", "load_ms")


@dataclass
class Budget:
    quantization: str
    seq_len: int
    limits: Dict[str, float]  # metric -> limit
    sources: Dict[str, str]  # metric -> where the number comes from


@dataclass
class Target:
    name: str
    description: str
    architectures: List[str]
    threads: Optional[int]
    device_model_contains: Optional[str]
    android: bool
    model: Dict[str, int]
    budgets: List[Budget]
    path: Path
    scale: Optional[BudgetScale] = None  # set by target_for_bundle for a bundle of another shape than [model]

    @property
    def is_arm(self) -> bool:
        return any(a.lower() in ("aarch64", "arm64", "armv7l", "armv8l") for a in self.architectures)


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # lazy: Python >= 3.11 only; tomli before that, an optional install
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]  # lazy: an optional install, before 3.11 only
        except ImportError:
            raise BenchError("reading a target needs Python >= 3.11 (tomllib) or `pip install tomli`") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise BenchError(f"cannot read target {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path} is not valid TOML: {exc}") from None


def known_targets() -> List[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml")) if TARGETS_DIR.is_dir() else []


def load_target(name_or_path: PathLike) -> Target:
    """A target by name (edge_albert/targets/NAME.toml, shipped with the package) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGETS_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            where = f"known: {', '.join(known_targets())}" if known_targets() else (
                f"{TARGETS_DIR} holds no targets; pass the path to a target .toml")
            raise BenchError(f"unknown target {name_or_path!r}; {where}")
    data = _load_toml(path)
    meta = data.get("target") or {}
    budgets = []
    for index, entry in enumerate(data.get("budget") or []):
        try:
            quantization, seq_len = str(entry["quantization"]), int(entry["seq_len"])
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"{path}: budget #{index + 1} needs quantization and seq_len") from None
        limits = {m: float(entry[m]) for m in BUDGET_METRICS if m in entry}
        missing = [m for m in limits if not str(entry.get(f"{m}_source", "")).strip()]
        if missing:
            raise BenchError(f"{path}: budget {quantization} seq {seq_len} gives {', '.join(missing)} without "
                             f"a source ({', '.join(m + '_source' for m in missing)}): say where each number comes from")
        budgets.append(Budget(quantization, seq_len, limits, {m: str(entry[f"{m}_source"]) for m in limits}))
    if not meta.get("architectures"):
        raise BenchError(f"{path}: [target] needs architectures = [...] (the machines its budgets are for)")
    return Target(
        name=str(meta.get("name", path.stem)), description=str(meta.get("description", "")),
        architectures=[str(a) for a in meta["architectures"]], threads=meta.get("threads"),
        device_model_contains=meta.get("device_model_contains"), android=bool(meta.get("android", False)),
        model={k: int(v) for k, v in (data.get("model") or {}).items()}, budgets=budgets, path=path)


def check_target_applies(target: Target, machine: Optional[dict] = None, model: Optional[dict] = None,
                         batch: int = 1) -> List[str]:
    """Refuse (BenchError) to check `target` here when this is not its kind of machine or model;
    return warnings for what cannot be confirmed. Called before measuring anything."""
    machine = machine or machine_info()
    arch = str(machine.get("architecture") or "")
    allowed = [a.lower() for a in target.architectures]
    if arch.lower() not in allowed:
        kind = "an ARM device" if target.is_arm else "a machine"
        raise BenchError(
            f"target {target.name} is for {kind} ({'/'.join(target.architectures)}); this machine is {arch or 'unknown'}. "
            f"Its budgets are checked only on that device: a latency measured here says nothing about it. "
            f"Run `edge-albert bench BUNDLE --target {target.name}` on the device, or bench without {{target}} here",
            options=("target",))
    warnings = []
    found = machine.get("device_model")
    if target.device_model_contains:
        if found and target.device_model_contains.lower() not in found.lower():
            raise BenchError(f"target {target.name} is for a {target.device_model_contains}; this device is {found!r}")
        if not found:
            warnings.append(f"cannot confirm this is a {target.device_model_contains} (no device-tree model)")
    if target.android and not machine.get("android"):
        raise BenchError(f"target {target.name} is for Android; this machine is not running Android")
    if batch != 1:
        raise BenchError(f"target {target.name} budgets are per sequence at batch 1; run with {{batch}} 1",
                         options=("batch",))
    if model is not None:  # another shape is scaled (bench/scaling.py); refused only where it cannot be
        _scale_for(target, model)
    return warnings


def _scale_for(target: Target, model: dict, seq_lens: Sequence[int] = ()) -> Optional[BudgetScale]:
    return budget_scale(target.name, target.path, target.model, model.get("config") or {},
                        _budget_quantization(model), seq_lens)


def _budget_quantization(model: dict) -> str:
    return str(model.get("quantization") or "")


def check_budgets(result: BenchResult, target: Target) -> dict:
    """Compare every measured length with its budget; the result says what was exceeded, by how much."""
    quantization = _budget_quantization(result.model)
    scale = target.scale
    checked, exceeded, unscaled = [], [], []
    for entry in result.results:
        budget = next((b for b in target.budgets if b.quantization == quantization and b.seq_len == entry.seq_len), None)
        if budget is None:
            continue
        measured = {"p50_ms": entry.latency.p50_ms, "p99_ms": entry.latency.p99_ms,
                    "peak_rss_mb": entry.peak_rss_mb, "load_ms": result.load_ms}
        for metric, limit in budget.limits.items():
            value = measured[metric]
            source = budget.sources[metric]
            if scale is not None:
                base, limit = limit, scale.limit(metric, limit, entry.seq_len, result.rss_before_load_mb)
                if limit is None:
                    unscaled.append({"seq_len": entry.seq_len, "metric": metric, "reason": (
                        f"this process held {_mb_text(result.rss_before_load_mb)} before loading, nothing of the "
                        f"albert-base budget {base:g} MB is left to scale")})
                    continue
                source = (f"{scale.how(metric, entry.seq_len, result.rss_before_load_mb)} of the albert-base "
                          f"budget {base:g}; that budget: {source}")
            if value is None:
                continue
            row = {"seq_len": entry.seq_len, "quantization": quantization, "metric": metric, "measured": value,
                   "budget": limit, "ok": value <= limit, "source": source}
            if scale is not None:
                row["albert_base_budget"] = base
            checked.append(row)
            if not row["ok"]:
                exceeded.append(row)
    if not checked:
        lengths = ", ".join(str(r.seq_len) for r in result.results)
        have = sorted({(b.quantization, b.seq_len) for b in target.budgets})
        raise BenchError(f"target {target.name} has no budget for {quantization or 'this quantization'} at seq "
                         f"{lengths}; it has {', '.join(f'{q}@{n}' for q, n in have)}")
    check = {"target": target.name, "file": str(target.path), "checked": checked, "exceeded": exceeded,
             "passed": not exceeded}
    if scale is not None:
        check["scaling"] = dict(scale.to_dict(), summary=scale.summary(), not_checked=unscaled)
    return check


def _mb_text(value: Optional[float]) -> str:
    return "an unknown RSS" if value is None else f"{value:.1f} MB"


def exceeded_lines(check: dict) -> List[str]:
    """One line per exceeded budget: what, measured, budget, ratio."""
    lines = []
    for row in check["exceeded"]:
        unit = "MB" if row["metric"].endswith("_mb") else "ms"
        lines.append(f"{row['quantization']} seq {row['seq_len']} {row['metric']}: {row['measured']:.1f} {unit} > "
                     f"budget {row['budget']:.1f} {unit} ({row['measured'] / row['budget']:.2f}x)")
    return lines


def run_benchmark_for_target(bundle_path: PathLike, target: Optional[str], warn: Callable[[str], None],
                             seq_lens: Sequence[int] = DEFAULT_SEQ_LENS, batch: int = DEFAULT_BENCH_BATCH,
                             threads: Optional[int] = None, **options) -> BenchResult:
    """run_benchmark; with a `target`, first refuse one that does not apply here (its warnings go to
    `warn`), run with its thread count unless `threads` is given, then check its budgets
    (`result.budget_check`). `options` are run_benchmark's.
    """
    budget_target = None
    if target:
        budget_target, warnings = target_for_bundle(target, bundle_path, batch=batch, seq_lens=seq_lens)
        for warning in warnings:
            warn(warning)
        threads = threads or budget_target.threads
    result = run_benchmark(bundle_path, seq_lens=seq_lens, batch=batch, threads=threads, target=target, **options)
    if budget_target is not None:
        result.budget_check = check_budgets(result, budget_target)
    return result


def target_for_bundle(name_or_path: PathLike, bundle_path: PathLike, batch: int = 1,
                      seq_lens: Optional[Sequence[int]] = None) -> Tuple[Target, List[str]]:
    """Load a target and confirm, before anything is measured, that this machine and bundle are its
    kind and that it has a budget for the bundle's quantization at one of `seq_lens`."""
    target = load_target(name_or_path)
    bundle = load_bundle(bundle_path, verify=False)  # run_benchmark verifies when it loads
    model = _model_summary(bundle)
    warnings = check_target_applies(target, machine_info(), model, batch=batch)
    target.scale = _scale_for(target, model, seq_lens or ())
    quantization = _budget_quantization(model)
    if seq_lens is not None and not any(b.quantization == quantization and b.seq_len in seq_lens for b in target.budgets):
        have = sorted({(b.quantization, b.seq_len) for b in target.budgets})
        raise BenchError(f"target {target.name} has no budget for {quantization} at seq {', '.join(map(str, seq_lens))}; "
                         f"it has {', '.join(f'{q}@{n}' for q, n in have)}")
    return target, warnings
