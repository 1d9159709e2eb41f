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


def markdown_lines(found: list[Finding]) -> list[str]:
    """A findings list as Markdown: each caveat as its own bold-led paragraph, then the other findings numbered."""
    lines = []
    for f in found:
        if f.topic == CAVEAT:
            lines += [f"**Caveat:** {f.claim} _({f.basis})_", ""]
    listed = [f for f in found if f.topic != CAVEAT]
    return lines + [f"{i}. **{f.topic}** — {f.claim} _({f.basis})_" for i, f in enumerate(listed, 1)]
