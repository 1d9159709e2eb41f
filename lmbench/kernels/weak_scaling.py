"""Weak scaling explained: an N-rank job's step against the one-GPU run of the same per-rank configuration, the time
lost split into exposed communication (kernels/communication.py) and the rest, so the parts add up exactly.

- t1: the one-GPU record's mean measured step (sum of its phases); tN: the N-rank record's, whose every step is the
  slowest rank's (results/ranks.py), so tN is the job's step time;
- efficiency = t1 / tN; lost = tN - t1 = exposed + rest;
- exposed: one rank's exposed communication per measured step from its trace: unless asked otherwise, the rank whose
  collectives ran alone the least. A collective's kernel runs from its launch on this rank until every rank has
  joined and the data has moved, so a rank that reaches it early shows the wait as exposed time too; the least
  exposed rank is the one that waited least, and the most exposed rank's figure is shown beside it;
- rest: lost - exposed: everything else that slowed the step (collective launches and waits on the host, memory
  traffic from the other rank, a slower GPU, a changed schedule). Negative when the traced steps exposed more
  communication than the timed steps lost: traced steps run slower than timed ones.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmbench.analysis.findings.finding import Finding
from lmbench.render.markdown import finding_line, titled_table
from lmbench.results.ranks import one_gpu_of
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

TOPIC = "weak scaling"
TITLES = {"world_size": "Ranks", "one_gpu_ms": "1 GPU (ms)", "n_gpu_ms": "N ranks (ms)", "efficiency_pct":
          "Efficiency (%)", "lost_ms": "Lost (ms)", "exposed_comm_ms": "Exposed comm (ms)", "other_ms": "Rest (ms)",
          "exposed_share_pct": "Exposed share of lost (%)", "most_exposed_ms": "Most exposed rank's (ms)"}


def decomposition(one_gpu_ms: float, n_gpu_ms: float, exposed_ms: float, world_size: int, rank: int = 0,
                  most_exposed_ms: float | None = None) -> pd.DataFrame:
    """One row: the step times, efficiency, the time lost and its parts (exposed_comm_ms + other_ms == lost_ms), and
    the most exposed rank's exposed time for comparison (`exposed_ms` when not given)."""
    lost = n_gpu_ms - one_gpu_ms
    return pd.DataFrame([{
        "world_size": world_size, "rank": rank, "one_gpu_ms": one_gpu_ms, "n_gpu_ms": n_gpu_ms,
        "efficiency_pct": 100 * one_gpu_ms / n_gpu_ms, "lost_ms": lost, "exposed_comm_ms": exposed_ms,
        "other_ms": lost - exposed_ms, "exposed_share_pct": 100 * exposed_ms / lost if lost > 0 else float("nan"),
        "most_exposed_ms": exposed_ms if most_exposed_ms is None else most_exposed_ms}])


def from_records(one_gpu: Record, job: Record, communication: pd.DataFrame, rank: int | None = None) -> pd.DataFrame:
    """The decomposition of `job` against `one_gpu`, with the exposed communication of `rank` (default: the rank whose
    collectives ran alone the least, see the module) over the whole step."""
    exposed = communication[communication["phase"] == "step"].set_index("rank")["exposed_ms"]
    rank = int(exposed.idxmin()) if rank is None else rank
    return decomposition(one_gpu.mean_ms(), job.mean_ms(), float(exposed[rank]), job.world_size, rank,
                         float(exposed.max()))


def finding(row: pd.Series) -> Finding:
    """The decomposition as a claim: efficiency, then where the lost time went, only as far as the numbers say."""
    numbers = {k: float(row[k]) for k in ("one_gpu_ms", "n_gpu_ms", "efficiency_pct", "lost_ms", "exposed_comm_ms",
                                          "other_ms", "most_exposed_ms")}
    claim = (f"{int(row['world_size'])} ranks take {row['n_gpu_ms']:.2f} ms per step against {row['one_gpu_ms']:.2f} ms "
             f"on one GPU: {row['efficiency_pct']:.1f}% weak-scaling efficiency")
    if row["lost_ms"] > 0:
        claim += (f"; of the {row['lost_ms']:.2f} ms lost, {row['exposed_comm_ms']:.2f} ms is communication no "
                  f"computation hides (rank {int(row['rank'])}'s trace) and {row['other_ms']:.2f} ms the rest")
        if row["most_exposed_ms"] > row["exposed_comm_ms"]:
            claim += (f". Rank {int(row['rank'])}'s collectives ran alone the least; another rank's ran alone "
                      f"{row['most_exposed_ms']:.2f} ms, waits for the other ranks included")
    else:
        claim += f"; no time is lost ({row['lost_ms']:.2f} ms)"
    return Finding(TOPIC, claim, numbers, "mean measured step of each record, the job's step being the slowest "
                   "rank's; exposed communication from the profiled steps")


def lines(table: pd.DataFrame) -> list[str]:
    """The Weak scaling section of a kernel report (one row) or of a run summary (a row per job, its `capture`)."""
    titles = {"capture": "Job", **TITLES} if "capture" in table else TITLES
    found = [line for _, row in table.iterrows() for line in (finding_line(finding(row)), "")]
    return ["## Weak scaling (per measured step)", "", titled_table(table, titles), "", *found]


def report_table(run_dir: Path, job: Record | None, communication: pd.DataFrame) -> pd.DataFrame:
    """The decomposition for a kernel report: empty unless the capture's record is a multi-rank job's and the run
    directory holds the one-GPU record of its per-rank configuration."""
    several = job is not None and job.world_size > 1 and not communication.empty  # else no need to read the results
    one_gpu = one_gpu_of(ResultsStore(run_dir).latest(), job) if several else None
    return from_records(one_gpu, job, communication) if one_gpu else pd.DataFrame(columns=list(TITLES))
