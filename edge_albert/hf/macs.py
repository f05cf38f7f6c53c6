"""The MAC count of one ALBERT sequence: it lives in edge_albert.model_work (standard library,
device side) so that `bench` can scale a target's budgets on a Pi; re-exported here for compress
and the benchmarks."""

from ..model_work import albert_macs, albert_parameters

__all__ = ["albert_macs", "albert_parameters"]
