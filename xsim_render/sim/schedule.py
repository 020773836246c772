"""Capture scheduling on a clock in integer nanoseconds (ROS time: sim time or wall time).

A sensor with rate f captures at t_n = n / f on the clock (n integer; exact in ns for rational rates: the rate is
held as a fraction), so that every sensor_sim node, a bag replay and a direct render agree on the instants.
`CaptureScheduler.due(now)` returns the captures that became due since the previous call: starts in
(previous now, now], in time order (sensor order for equal times); the first call after creation or reset() only
takes a capture starting exactly at `now`.

Real-time (HIL) policy, `realtime_plan`: a capture is never queued behind a newer one of the same sensor (the older
ones are dropped, 'superseded'); a capture whose deadline has passed, or that would miss it given the sensor's
expected render time, is dropped ('deadline'). The deadline of capture n is the instant the next capture (n + 1)
would be complete: t_(n+1) + capture duration. Past it the node would fall behind the sensor it simulates.

The expected render time (`RenderTimeEstimate`) comes from measured renders and must never lock a sensor out: it
is the faster of the last two renders (one slow render, e.g. a warm-up or a pause of the machine, does not count
against the next captures) and expires a while after the latest render (the next capture is then rendered, which
measures again), so that a node publishes again as soon as renders are fast enough.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

NS = 1_000_000_000


@dataclass(frozen=True)
class Capture:
    """One due capture: sensor name, index n, start t_n (ns), and its real-time deadline (ns)."""

    sensor: str
    index: int
    start_ns: int
    deadline_ns: int


@dataclass
class SensorRate:
    """Capture instants of one sensor: t_n = n / rate_hz (ns, floor), capture duration (s)."""

    name: str
    rate_hz: float
    capture_duration: float = 0.0
    rate: Fraction = field(init=False)

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ValueError(f"sensor {self.name!r}: rate_hz must be a positive number, got {self.rate_hz}")
        self.rate = Fraction(self.rate_hz).limit_denominator(1_000_000)

    def start_ns(self, n: int) -> int:
        return (n * NS * self.rate.denominator) // self.rate.numerator

    def last_index_at(self, t_ns: int) -> int:
        """Largest n with start_ns(n) <= t_ns."""
        n = (int(t_ns) * self.rate.numerator) // (NS * self.rate.denominator)
        while self.start_ns(n + 1) <= t_ns:
            n += 1
        while self.start_ns(n) > t_ns:
            n -= 1
        return n

    def capture(self, n: int) -> Capture:
        deadline = self.start_ns(n + 1) + int(round(self.capture_duration * NS))
        return Capture(self.name, n, self.start_ns(n), deadline)


class CaptureScheduler:
    """Due captures of several sensors between successive clock readings (see the module docstring)."""

    def __init__(self, sensors: list[SensorRate]) -> None:
        self.sensors = list(sensors)
        self._last_ns: int | None = None

    def reset(self) -> None:
        """Start over (the clock jumped backwards)."""
        self._last_ns = None

    @property
    def last_ns(self) -> int | None:
        return self._last_ns

    def due(self, now_ns: int) -> list[Capture]:
        """Captures with start in (last, now] (first call: start == now), sorted by (start, sensor order)."""
        now_ns = int(now_ns)
        out: list[tuple[int, int, Capture]] = []
        for order, sensor in enumerate(self.sensors):
            hi = sensor.last_index_at(now_ns)
            if self._last_ns is None:
                lo = hi if sensor.start_ns(hi) == now_ns else hi + 1
            else:
                lo = sensor.last_index_at(self._last_ns) + 1
            out.extend((sensor.start_ns(n), order, sensor.capture(n)) for n in range(lo, hi + 1))
        if self._last_ns is None or now_ns > self._last_ns:
            self._last_ns = now_ns
        return [c for _, _, c in sorted(out, key=lambda x: (x[0], x[1]))]

    def next_start_ns(self, after_ns: int) -> int:
        """The earliest capture start strictly after after_ns over all sensors."""
        return min(s.start_ns(s.last_index_at(after_ns) + 1) for s in self.sensors)


@dataclass
class Plan:
    """What to do with due captures: render these (in order), drop those (with the reason)."""

    render: list[Capture] = field(default_factory=list)
    dropped: list[tuple[Capture, str]] = field(default_factory=list)


def latest_per_sensor(captures: list[Capture]) -> Plan:
    """Keep only the newest due capture of every sensor; the older ones are dropped as 'superseded'."""
    newest: dict[str, Capture] = {}
    for c in captures:
        if c.sensor not in newest or c.start_ns > newest[c.sensor].start_ns:
            newest[c.sensor] = c
    plan = Plan()
    for c in captures:
        if newest[c.sensor] is c:
            plan.render.append(c)
        else:
            plan.dropped.append((c, "superseded"))
    return plan


def least_recently_served_first(captures: list[Capture], served: dict[str, int]) -> list[Capture]:
    """Captures to render, the sensor rendered least recently first (served: sensor -> sequence number of its latest
    render; absent = never), ties in the given order. With one render at a time and renders slower than the
    capture period, every sensor then gets its turn; in time order the first sensor of the rig would win every
    re-planning and the others would only ever be superseded."""
    return sorted(captures, key=lambda c: served.get(c.sensor, -1))


def realtime_plan(captures: list[Capture], now_ns: int, expected_render_s: dict[str, float]) -> Plan:
    """latest_per_sensor, then drop a capture that is past its deadline or would miss it with the sensor's expected
    render time (seconds; absent = unknown, not dropped on prediction)."""
    plan = latest_per_sensor(captures)
    keep = []
    for c in plan.render:
        expected = expected_render_s.get(c.sensor, 0.0)
        if now_ns + int(expected * NS) > c.deadline_ns:
            plan.dropped.append((c, "deadline"))
        else:
            keep.append(c)
    plan.render = keep
    return plan


@dataclass
class RenderTimeEstimate:
    """Expected render time (s) of one sensor for `realtime_plan`, from its measured renders (wall seconds).

    expected(now) is the faster of the last `renders` renders: a capture is dropped on prediction only when that
    many renders in a row were too slow, so one slow render (a warm-up, a pause of the machine) never costs the
    next captures. It is None (unknown: nothing is dropped on prediction) before `renders` renders, and once
    `max(min_trust_s, trust_factor * estimate)` seconds have passed since the latest render: the estimate expires,
    the next capture is rendered and measured again, so that the node publishes again as soon as renders are fast
    enough (a sensor that is really too slow spends at most about 1 / (1 + trust_factor) of the time on such
    renders, which are then dropped late)."""

    renders: int = 2
    min_trust_s: float = 1.0
    trust_factor: float = 4.0
    recent: deque = field(default_factory=deque)
    last_end_s: float | None = None

    def record(self, render_s: float, now_s: float) -> None:
        """A render of render_s seconds that ended at now_s (monotonic wall clock, s)."""
        self.recent.append(float(render_s))
        while len(self.recent) > self.renders:
            self.recent.popleft()
        self.last_end_s = float(now_s)

    def expected(self, now_s: float) -> float | None:
        if len(self.recent) < self.renders or self.last_end_s is None:
            return None
        estimate = min(self.recent)
        if now_s - self.last_end_s > max(self.min_trust_s, self.trust_factor * estimate):
            return None
        return estimate
