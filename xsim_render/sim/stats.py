"""Per-sensor figures for diagnostics and logs, and a keyed log throttle (wall-clock seconds, monotonic).

SensorStats keeps the publishes of the last `window` seconds: achieved rate (publishes / window, or over the span
since the first publish while the window is not yet full), render time and end-to-end latency (state message
received -> sensor message published) mean and p95, plus totals of published, dropped (by reason) and stale
captures, and the expected render time the real-time policy predicts with (schedule.RenderTimeEstimate).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from .schedule import RenderTimeEstimate


@dataclass
class SensorStats:
    """Rolling figures of one sensor (times in seconds, monotonic wall clock)."""

    name: str
    window: float = 5.0
    published: int = 0
    rendered: int = 0
    stale: int = 0
    dropped: Counter = field(default_factory=Counter)
    _events: deque = field(default_factory=deque)  # (wall, render_s, latency_s)
    _first: float = math.nan
    render_estimate: RenderTimeEstimate = field(default_factory=RenderTimeEstimate)

    def record_publish(self, wall: float, render_s: float, latency_s: float) -> None:
        self.published += 1
        self.rendered += 1
        if math.isnan(self._first):
            self._first = wall
        self._events.append((wall, render_s, latency_s))
        self.render_estimate.record(render_s, wall)
        self._trim(wall)

    def record_render_time(self, render_s: float, wall: float) -> None:
        """A render whose result was not published (dropped late, ended at `wall`): still informs the expected
        render time."""
        self.rendered += 1
        self.render_estimate.record(render_s, wall)

    def record_drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def record_stale(self) -> None:
        self.stale += 1

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] < now - self.window:
            self._events.popleft()

    def snapshot(self, now: float) -> dict[str, float]:
        """Figures now: rate_hz, render_ms_mean, latency_ms_mean, latency_ms_p95 (NaN when nothing was published
        in the window), published, dropped, stale."""
        self._trim(now)
        span = min(self.window, now - self._first) if not math.isnan(self._first) else 0.0
        n = len(self._events)
        render = np.array([e[1] for e in self._events]) * 1e3
        latency = np.array([e[2] for e in self._events if math.isfinite(e[2])]) * 1e3
        return {
            "rate_hz": n / span if span > 0 else math.nan,
            "render_ms_mean": float(render.mean()) if n else math.nan,
            "latency_ms_mean": float(latency.mean()) if latency.size else math.nan,
            "latency_ms_p95": float(np.percentile(latency, 95)) if latency.size else math.nan,
            "published": float(self.published),
            "dropped": float(sum(self.dropped.values())),
            "stale": float(self.stale),
        }


@dataclass
class Throttle:
    """At most one message per key every `period` seconds; counts what it suppressed in between."""

    period: float = 5.0
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: Counter = field(default_factory=Counter)

    def ready(self, key: str, now: float) -> tuple[bool, int]:
        """(whether to log now, how many were suppressed since the last one logged for this key)."""
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._suppressed[key] += 1
            return False, 0
        self._last[key] = now
        return True, self._suppressed.pop(key, 0)
