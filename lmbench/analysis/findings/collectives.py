"""Where each collective's bus bandwidth levels off: the smallest message size from which it stays within
PLATEAU_BAND_PCT of its plateau, read from the collective-bandwidth table (analysis/collectives.py).

The plateau is the largest bus bandwidth measured for that collective. A size is on the plateau when it and every
larger measured size are within the band of it. A plateau needs two such sizes or more: when only the largest size
is in the band, bandwidth was still rising where the measurement stopped, and when the largest size has fallen out
of the band there is no level stretch to name; both are said as such, with the numbers.
"""

from __future__ import annotations

import pandas as pd

from lmbench.analysis.findings.finding import Finding
from lmbench.config import size_text

PLATEAU_BAND_PCT = 10.0
MIN_PLATEAU_SIZES = 2


def plateau_from(busbw: list[float]) -> int | None:
    """Index of the first value from which every value is within the band of the maximum; None when even the last
    is not."""
    floor = max(busbw) * (1 - PLATEAU_BAND_PCT / 100)
    start = None
    for i in reversed(range(len(busbw))):
        if busbw[i] < floor:
            break
        start = i
    return start


def plateaus(table: pd.DataFrame) -> list[Finding]:
    """One finding per collective with two or more measured sizes (analysis/collectives.py's table of one job)."""
    found = []
    for op, rows in table[table["status"] == "ok"].groupby("op", sort=False):
        if len(rows) < MIN_PLATEAU_SIZES:
            continue
        if (rows["bus_factor"] == 0).all():  # one rank: busbw = algbw x (n-1)/n is 0 by definition
            found.append(Finding(op, "bus bandwidth is 0 at every size: with one rank nothing crosses between ranks "
                                     "(nccl-tests' factor is 0 for n = 1), so there is no plateau to find", {"sizes": len(rows)},
                                 "nccl-tests' bus bandwidth factor"))
            continue
        sizes, busbw = [int(s) for s in rows["requested_bytes"]], [float(b) for b in rows["busbw_gbps"]]
        peak = max(range(len(busbw)), key=busbw.__getitem__)
        start = plateau_from(busbw)
        counts = sorted({int(n) for n in rows["steps"]})  # sizes measured again with other step counts: all named
        steps, span = "–".join(map(str, counts[:: max(1, len(counts) - 1)])), f"{size_text(sizes[0])}–{size_text(sizes[-1])}"
        numbers = {"peak_gbps": busbw[peak], "peak_size": sizes[peak], "plateau_from": None, "sizes": len(sizes),
                   "steps": steps, "band_pct": PLATEAU_BAND_PCT}
        at = lambda i: f"{busbw[i]:.3g} GB/s at {size_text(sizes[i])}"  # noqa: E731
        if start is not None and len(sizes) - start >= MIN_PLATEAU_SIZES:
            numbers["plateau_from"] = sizes[start]
            claim = (f"from {size_text(sizes[start])} on, bus bandwidth stays within {PLATEAU_BAND_PCT:g}% of its "
                     f"plateau of {at(peak)} ({len(sizes) - start} of {len(sizes)} sizes, {span}; "
                     f"{at(start)}, {at(len(sizes) - 1)})")
        elif start is not None:
            claim = (f"no plateau in the measured range ({span}): bus bandwidth is still rising at the largest size, "
                     f"{at(len(sizes) - 1)} against {at(len(sizes) - 2)}")
        else:
            claim = (f"no plateau in the measured range ({span}): bus bandwidth peaks at {at(peak)} and falls to "
                     f"{at(len(sizes) - 1)}, {100 * (1 - busbw[-1] / busbw[peak]):.0f}% below it")
        found.append(Finding(op, claim, numbers,
                             f"plateau = the largest bus bandwidth measured; a size is on it when it and every larger "
                             f"size are within {PLATEAU_BAND_PCT:g}%; each point is the slowest rank's mean of "
                             f"{steps} timed steps"))
    return found
