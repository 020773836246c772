"""Time-indexed history of body states (the ego, or every actor) and the states it gives for a capture time.

A history holds Frames: one message's stamp (integer ns) and its samples by key (the ego under EGO, actors by
integer id; an actor array with no actors is a frame with no samples: nobody exists then). For a query time t:

  * a frame stamped exactly t: its samples, exact;
  * between two frames a <= t < b: every key of a, SE(3)-interpolated towards b's sample of the same key (slerp,
    lerp); a key of a missing in b is carried forward with its own velocities, if within max_state_age;
  * after the newest frame (or before the oldest): its samples carried with their own (world-frame) velocities
    when |t - stamp| <= max_state_age, else the query is refused as STALE (the caller counts and reports it and
    renders nothing from stale data);
  * no frame at all: EMPTY.
`newest_ns` restricts a query to frames stamped <= newest_ns (lockstep: only states of ticks up to the current one).

Adding a frame (one message) checks its stamp against the history and the caller's clock `now_ns`:
  * stamp > now + future_tolerance: rejected ('future');
  * stamp more than jump_back before the newest frame: the clock jumped backwards (a looped bag or scenario): the
    history is reset and the frame accepted (note 'reset');
  * stamp equal to the newest: rejected ('duplicate'); before it (within jump_back): rejected ('out_of_order');
  * stamp more than `span` behind `now`: accepted, noted 'too_old' (captures refuse it when it is beyond
    max_state_age, but a lagging publisher is worth a warning).
Frames older than `span` behind the newest are pruned (at least two are always kept).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from ..motion.rigid import RigidMotion
from .sample import NS, BodySample, SampleError, interpolate

EGO = 0  # key of the ego in its history


@dataclass
class HistoryConfig:
    """Tolerances in seconds (see the module docstring)."""

    max_state_age: float = 0.5
    span: float = 2.0
    jump_back: float = 1.0
    future_tolerance: float = 1.0


@dataclass
class Frame:
    """One message: stamp (ns) and samples by key; received = monotonic wall time of arrival (s)."""

    stamp_ns: int
    samples: dict[int, BodySample] = field(default_factory=dict)
    received: float = math.nan


OK, STALE, EMPTY = "ok", "stale", "empty"


@dataclass
class Query:
    """Result of StateHistory.query: status OK / STALE / EMPTY, motions by key (referenced at the query time),
    how they were obtained ('exact', 'interpolated', 'extrapolated'), age_s (distance in time to the nearest frame
    used) and received (arrival time of the newest frame used, for end-to-end latency)."""

    status: str
    motions: dict[int, RigidMotion] = field(default_factory=dict)
    how: str = ""
    age_s: float = math.inf
    received: float = math.nan


def _latest(*times: float) -> float:
    known = [t for t in times if not math.isnan(t)]
    return max(known) if known else math.nan


class StateHistory:
    """Frames sorted by stamp; see the module docstring for the query and insertion rules."""

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = config or HistoryConfig()
        self._stamps: list[int] = []
        self._frames: list[Frame] = []

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def newest_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    @property
    def oldest_ns(self) -> int | None:
        return self._stamps[0] if self._stamps else None

    def reset(self) -> None:
        """Forget every frame (clock jumped backwards)."""
        self._stamps.clear()
        self._frames.clear()

    def drop_after(self, t_ns: int) -> int:
        """Forget the frames stamped after t_ns (the clock jumped back to before them); returns how many."""
        keep = bisect.bisect_right(self._stamps, int(t_ns))
        dropped = len(self._stamps) - keep
        del self._stamps[keep:]
        del self._frames[keep:]
        return dropped

    def add(self, frame: Frame, now_ns: int | None = None) -> list[str]:
        """Insert one frame; returns notes ('reset', 'too_old'); raises SampleError('future' | 'duplicate' |
        'out_of_order') when the frame is rejected."""
        cfg, stamp, notes = self.config, int(frame.stamp_ns), []
        if now_ns is not None and stamp > now_ns + cfg.future_tolerance * NS:
            raise SampleError("future", f"stamp {stamp / NS:.9f} s is {(stamp - now_ns) / NS:.3f} s ahead of the "
                                        f"clock (tolerance {cfg.future_tolerance} s)")
        newest = self.newest_ns
        if newest is not None:
            if stamp < newest - cfg.jump_back * NS:
                self.reset()
                notes.append("reset")
            elif stamp == newest:
                raise SampleError("duplicate", f"stamp {stamp / NS:.9f} s repeats the newest one")
            elif stamp < newest:
                raise SampleError("out_of_order", f"stamp {stamp / NS:.9f} s is {(newest - stamp) / NS:.3f} s "
                                                  f"before the newest one")
        if now_ns is not None and stamp < now_ns - cfg.span * NS:
            notes.append("too_old")
        self._stamps.append(stamp)
        self._frames.append(frame)
        self._prune()
        return notes

    def _prune(self) -> None:
        limit = self._stamps[-1] - self.config.span * NS
        cut = bisect.bisect_left(self._stamps, limit)
        cut = min(cut, len(self._stamps) - 2)
        if cut > 0:
            del self._stamps[:cut]
            del self._frames[:cut]

    def frames(self) -> list[Frame]:
        return list(self._frames)

    def query(self, t_ns: int, newest_ns: int | None = None) -> Query:
        """States at t_ns (see the module docstring); only frames stamped <= newest_ns when it is given."""
        t_ns = int(t_ns)
        end = len(self._stamps) if newest_ns is None else bisect.bisect_right(self._stamps, int(newest_ns))
        if end == 0:
            return Query(EMPTY)
        i = bisect.bisect_right(self._stamps, t_ns, 0, end)  # frames [0, i) are <= t
        a = self._frames[i - 1] if i > 0 else None
        b = self._frames[i] if i < end else None
        max_age = self.config.max_state_age
        if a is not None and a.stamp_ns == t_ns:
            return Query(OK, {k: s.motion_at(t_ns) for k, s in a.samples.items()}, "exact", 0.0, a.received)
        if a is not None and b is not None:
            age = min(t_ns - a.stamp_ns, b.stamp_ns - t_ns) / NS
            motions = {}
            for key, sa in a.samples.items():
                sb = b.samples.get(key)
                if sb is not None:
                    motions[key] = interpolate(sa, sb, t_ns)
                elif (t_ns - a.stamp_ns) / NS <= max_age:
                    motions[key] = sa.motion_at(t_ns)
            return Query(OK, motions, "interpolated", age, _latest(a.received, b.received))
        near = a if a is not None else b
        age = abs(t_ns - near.stamp_ns) / NS
        if age > max_age:
            return Query(STALE, {}, "", age, near.received)
        return Query(OK, {k: s.motion_at(t_ns) for k, s in near.samples.items()}, "extrapolated", age, near.received)
