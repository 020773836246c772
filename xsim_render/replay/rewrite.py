"""The second pass: stream the recorded bag in log-time order and write the replayed bag.

Per message of the input (in the order the reader gives, i.e. by log time):
  * ego source (odometry, or the base_frame transforms of /tf): the edited ego state goes to the SensorEngine
    (sim/engine.py: the sensor_sim node's state histories, interpolation, extrapolation and packing); the
    edited odometry / tf message is written (unchanged bytes when there is no ego edit);
  * actors: edited (removed / shifted / time-shifted) and given to the engine; written;
  * `/clock`: given to the engine (a jump backwards resets its histories, as in the node); copied;
  * a recorded sensor message of a rig sensor: the first message of a capture (its header stamp) renders that
    capture with the states known by then (engine.capture, as the node renders a capture); the recorded message
    is replaced by the rendered one of the same topic kind at the same log time. Recorded sensor topics of
    sensors the rig does not have are dropped;
  * rig sensors without a recorded topic capture at the rig rate, t_n = n / rate inside each epoch's ego span,
    once the ego state of the capture's end is known; written at that log time on new topics
    (<namespace>sensing/...);
  * `/tf_static`: copied, unless the rig's sensor frames differ from the recorded ones (then rewritten with the
    rig's extrinsics, other transforms kept);
  * everything else: copied byte for byte (same connection: type, definition, hash, QoS profiles; same log time).
A capture the engine refuses (no ego state within max_state_age) is left out and counted.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, OutputError
from ..io_utils import cannot_write
from ..rosio.bag import BagWriter
from ..sensors.rig import CameraSpec, Rig
from ..sim.capture import sensor_topics, serialize, static_transforms
from ..sim.engine import EngineConfig, SensorEngine, load_assets
from ..sim.schedule import SensorRate
from ..states.sample import NS
from .apply import EditedDrive
from .checkpoint import Checkpoint, Outputs, bag_stamp, file_digest
from .edits import Edits
from .trajectory import (
    CAMERA_INFO,
    IMAGE,
    POINTCLOUD,
    TF,
    BagScan,
    EpochCounter,
    TfChain,
    TopicOptions,
    open_reader,
    raw_stamp,
    scan_bag,
    stamp_ns,
)

KIND_OF_TYPE = {IMAGE: "image_raw", CAMERA_INFO: "camera_info", POINTCLOUD: "pointcloud"}
CLOCK = "rosgraph_msgs/msg/Clock"


@dataclass
class ReplayConfig:
    """Inputs and options of one replay (see cli/replay_cmd.py for the flags)."""

    bag: Path
    scene: str
    rig: str
    out: Path
    edits: Edits = field(default_factory=Edits)
    topics: TopicOptions = field(default_factory=TopicOptions)
    backend: str = "auto"
    layout: str = ""            # '' = the recorded clouds' layout (xyzircaedt when none is recorded)
    organized: bool | None = None  # None = as recorded (organized when none is recorded)
    world_from_scene: str = ""
    resume: bool = False
    progress: bool = True
    contact_rows: int = 4
    overwrite: bool = False     # replace an existing OUT (once the new bag is complete)
    stop: Callable[[], None] | None = None  # called between captures and messages; raises to stop the replay


@dataclass
class SensorTiming:
    captures: int = 0
    render_s: float = 0.0


@dataclass
class ReplaySummary:
    """What a replay wrote: message counts by topic, captures rendered / reused from the checkpoint / refused,
    render time per sensor, wall time, the contact sheet path."""

    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    rendered: int = 0
    reused: int = 0
    stale: int = 0
    timings: dict[str, SensorTiming] = field(default_factory=dict)
    wall_s: float = 0.0
    contact_sheet: Path | None = None
    history_resets: int = 0
    scan: BagScan | None = None
    drive: EditedDrive | None = None
    rig: str = ""


def _layout(scan: BagScan, config: ReplayConfig) -> tuple[str, bool]:
    from ..rosio.pointcloud import layout_of

    layout, organized = config.layout, config.organized
    first = next(iter(scan.cloud_fields.values()), None)
    if not layout:
        layout = (layout_of(first.fields) if first is not None else None) or "xyzircaedt"
    if organized is None:
        organized = True if first is None else int(first.height) > 1
    return layout, organized


def fingerprint(config: ReplayConfig, layout: str, organized: bool) -> dict[str, Any]:
    return {"bag": str(config.bag.resolve()), "bag_files": bag_stamp(config.bag),
            "scene": str(Path(config.scene).resolve()), "rig": file_digest(config.rig),
            "edits": config.edits.to_dict(), "topics": dataclasses.asdict(config.topics), "layout": layout,
            "organized": organized, "world_from_scene": config.world_from_scene}


class _Captures:
    """Render-or-reuse of captures, with the checkpoint, the progress bar and per-sensor timings."""

    def __init__(self, engine: SensorEngine, checkpoint: Checkpoint, summary: ReplaySummary, bar: Any,
                 stop: Callable[[], None]) -> None:
        self.engine, self.checkpoint, self.summary, self.bar = engine, checkpoint, summary, bar
        self.stop = stop  # ReplayConfig.stop (a no-op where none was given)

    def get(self, sensor: str, epoch: int, start_ns: int) -> Outputs:
        self.stop()
        key = f"{sensor}.{epoch}.{start_ns}"
        done = self.checkpoint.load(key)
        if done is not None:
            outputs, stale = done
            self.summary.reused += 1
        else:
            result = self.engine.capture(sensor, start_ns)
            stale = result.stale
            outputs = {o.topic.rsplit("/", 1)[-1]: (o.msgtype, serialize(o.msgtype, o.message))
                       for o in result.outputs}
            self.checkpoint.save(key, outputs, stale)
            self.summary.rendered += 1
            timing = self.summary.timings.setdefault(sensor, SensorTiming())
            if not stale:
                timing.captures += 1
                timing.render_s += result.render_s
        if stale:
            self.summary.stale += 1
            print(f"xsim replay: warning: {sensor} capture at {start_ns / NS:.9f} s not rendered: {stale}",
                  file=sys.stderr)
        if self.bar is not None:
            self.bar.update(1)
        return {} if stale else outputs


def _static_differs(rig: Rig, msg: Any, dropped: set[str]) -> bool:
    """Whether a recorded /tf_static lacks a rig sensor frame, holds it with other extrinsics, or holds the frame
    of a dropped sensor (recorded, not in the rig)."""
    from ..rosio.messages import matrix_from_xyzw
    from ..sim.capture import sensor_frame

    recorded = {tr.child_frame_id.lstrip("/"): tr.transform for tr in msg.transforms}
    if any(name in dropped or name.removesuffix("_optical_frame") in dropped for name in recorded):
        return True
    for spec in rig.sensors:
        tr = recorded.get(sensor_frame(spec))
        if tr is None:
            return True
        rot, trans = spec.extrinsics.matrix()
        t = tr.transform if hasattr(tr, "transform") else tr
        if (np.abs(matrix_from_xyzw(t.rotation) - rot.numpy()).max() > 1e-9
                or np.abs(np.array([t.translation.x, t.translation.y, t.translation.z]) - trans.numpy()).max() > 1e-9):
            return True
    return False


def _rig_static(rig: Rig, msg: Any, base_frame: str, dropped: set[str]) -> Any:
    """A recorded /tf_static with the rig's sensor frames (rig extrinsics) in place of the recorded ones and
    without the frames of dropped sensors."""
    from ..sim.capture import sensor_frame

    frames = {sensor_frame(s) for s in rig.sensors} | dropped | {f"{d}_optical_frame" for d in dropped}
    stamp = stamp_ns(msg.transforms[0].header.stamp) if msg.transforms else 0
    ours = static_transforms(rig, base_frame, stamp)
    keep = [tr for tr in msg.transforms if tr.child_frame_id.lstrip("/") not in frames]
    return keep + list(ours.transforms)


def replay(config: ReplayConfig) -> ReplaySummary:
    """Replay config.bag into config.out (atomically; see the module docstring). InputError on bad input."""
    t_wall = time.perf_counter()
    scan = scan_bag(config.bag, config.topics)
    assets = load_assets(config.scene, config.rig, config.world_from_scene)
    rig = assets.rig
    if (config.edits.edits_actors and scan.actors_topic is None):
        raise InputError(f"{config.bag}: topic actors: no xsim_msgs/ActorStateArray topic to apply the actor "
                         f"edits to")
    layout, organized = _layout(scan, config)
    engine = SensorEngine(assets, EngineConfig(world_frame=config.topics.world_frame,
                                               base_frame=config.topics.base_frame, backend=config.backend,
                                               point_format=layout, organized=organized))
    drive = EditedDrive(scan.epochs, config.edits, config.topics.base_frame)
    summary = ReplaySummary(Path(config.out), scan=scan, drive=drive, rig=str(config.rig))
    rig_names = {s.name for s in rig.sensors}
    recorded = {s for s in scan.capture_stamps if s in rig_names}
    rate_starts: dict[str, list[list[int]]] = {}
    for spec in rig.sensors:
        if spec.name in recorded:
            continue
        rate = SensorRate(spec.name, spec.rate_hz, spec.capture_duration)
        per_epoch = []
        for ep in scan.epochs:
            if ep.ego.newest_ns is None:
                per_epoch.append([])
                continue
            last = ep.end_ns - int(round(spec.capture_duration * NS))
            n0, n1 = rate.last_index_at(ep.start_ns - 1) + 1, rate.last_index_at(last)
            per_epoch.append([rate.start_ns(n) for n in range(n0, n1 + 1)])
        rate_starts[spec.name] = per_epoch
    total = sum(len(scan.capture_stamps[s]) for s in recorded) + sum(
        len(x) for v in rate_starts.values() for x in v)
    checkpoint = Checkpoint(Path(config.out), fingerprint(config, layout, organized), config.resume)
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="replay", unit="capture", file=sys.stderr, dynamic_ncols=True)
    captures = _Captures(engine, checkpoint, summary, bar, config.stop or (lambda: None))
    sheet_stamps = {s: scan.capture_stamps[s] for s in recorded}
    sheet_stamps.update({s: [(k, t) for k, v in enumerate(per) for t in v] for s, per in rate_starts.items()})
    sheet = _SheetCollector(rig, sheet_stamps, config.contact_rows)
    try:
        with BagWriter(config.out, overwrite=config.overwrite) as writer:
            _stream(config, scan, rig, engine, drive, writer, captures, rate_starts, sheet)
        summary.counts = {str(k): v for k, v in writer.counts.items()}
    except OutputError:
        raise
    except OSError as err:  # disk full, file too large, ... while writing the bag
        raise cannot_write(config.out, err) from None
    finally:
        if bar is not None:
            bar.close()
    summary.history_resets = engine.counts_snapshot().get("history_reset", 0)
    checkpoint.remove()
    if config.contact_rows > 0:
        summary.contact_sheet = sheet.write(Path(str(config.out) + ".contact_sheet.png"))
    summary.wall_s = time.perf_counter() - t_wall
    return summary


def _stream(config: ReplayConfig, scan: BagScan, rig: Rig, engine: SensorEngine, drive: EditedDrive,
            writer: BagWriter, captures: _Captures, rate_starts: dict[str, list[list[int]]],
            sheet: _SheetCollector) -> None:
    topics_opt = config.topics
    edits = config.edits
    stop = captures.stop
    reader = open_reader(config.bag)
    try:
        store = reader.typestore
        rig_names = {s.name for s in rig.sensors}
        dropped = {st.sensor for st in scan.sensor_topics.values() if st.sensor not in rig_names}
        keys: dict[int, Any] = {}
        # output connections: every input connection but dropped sensor topics, plus new sensor topics
        recorded_kinds: dict[str, dict[str, str]] = {}
        for conn in reader.connections:
            st = scan.sensor_topics.get(conn.topic)
            if st is not None and st.sensor not in rig_names:
                print(f"xsim replay: warning: {conn.topic} dropped (no sensor {st.sensor!r} in the rig)",
                      file=sys.stderr)
                continue
            if st is not None:
                recorded_kinds.setdefault(st.sensor, {})[st.kind] = conn.topic
            key = ("conn", conn.id)
            keys[conn.id] = key
            ext = conn.ext
            writer.add_connection_like(key, conn.topic, conn.msgtype, msgdef=conn.msgdef.data, rihs01=conn.digest,
                                       serialization_format=getattr(ext, "serialization_format", "cdr"),
                                       offered_qos=list(getattr(ext, "offered_qos_profiles", []) or []))
        new_topics: dict[str, dict[str, Any]] = {}
        for spec in rig.sensors:
            kinds = recorded_kinds.get(spec.name, {})
            prefix = scan.namespace
            for kind, topic in kinds.items():
                rel = next(r for r in sensor_topics(spec) if r.endswith("/" + kind))
                prefix = topic[: len(topic) - len(rel)]
            for rel, msgtype in sensor_topics(spec).items():
                kind = rel.rsplit("/", 1)[-1]
                if kind not in kinds:
                    topic = (prefix if prefix.endswith("/") else prefix + "/") + rel
                    key = ("new", topic)
                    writer.add_connection_like(key, topic, msgtype)
                    new_topics.setdefault(spec.name, {})[kind] = key

        ego_epochs, actor_epochs, tf_epochs = EpochCounter(), EpochCounter(), EpochCounter()
        sensor_epochs: dict[str, EpochCounter] = {}
        chain = TfChain(topics_opt.world_frame, topics_opt.base_frame)
        pending: dict[tuple[str, int, int], tuple[Outputs, set[str]]] = {}
        rate_next = {name: [0] * len(v) for name, v in rate_starts.items()}
        static_rewrite: bool | None = None

        def write_new(sensor: str, outputs: Outputs, log_ns: int) -> None:
            for kind, key in new_topics.get(sensor, {}).items():
                if kind in outputs:
                    writer.write_raw(key, outputs[kind][1], log_ns)

        def rate_captures(k: int, log_ns: int) -> None:
            newest = engine.ego.newest_ns
            if newest is None:
                return
            for name, per_epoch in rate_starts.items():
                if k >= len(per_epoch):
                    continue
                spec = rig.sensor(name)
                starts, i = per_epoch[k], rate_next[name][k]
                while i < len(starts) and starts[i] + int(round(spec.capture_duration * NS)) <= newest:
                    outputs = captures.get(name, k, starts[i])
                    write_new(name, outputs, log_ns)
                    sheet.replayed(name, k, starts[i], outputs)
                    i += 1
                rate_next[name][k] = i

        for conn, log_ns, raw in reader.messages(connections=[c for c in reader.connections if c.id in keys]):
            stop()
            key, topic, msgtype = keys[conn.id], conn.topic, conn.msgtype
            if topic == scan.ego_topic and scan.ego_source == "odometry":
                msg = reader.deserialize(raw, msgtype)
                k = ego_epochs.see(stamp_ns(msg.header.stamp))
                if edits.edits_ego:
                    msg = drive.odometry(k, msg)
                    raw = store.serialize_cdr(msg, msgtype)
                engine.add_odometry(msg)
                writer.write_raw(key, raw, log_ns)
                rate_captures(k, log_ns)
            elif topic == topics_opt.tf_topic and msgtype == TF:
                msg = reader.deserialize(raw, msgtype)
                k = 0
                for stamp in chain.add(msg):
                    if scan.ego_source == "tf":
                        if chain.pose() is None:
                            continue
                        k = ego_epochs.see(stamp)
                        engine.add_odometry(drive.odometry_from_sample(k, stamp, topics_opt.world_frame))
                    else:
                        k = tf_epochs.see(stamp)
                if edits.edits_ego and any(tr.child_frame_id.lstrip("/") == drive.base_frame
                                           for tr in msg.transforms):
                    raw = store.serialize_cdr(drive.tf(k, msg), msgtype)
                writer.write_raw(key, raw, log_ns)
                if scan.ego_source == "tf":
                    rate_captures(k, log_ns)
            elif topic == scan.actors_topic:
                msg = reader.deserialize(raw, msgtype)
                k = actor_epochs.see(stamp_ns(msg.header.stamp))
                if edits.edits_actors:
                    msg = drive.actors(k, msg)
                    raw = store.serialize_cdr(msg, msgtype)
                engine.add_actors(msg)
                writer.write_raw(key, raw, log_ns)
            elif topic in scan.sensor_topics:
                st = scan.sensor_topics[topic]
                stamp = raw_stamp(raw)
                if stamp is None:
                    stamp = stamp_ns(reader.deserialize(raw, msgtype).header.stamp)
                k = sensor_epochs.setdefault(f"{st.sensor}/{st.kind}", EpochCounter()).see(stamp)
                capture = (st.sensor, k, stamp)
                if capture not in pending:
                    outputs = captures.get(st.sensor, k, stamp)
                    pending[capture] = (outputs, set(recorded_kinds[st.sensor]))
                    write_new(st.sensor, outputs, log_ns)
                    sheet.replayed(st.sensor, k, stamp, outputs)
                outputs, left = pending[capture]
                sheet.original(st.sensor, k, stamp, st.kind, lambda raw=raw, msgtype=msgtype:
                               reader.deserialize(raw, msgtype))
                if st.kind in outputs:
                    writer.write_raw(key, outputs[st.kind][1], log_ns)
                left.discard(st.kind)
                if not left:
                    del pending[capture]
            elif topic.rstrip("/").endswith("tf_static") and msgtype == TF:
                msg = reader.deserialize(raw, msgtype)
                if static_rewrite is None:
                    static_rewrite = _static_differs(rig, msg, dropped)
                if static_rewrite:
                    msg = dataclasses.replace(msg, transforms=_rig_static(rig, msg, topics_opt.base_frame, dropped))
                    raw = store.serialize_cdr(msg, msgtype)
                writer.write_raw(key, raw, log_ns)
            else:
                if msgtype == CLOCK:
                    engine.clock(stamp_ns(reader.deserialize(raw, msgtype).clock))
                writer.write_raw(key, raw, log_ns)
        for name, per_epoch in rate_starts.items():  # captures after the last ego state (none when spans align)
            for k, starts in enumerate(per_epoch):
                for start in starts[rate_next[name][k]:]:
                    outputs = captures.get(name, k, start)
                    write_new(name, outputs, start + int(round(rig.sensor(name).capture_duration * NS)))
        stop()  # last chance: a stop requested before the bag is committed leaves no bag
    except InputError:
        raise
    except (KeyboardInterrupt, OSError):
        raise
    except Exception as err:  # noqa: BLE001 - a reader failure in the middle of the bag (truncated chunk)
        if type(err).__module__.startswith("rosbags"):
            raise InputError(f"{config.bag}: cannot read bag ({' '.join(str(err).split())[:200]})") from None
        raise
    finally:
        reader.close()


class _SheetCollector:
    """Original and replayed frames of a few captures per sensor (evenly spread) for the contact sheet."""

    def __init__(self, rig: Rig, stamps: dict[str, list[tuple[int, int]]], rows: int) -> None:
        self.rig = rig
        self.picks: dict[str, list[tuple[int, int]]] = {}
        for name, items in stamps.items():
            if items and rows > 0:
                idx = sorted({int(round(x)) for x in np.linspace(0, len(items) - 1, min(rows, len(items)))})
                self.picks[name] = [items[i] for i in idx]
        self.originals: dict[tuple[str, int, int], Any] = {}
        self.replays: dict[tuple[str, int, int], Any] = {}

    def _wanted(self, sensor: str, k: int, stamp: int) -> bool:
        return (k, stamp) in self.picks.get(sensor, [])

    def original(self, sensor: str, k: int, stamp: int, kind: str, load: Any) -> None:
        if kind != "camera_info" and self._wanted(sensor, k, stamp):
            self.originals[(sensor, k, stamp)] = load()

    def replayed(self, sensor: str, k: int, stamp: int, outputs: Outputs) -> None:
        if not self._wanted(sensor, k, stamp):
            return
        from ..rosio.typestore import typestore

        for kind, (msgtype, data) in outputs.items():
            if kind != "camera_info":
                self.replays[(sensor, k, stamp)] = typestore().deserialize_cdr(data, msgtype)

    def write(self, path: Path) -> Path | None:
        from ..rosio.image import float_from_image
        from ..rosio.pointcloud import unpack_cloud
        from ..sim.report import bev_image
        from ..viz.images import contact_sheet

        names = [s.name for s in self.rig.sensors if self.picks.get(s.name)]
        if not names:
            return None
        rows = max(len(self.picks[n]) for n in names)
        blank = np.zeros((240, 240, 3))
        tiles = []
        for r in range(rows):
            for name in names:
                spec = self.rig.sensor(name)
                picks = self.picks[name]
                key = (name, *picks[min(r, len(picks) - 1)])
                t = key[2] / NS
                for label, msg in (("original", self.originals.get(key)), ("replayed", self.replays.get(key))):
                    if msg is None:
                        tiles.append((f"{name} {label} t={t:.2f} s: none", blank))
                    elif isinstance(spec, CameraSpec):
                        tiles.append((f"{name} {label} t={t:.2f} s", float_from_image(msg)))
                    else:
                        tiles.append((f"{name} {label} t={t:.2f} s (BEV)", bev_image(unpack_cloud(msg)["xyz"])))
        contact_sheet(path, tiles, columns=2 * len(names))
        return path


def fps(summary: ReplaySummary) -> dict[str, float]:
    """Captures per second of render time, per sensor."""
    return {name: (t.captures / t.render_s if t.render_s > 0 else math.nan) for name, t in summary.timings.items()}


__all__ = ["ReplayConfig", "ReplaySummary", "fps", "replay"]
