"""Scenarios for the scenario_player: where the ego and the actors are at any time, and the messages of one tick.

Sources (load_scenario picks by path):
  * a synthetic world (`xsim synth` writes DIR/world/world.yaml): the ego route and the actor trajectories, read
    from world.yaml alone (no meshes); world time t maps to ROS time time_offset + t;
  * a rosbag2 directory or .mcap / .db3 file with `ego/odometry` (nav_msgs/Odometry) and optionally `actors`
    (xsim_msgs/ActorStateArray), any stamps: states are interpolated between the bag's messages (the same
    StateHistory the sensor_sim node uses), none outside [first, last odometry stamp].
A tick at ROS time T (integer ns) gives: nav_msgs/Odometry (pose of base_frame in world_frame, twist in
base_frame), xsim_msgs/ActorStateArray (every actor existing at T, pose in world_frame, twist in the actor
frame), tf2_msgs/TFMessage (world_frame -> base_frame) and rosgraph_msgs/Clock, all stamped T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import InputError
from ..motion.rigid import RigidMotion
from ..rosio import messages as m
from ..states.history import EGO, OK, Frame, HistoryConfig, StateHistory
from ..states.messages import ActorInfo, actor_frame, odometry_frame
from ..states.sample import NS, SampleError
from .capture import Output

ODOMETRY, ACTORS, TF, CLOCK = ("nav_msgs/msg/Odometry", "xsim_msgs/msg/ActorStateArray", "tf2_msgs/msg/TFMessage",
                               "rosgraph_msgs/msg/Clock")


@dataclass
class ScenarioActor:
    motion: RigidMotion
    info: ActorInfo


class Scenario:
    """Ego and actor states over [start_ns, end_ns] (ROS time, integer ns)."""

    start_ns: int
    end_ns: int
    source: str

    def ego_at(self, t_ns: int) -> RigidMotion | None:
        raise NotImplementedError

    def actors_at(self, t_ns: int) -> dict[int, ScenarioActor]:
        raise NotImplementedError


class WorldScenario(Scenario):
    """The drive of a synthetic world (world.yaml): ego keyframes and actor trajectories."""

    def __init__(self, path: Path, time_offset_ns: int = 0) -> None:
        from ..synth.world import WORLD_FORMAT, World, WorldActor, _trajectory_from

        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise InputError(f"{path}: cannot read world file ({' '.join(str(err).split())[:200]})") from None
        if not isinstance(doc, dict) or doc.get("format") != WORLD_FORMAT:
            raise InputError(f"{path}: field 'format': expected {WORLD_FORMAT!r}, got "
                             f"{doc.get('format') if isinstance(doc, dict) else doc!r}")
        try:
            actors = [WorldActor(int(a["id"]), str(a["category"]), tuple(float(v) for v in a["size"]), None, None,
                                 _trajectory_from(a["trajectory"])) for a in doc.get("actors") or []]
            self.world = World(None, None, [], actors, _trajectory_from(doc["ego_trajectory"]),
                               float(doc["duration"]), int(doc.get("seed", 0)), str(doc.get("preset", "")))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: malformed world file ({type(err).__name__}: {err})") from None
        self.offset_ns = int(time_offset_ns)
        self.start_ns = self.offset_ns
        self.end_ns = self.offset_ns + int(round(self.world.duration * NS))
        self.source = str(path)
        self._info = {a.id: ActorInfo(a.category, tuple(a.size)) for a in actors}

    def _t(self, t_ns: int) -> float:
        return (int(t_ns) - self.offset_ns) / NS

    def ego_at(self, t_ns: int) -> RigidMotion | None:
        return _shift(self.world.ego_motion(self._t(t_ns)), t_ns)

    def actors_at(self, t_ns: int) -> dict[int, ScenarioActor]:
        return {i: ScenarioActor(_shift(mo, t_ns), self._info[i])
                for i, mo in sorted(self.world.actor_motions(self._t(t_ns)).items())}


def _shift(motion: RigidMotion, t_ns: int) -> RigidMotion:
    """The same motion (pose at its own time) with its time expressed as ROS time t_ns (in s)."""
    f64 = torch.float64
    return RigidMotion(motion.rotation.to(f64), motion.position.to(f64), motion.linear_velocity.to(f64),
                       motion.angular_velocity.to(torch.float64), t_ns / NS)


class BagScenario(Scenario):
    """States recorded in a bag (odometry and actor arrays), interpolated between messages."""

    def __init__(self, path: Path, odometry_topic: str = "/ego/odometry", actors_topic: str = "/actors",
                 world_frame: str = "map", base_frame: str = "base_link") -> None:
        from ..rosio.bag import read_bag

        try:
            messages = read_bag(path, [odometry_topic, actors_topic])
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
            raise InputError(f"{path}: cannot read bag ({' '.join(str(err).split())[:200]})") from None
        odometry = messages.get(odometry_topic, [])
        if not odometry:
            raise InputError(f"{path}: no messages on {odometry_topic} (nav_msgs/Odometry)")
        exact = HistoryConfig(max_state_age=0.0, span=math.inf, jump_back=math.inf, future_tolerance=math.inf)
        self.ego, self.actors = StateHistory(exact), StateHistory(exact)
        self.skipped = 0
        self._info: dict[int, ActorInfo] = {}
        for _, msg in odometry:
            try:
                self.ego.add(odometry_frame(msg, world_frame, base_frame))
            except SampleError:
                self.skipped += 1
        for _, msg in messages.get(actors_topic, []):
            try:
                parsed = actor_frame(msg, world_frame)
                self.actors.add(parsed.frame)
                self._info.update(parsed.info)
            except SampleError:
                self.skipped += 1
        if self.ego.newest_ns is None:
            raise InputError(f"{path}: no usable {odometry_topic} message (frames {world_frame} -> {base_frame})")
        self.start_ns, self.end_ns = int(self.ego.oldest_ns), int(self.ego.newest_ns)
        self.source = str(path)

    def ego_at(self, t_ns: int) -> RigidMotion | None:
        q = self.ego.query(t_ns)
        return q.motions.get(EGO) if q.status == OK else None

    def actors_at(self, t_ns: int) -> dict[int, ScenarioActor]:
        if self.actors.newest_ns is None or not (self.actors.oldest_ns <= t_ns <= self.actors.newest_ns):
            return {}
        q = self.actors.query(t_ns)
        return {i: ScenarioActor(mo, self._info.get(i, ActorInfo("vehicle", (0.0, 0.0, 0.0))))
                for i, mo in sorted(q.motions.items())} if q.status == OK else {}


def load_scenario(path: str | Path, time_offset: float = 0.0, **bag_options: Any) -> Scenario:
    """A scenario from a world (world.yaml, its directory, or a drive directory holding world/) or a bag."""
    p = Path(path)
    for candidate in (p, p / "world.yaml", p / "world" / "world.yaml"):
        if candidate.is_file() and candidate.suffix in (".yaml", ".yml"):
            return WorldScenario(candidate, int(round(time_offset * NS)))
    if (p / "metadata.yaml").is_file() or p.suffix in (".mcap", ".db3"):
        return BagScenario(p, **bag_options)
    if (p / "bag" / "metadata.yaml").is_file():
        return BagScenario(p / "bag", **bag_options)
    raise InputError(f"{p}: not a scenario (expected world.yaml, a directory holding world/world.yaml, or a bag)")


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy().astype(np.float64)


def tick_outputs(scenario: Scenario, t_ns: int, world_frame: str = "map", base_frame: str = "base_link"
                 ) -> list[Output]:
    """Messages of the tick at t_ns in publishing order: ego/odometry, actors, /tf (the clock is separate). The
    ego is left out where the scenario has no ego state (outside a bag's span)."""
    out = []
    ego = scenario.ego_at(t_ns)
    if ego is not None:
        rot, pos = _np(ego.rotation), _np(ego.position)
        v_body, w_body = rot.T @ _np(ego.linear_velocity), rot.T @ _np(ego.angular_velocity)
        out.append(Output("ego/odometry", ODOMETRY, m.odometry(t_ns, rot, pos, v_body, w_body, world_frame,
                                                               base_frame)))
    states = []
    for actor_id, actor in scenario.actors_at(t_ns).items():
        rot = _np(actor.motion.rotation)
        states.append(m.ActorStateSpec(str(actor_id), actor.info.category, rot, _np(actor.motion.position),
                                       rot.T @ _np(actor.motion.linear_velocity),
                                       rot.T @ _np(actor.motion.angular_velocity), np.asarray(actor.info.size)))
    out.append(Output("actors", ACTORS, m.actor_state_array(t_ns, world_frame, states)))
    if ego is not None:
        out.append(Output("/tf", TF, m.tf_message([m.TransformSpec(t_ns, world_frame, base_frame, _np(ego.rotation),
                                                                   _np(ego.position))])))
    return out


def clock_output(t_ns: int) -> Output:
    return Output("/clock", CLOCK, m.clock(t_ns))


__all__ = ["BagScenario", "Frame", "Scenario", "WorldScenario", "clock_output", "load_scenario", "tick_outputs"]
