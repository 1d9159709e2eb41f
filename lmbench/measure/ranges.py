"""The one range primitive: `annotate(name)` names a stretch of work on every profiler's timeline.

A range is emitted to each active *sink*: an NVTX push/pop range in the `lmbench` domain with a colour
per phase (Nsight Systems, Nsight Compute's NVTX filters) and a torch.profiler `record_function` of the
same name (TensorBoard / Perfetto traces). Annotation is off unless an `annotations(level)` block
turns it on, and off it costs one attribute comparison per range, so the model can keep its ranges.

Levels: "phases" names each step (`warmup_k` / `measured_k`) and its `forward`, `backward` and
`optimizer` phases; "detail" adds, inside the model, `layer_k` with `attention` and `ffn` in it and,
in naive attention, `scores`, `softmax` and `value`.

`capture_range(device)` brackets the measured steps with cudaProfilerStart/Stop, so
`nsys profile --capture-range=cudaProfilerApi` records exactly the measured region.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

import torch

from lmbench.config import ANNOTATE_LEVELS as LEVELS
from lmbench.config import RANGE_DOMAIN as DOMAIN
from lmbench.config import RANGE_NAMES
_RANK = {name: rank for rank, name in enumerate(LEVELS)}

# ARGB colours so a timeline reads at a glance: phases in distinct hues, model parts in muted ones.
COLORS = {
    name: color for name, color in zip(RANGE_NAMES, (
        0xFF9E9E9E, 0xFF424242, 0xFF757575, 0xFF607D8B, 0xFFBDBDBD,  # warmup, measured, memory, step, compile
        0xFF2E7D32, 0xFFC62828, 0xFF1565C0,  # forward, backward, optimizer
        0xFF6D4C41, 0xFFEF6C00, 0xFF00838F, 0xFFFFB300, 0xFF8E24AA, 0xFFD81B60,  # layer, attention, ffn, scores, ...
    ), strict=True)
}
_OTHER_COLOR = 0xFF607D8B

F = TypeVar("F", bound=Callable[..., Any])


def color_of(name: str) -> int:
    """A range's colour, looked up by its name without the `_k` index (layer_3 -> layer)."""
    return COLORS.get(name.rsplit("_", 1)[0] if name[-1:].isdigit() else name, _OTHER_COLOR)


class Sink(Protocol):
    """Where ranges go. `capture(True/False)` is told when the measured region starts and stops."""

    def push(self, name: str) -> None: ...
    def pop(self) -> None: ...
    def capture(self, on: bool) -> None: ...


class NvtxSink:
    """NVTX ranges in the `lmbench` domain (a no-op dummy domain unless a profiler injects NVTX)."""

    def __init__(self) -> None:
        import nvtx  # a core dependency; imported here so `import lmbench` stays light

        self._domain = nvtx.get_domain(DOMAIN)
        self._attributes: dict[str, Any] = {}  # one attribute object per name, built on first use

    def push(self, name: str) -> None:
        attributes = self._attributes.get(name)
        if attributes is None:
            attributes = self._attributes[name] = self._domain.get_event_attributes(message=name, color=color_of(name))
        self._domain.push_range(attributes)

    def pop(self) -> None:
        self._domain.pop_range()

    def capture(self, on: bool) -> None:
        pass


class RecordFunctionSink:
    """torch.profiler `record_function` ranges, opened only while a torch profiler is collecting.

    Under emit_nvtx the autograd profiler is on in NVTX mode and would repeat every range in NVTX's
    default domain, so this sink stays quiet there (`quiet=True`).
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._open: list[torch.autograd.profiler.record_function | None] = []

    def push(self, name: str) -> None:
        scope = None
        if not self.quiet and torch.autograd._profiler_enabled():
            scope = torch.autograd.profiler.record_function(name)
            scope.__enter__()
        self._open.append(scope)

    def pop(self) -> None:
        scope = self._open.pop()
        if scope is not None:
            scope.__exit__(None, None, None)

    def capture(self, on: bool) -> None:
        pass


class RangeRecorder:
    """A sink that keeps what it was sent: for tests, and for checking a run's ranges without a profiler."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []  # ("push", name) | ("pop", name) | ("capture", "start"/"stop")
        self._stack: list[str] = []

    def push(self, name: str) -> None:
        self._stack.append(name)
        self.events.append(("push", name))

    def pop(self) -> None:
        self.events.append(("pop", self._stack.pop()))

    def capture(self, on: bool) -> None:
        self.events.append(("capture", "start" if on else "stop"))

    def paths(self) -> list[str]:
        """Every opened range as its nesting path, e.g. 'measured_0/forward/layer_1/attention'."""
        stack, paths = [], []
        for kind, name in self.events:
            if kind == "push":
                stack.append(name)
                paths.append("/".join(stack))
            elif kind == "pop":
                stack.pop()
        return paths


class _State:
    level = 0
    sinks: tuple[Sink, ...] = ()


_state = _State()


def default_sinks(emit_nvtx: bool = False) -> list[Sink]:
    return [NvtxSink(), RecordFunctionSink(quiet=emit_nvtx)]


class annotate:
    """Context manager or decorator: a range named `name`, emitted when the active level reaches `level`.

        with annotate("forward"): ...
        @annotate("sample")            # a fresh range on every call
        def sample(): ...
    """

    __slots__ = ("name", "rank", "_sinks")

    def __init__(self, name: str, level: str = "phases") -> None:
        self.name, self.rank = name, _RANK[level]

    def __enter__(self) -> annotate:
        self._sinks = _state.sinks if _state.level >= self.rank else ()
        for sink in self._sinks:
            sink.push(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        for sink in reversed(self._sinks):
            sink.pop()

    def __call__(self, function: F) -> F:
        name, level = self.name, LEVELS[self.rank]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with annotate(name, level):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def annotations(level: str, emit_nvtx: bool = False, sinks: Sequence[Sink] | None = None) -> Iterator[None]:
    """Turn ranges on at `level` ("off", "phases", "detail") for the block; the previous state is restored.

    `emit_nvtx` also asks autograd for an NVTX range per op (torch.autograd.profiler.emit_nvtx), the
    op-level view `nsys --pytorch` users expect; it costs host time on every op, so it is opt-in.
    """
    if level not in _RANK:
        raise ValueError(f"unknown annotation level {level!r} (choose from: {', '.join(LEVELS)})")
    previous = (_state.level, _state.sinks)
    _state.level = _RANK[level]
    _state.sinks = tuple(sinks if sinks is not None else default_sinks(emit_nvtx)) if _state.level else ()
    op_ranges = torch.autograd.profiler.emit_nvtx() if emit_nvtx else contextlib.nullcontext()
    try:
        with op_ranges:
            yield
    finally:
        _state.level, _state.sinks = previous


def annotation_level() -> str:
    return LEVELS[_state.level]


@contextlib.contextmanager
def capture_range(device: torch.device) -> Iterator[None]:
    """cudaProfilerStart/Stop around the block on CUDA (a no-op unless a profiler waits on that API);
    active sinks are told too, so a recording shows exactly what was captured."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)  # work queued before the region stays out of it
        torch.cuda.profiler.start()
    for sink in _state.sinks:
        sink.capture(True)
    try:
        yield
    finally:
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.profiler.stop()
        for sink in _state.sinks:
            sink.capture(False)
