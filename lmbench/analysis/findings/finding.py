"""The Finding record: a claim, the numbers behind it, and the basis (threshold or fit) it rests on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CAVEAT = "caveat"  # the topic of a finding that qualifies the others (caveats.py); shown before them


@dataclass(frozen=True)
class Finding:
    topic: str
    claim: str
    numbers: dict[str, Any] = field(default_factory=dict)
    basis: str = ""
