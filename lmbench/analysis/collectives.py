"""The collective-bandwidth table, from stored records only (results/collectives.py defines every number)."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from lmbench.results.collectives import COLLECTIVE_OPS, CollectiveRecord, bus_factor

COLUMNS = ("op", "requested_bytes", "bytes", "count", "status", "time_ms", "rank_mean_ms", "algbw_gbps",
           "busbw_gbps", "bus_factor", "steps")


def ranks(n: int) -> str:
    return f"{n} rank" + ("s" if n != 1 else "")


class Job(NamedTuple):
    """What makes measurements comparable: one table, plot and set of findings each."""

    dtype: str
    world_size: int
    backend: str
    device_type: str

    @property
    def title(self) -> str:
        return f"{self.dtype}, {ranks(self.world_size)}, {self.backend} on {self.device_type}"

    @property
    def slug(self) -> str:
        return f"{self.dtype}-{self.world_size}ranks-{self.backend}-{self.device_type}"


def jobs(records: list[CollectiveRecord]) -> dict[Job, list[CollectiveRecord]]:
    """By job, in the order the jobs were first stored: the latest record of each collective and size (one measured
    again, with other step counts too, replaces the earlier one in the table)."""
    grouped: dict[Job, dict[tuple[str, int], CollectiveRecord]] = {}
    for record in records:
        job = Job(record.dtype, record.world_size, record.backend, record.device_type)
        latest = grouped.setdefault(job, {})
        latest.pop((record.op, record.requested_bytes), None)
        latest[(record.op, record.requested_bytes)] = record
    return {job: list(latest.values()) for job, latest in grouped.items()}


def collectives_table(records: list[CollectiveRecord]) -> pd.DataFrame:
    """One row per collective and size (collectives in COLLECTIVE_OPS order, sizes ascending): size asked for and
    measured (bytes, elements), status, the collective's time (slowest rank's mean step) and the ranks' mean,
    algorithm and bus bandwidth in GB/s with the factor between them; NaN where the size ran out of memory."""
    rows = []
    for r in records:
        row = {"op": r.op, "requested_bytes": r.requested_bytes, "bytes": r.bytes, "count": r.count,
               "status": r.status, "bus_factor": bus_factor(r.op, r.world_size), "steps": r.steps}
        if r.ok:
            row.update(time_ms=r.time_ms, rank_mean_ms=r.rank_mean_ms, algbw_gbps=r.algbw_gbps,
                       busbw_gbps=r.busbw_gbps)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    order = {op: i for i, op in enumerate(COLLECTIVE_OPS)}
    table = table.sort_values(["op", "requested_bytes"], key=lambda c: c.map(order) if c.name == "op" else c)
    return table.reset_index(drop=True)
