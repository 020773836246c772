"""The sensor simulator without ROS: scene + rig, ego and actor state histories, capture rendering and packing.

The sensor_sim node (xsim_ros/sensor_sim.py) feeds it messages and clock readings and publishes what it returns;
the bag replay uses the same object, so that both render the same states the same way.

    engine = SensorEngine(load_assets(scene, rig), EngineConfig(...))
    engine.add_odometry(msg, received=time.monotonic(), now_ns=clock_ns)   -> [Report]
    engine.add_actors(msg, received, now_ns)                               -> [Report]
    engine.clock(now_ns)                                                   -> [Report] (clock jumped backwards)
    result = engine.capture(sensor_name, start_ns, newest_ns=None)         -> CaptureResult (outputs or stale)

States for a capture starting at t: the ego from its history at t (interpolated / extrapolated up to
max_state_age / refused: see xsim_render/states/history.py), actors likewise (actor_source 'topic'); a capture
without an ego state is refused ('stale'), never rendered from stale data. An actor stream that has gone stale
leaves the actors out (reported), the ego still renders.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..scene.gaussians import GaussianScene
from ..scene.io import load_scene
from ..sensors.rig import CameraSpec, LidarSpec, Rig, load_rig
from ..states.history import EGO, OK, HistoryConfig, StateHistory
from ..states.messages import ActorInfo, actor_frame, odometry_frame
from ..states.sample import NS, SampleError
from .capture import Output, capture_outputs, render_sensor
from .schedule import CaptureScheduler, SensorRate

F64 = torch.float64


@dataclass
class Assets:
    """What a simulator loads once: the scene (float32) and the rig."""

    scene: GaussianScene
    rig: Rig
    scene_path: str
    rig_path: str


def load_assets(scene_path: str | Path, rig_path: str | Path, world_from_scene: str = "") -> Assets:
    """The one place where a simulator loads its scene and rig (InputError with a one-line reason on bad files).

    world_from_scene: '' keeps the scene's own placement of its frame in the world; otherwise 'x,y,z',
    'x,y,z,qw,qx,qy,qz' or a YAML file {translation, rotation_wxyz} replaces it (scene/placement.py)."""
    from ..errors import InputError
    from ..scene.placement import parse_placement

    if not str(rig_path):
        raise InputError("parameter 'rig': no sensor rig file given")
    if not str(scene_path):
        raise InputError("parameter 'scene': no scene given")
    rig = load_rig(rig_path)
    if not Path(scene_path).exists():
        raise InputError(f"{scene_path}: scene not found")
    scene = load_scene(scene_path)
    if world_from_scene:
        scene = replace(scene, world_from_scene=parse_placement(world_from_scene, "parameter 'world_from_scene'"))
    return Assets(scene, rig, str(scene_path), str(rig_path))


@dataclass
class EngineConfig:
    """Run-time settings (the node's parameters); changes take effect at the next capture."""

    world_frame: str = "map"
    base_frame: str = "base_link"
    backend: str = "auto"
    point_format: str = "xyzircaedt"
    organized: bool = True
    phase_modeling: bool = True
    actor_source: str = "topic"
    history: HistoryConfig = field(default_factory=HistoryConfig)


@dataclass
class Report:
    """Something about an input worth telling the user: kind (counter name), level ('warn' | 'info'), text;
    rejected: the message (or, for an actor array, the whole array) was not used."""

    kind: str
    level: str
    text: str
    rejected: bool = False


@dataclass
class CaptureResult:
    """A rendered capture (outputs) or a refused one (outputs empty, stale reason). render_s: wall seconds;
    received: arrival (monotonic s) of the newest state message used; how: exact / interpolated / extrapolated."""

    sensor: str
    start_ns: int
    outputs: list[Output] = field(default_factory=list)
    stale: str = ""
    render_s: float = 0.0
    received: float = math.nan
    how: str = ""
    reports: list[Report] = field(default_factory=list)


class SensorEngine:
    """Histories of the ego and the actors plus rendering of captures for every sensor of a rig."""

    def __init__(self, assets: Assets, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.rig = assets.rig
        self.scene_with_trajectories = assets.scene
        self.scene = replace(assets.scene, actors={})
        self.known_actor_ids = {int(i) for i in assets.scene.actor_ids.unique().tolist() if int(i) >= 0}
        self.ego = StateHistory(self.config.history)
        self.actors = StateHistory(self.config.history)
        self.actor_info: dict[int, ActorInfo] = {}
        self.counts: Counter = Counter()
        self.last_clock_ns: int | None = None
        self.actors_seen = False
        self.scheduler = CaptureScheduler([SensorRate(s.name, s.rate_hz, s.capture_duration)
                                           for s in self.rig.sensors])
        self.lock = threading.RLock()  # inputs and state queries may come from other threads than rendering

    def due(self, now_ns: int) -> list:
        """Captures due since the previous reading of the clock (xsim_render.sim.schedule.CaptureScheduler)."""
        with self.lock:
            return self.scheduler.due(now_ns)

    def next_start_ns(self, after_ns: int) -> int:
        with self.lock:
            return self.scheduler.next_start_ns(after_ns)

    def counts_snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    # ------------------------------------------------------------------ inputs

    def _note(self, kind: str, level: str, text: str, rejected: bool = False) -> Report:
        with self.lock:
            self.counts[kind] += 1
        return Report(kind, level, text, rejected)

    def reset(self, reason: str) -> Report:
        """Forget every state and restart the capture schedule."""
        with self.lock:
            self.ego.reset()
            self.actors.reset()
            self.scheduler.reset()
        return self._note("history_reset", "warn", f"state history reset: {reason}")

    def clock(self, now_ns: int) -> list[Report]:
        """A clock reading; a jump backwards resets the histories and the schedule."""
        reports = []
        with self.lock:
            if self.last_clock_ns is not None and now_ns < self.last_clock_ns:
                # states of the old timeline (beyond the new clock) go; states already stamped on the new
                # timeline (they may arrive before the clock does) stay. A history never mixes the two timelines
                # (a new-timeline state resets it or is rejected), so one that held any state beyond the limit
                # holds only old ones: all go (else an old state within the tolerance would refuse the new ones)
                limit = int(now_ns + self.config.history.future_tolerance * NS)
                for history in (self.ego, self.actors):
                    if history.drop_after(limit):
                        history.reset()
                self.scheduler.reset()
                reports.append(self._note("history_reset", "warn", f"state history reset: clock jumped backwards "
                                          f"from {self.last_clock_ns / NS:.9f} s to {now_ns / NS:.9f} s"))
            self.last_clock_ns = int(now_ns)
        return reports

    def _add(self, history: StateHistory, frame: Any, what: str, now_ns: int | None) -> list[Report]:
        with self.lock:
            return self._add_locked(history, frame, what, now_ns)

    def _add_locked(self, history: StateHistory, frame: Any, what: str, now_ns: int | None) -> list[Report]:
        try:
            notes = history.add(frame, now_ns)
        except SampleError as err:
            return [self._note(err.kind, "warn", f"{what} rejected: {err}", rejected=True)]
        reports = []
        for note in notes:
            if note == "reset":
                other = self.actors if history is self.ego else self.ego
                other.reset()
                self.scheduler.reset()
                reports.append(self._note("history_reset", "warn", f"state history reset: {what} stamp "
                                          f"{frame.stamp_ns / NS:.9f} s jumped backwards"))
            elif note == "too_old":
                reports.append(self._note("too_old", "warn", f"{what} stamp {frame.stamp_ns / NS:.9f} s is more "
                                          f"than {history.config.span} s behind the clock"))
        return reports

    def add_odometry(self, msg: Any, received: float = math.nan, now_ns: int | None = None) -> list[Report]:
        """One nav_msgs/Odometry (rclpy or rosbags object)."""
        with self.lock:
            return self._add_odometry(msg, received, now_ns)

    def _add_odometry(self, msg: Any, received: float, now_ns: int | None) -> list[Report]:
        self.counts["odometry"] += 1
        try:
            frame = odometry_frame(msg, self.config.world_frame, self.config.base_frame, received)
        except SampleError as err:
            return [self._note(err.kind, "warn", f"odometry rejected: {err}", rejected=True)]
        return self._add(self.ego, frame, "odometry", now_ns)

    def add_actors(self, msg: Any, received: float = math.nan, now_ns: int | None = None) -> list[Report]:
        """One xsim_msgs/ActorStateArray (rclpy or rosbags object)."""
        with self.lock:
            return self._add_actors(msg, received, now_ns)

    def _add_actors(self, msg: Any, received: float, now_ns: int | None) -> list[Report]:
        self.counts["actor_arrays"] += 1
        if self.config.actor_source != "topic":
            return []
        try:
            parsed = actor_frame(msg, self.config.world_frame, self.known_actor_ids, received)
        except SampleError as err:
            return [self._note(err.kind, "warn", f"actors rejected: {err}", rejected=True)]
        self.actors_seen = True
        reports = [self._note(e.kind, "warn", f"actor left out: {e}") for e in parsed.rejected]
        if not msg.actors:
            reports.append(self._note("empty_actor_array", "info", "empty actor array: no actor is rendered at "
                                      f"{parsed.frame.stamp_ns / NS:.9f} s"))
        self.actor_info.update(parsed.info)
        return reports + self._add(self.actors, parsed.frame, "actors", now_ns)

    # ------------------------------------------------------------------ captures

    def sensor(self, name: str) -> CameraSpec | LidarSpec:
        return self.rig.sensor(name)

    def warm_up(self) -> float:
        """Render every sensor once, from an ego at rest at the centre of the scene's static Gaussians (world frame)
        at t = 0, and discard the outputs; returns the wall seconds it took. The first render of a process pays for
        lazy imports (torch.func), the kernels' first use and memory pools (seconds); a simulator calls this at
        start-up so that its first capture costs what the next ones do. The histories are not touched."""
        from ..motion.rigid import RigidMotion

        static = self.scene.actor_ids < 0
        centre = self.scene.means[static].double().mean(0) if bool(static.any()) else torch.zeros(3, dtype=F64)
        if self.scene.world_from_scene is not None:
            centre = self.scene.world_from_scene.points(centre)
        ego = RigidMotion.from_values(centre.tolist(), (1.0, 0.0, 0.0, 0.0))
        topic = self.config.actor_source == "topic"
        scene = self.scene if topic else self.scene_with_trajectories
        t0 = time.perf_counter()
        for spec in self.rig.sensors:
            render = render_sensor(scene, spec, 0, ego, {} if topic else None, self.config.backend,
                                   self.config.phase_modeling)
            capture_outputs(spec, 0, render, self.config.point_format, self.config.organized)
        return time.perf_counter() - t0

    def capture(self, sensor: str, start_ns: int, newest_ns: int | None = None) -> CaptureResult:
        """Render and pack one capture of `sensor` starting at start_ns with the states known now (only those stamped
        <= newest_ns when given); a capture without a usable ego state is refused (result.stale says why)."""
        spec = self.rig.sensor(sensor)
        result = CaptureResult(sensor, int(start_ns))
        with self.lock:
            ego = self.ego.query(start_ns, newest_ns)
            actor_query = self.actors.query(start_ns, newest_ns) if self.actors_seen else None
        if ego.status != OK or EGO not in ego.motions:
            result.stale = ("no ego state yet" if ego.status == "empty" else
                            f"newest ego state is {ego.age_s:.3f} s from the capture (max_state_age "
                            f"{self.config.history.max_state_age} s)")
            return result
        result.received, result.how = ego.received, ego.how
        actors = None
        if self.config.actor_source == "topic":
            actors = {}
            if actor_query is not None:
                q = actor_query
                if q.status == OK:
                    actors = q.motions
                    if not math.isnan(q.received):
                        result.received = max(result.received, q.received) if not math.isnan(
                            result.received) else q.received
                else:
                    result.reports.append(self._note("stale_actors", "warn", f"{sensor}: actor states are "
                                                     f"{q.age_s:.3f} s from the capture: rendering without actors"))
        scene = self.scene if self.config.actor_source == "topic" else self.scene_with_trajectories
        t0 = time.perf_counter()
        render = render_sensor(scene, spec, start_ns, ego.motions[EGO], actors, self.config.backend,
                               self.config.phase_modeling)
        result.outputs = capture_outputs(spec, start_ns, render, self.config.point_format, self.config.organized)
        result.render_s = time.perf_counter() - t0
        return result
