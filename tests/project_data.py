"""Where the repository keeps the data its tests, demo and benchmarks read: defined once, here.

The files live in `data/` at the repository root (sources, licences and checksums in
data/README.md), so a clone works with nothing beside it.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
ALBERT_SPIECE = DATA_DIR / "albert-base-v2" / "spiece.model"
SST2_TRAIN = DATA_DIR / "glue-sst2" / "train.tsv"
SST2_DEV = DATA_DIR / "glue-sst2" / "dev.tsv"
SQUAD_SMALL = DATA_DIR / "squad-dev-v2.0-small.json"


def data_file(relative: str) -> Path:
    """A file under data/, or a FileNotFoundError that says the checkout is incomplete."""
    path = DATA_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it is part of the repository (data/README.md)")
    return path
