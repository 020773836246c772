"""`xsim replay`: re-render a recorded ROS 2 bag's sensors along an edited drive (xsim_render/replay/).

    xsim replay IN_BAG --scene SCENE --rig RIG --out OUT_BAG [edits] [--resume] [--validate]

Edits (repeatable, merged with --edits FILE): --ego-lateral-offset M [--ramp S], --ego-time-shift S,
--remove-actor ID, --shift-actor ID:dx,dy,dz, --time-shift-actor ID:S. OUT_BAG is written atomically (a failed
or interrupted run leaves no bag there, only its checkpoint `.OUT.replay-work/` for --resume); beside it
OUT_BAG.contact_sheet.png, and with --validate OUT_BAG.validation/. Bad input: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..errors import InputError
from .interrupt import StopSignals

PROG = "xsim replay"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `replay` on an argparse subparsers object; the handler is args.func = run."""
    from ..backends import BACKENDS
    from ..rosio.pointcloud import LAYOUTS

    p = subparsers.add_parser("replay", help="re-render a recorded bag's sensors along an edited drive",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path, metavar="IN_BAG", help="input rosbag2 (directory, mcap or sqlite3)")
    p.add_argument("--scene", required=True, help="scene: .ply file or native scene directory")
    p.add_argument("--rig", required=True, help="sensor rig YAML (may differ from the recorded one)")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_BAG", help="output bag directory (mcap)")
    e = p.add_argument_group("edits (repeatable; merged with --edits FILE, flags last)")
    e.add_argument("--edits", type=Path, metavar="FILE", help="YAML file of edits (docs/replay.md)")
    e.add_argument("--ego-lateral-offset", type=_seconds, metavar="M",
                   help="move the ego M metres to its left (negative: right), in its own frame along the path")
    e.add_argument("--ramp", type=_seconds, metavar="S", help="cosine ramp in and out of the offset (default 2 s; "
                                                              "0: constant offset)")
    e.add_argument("--ego-time-shift", type=_seconds, metavar="S",
                   help="the ego at t is where it was at t + S (longitudinal shift)")
    e.add_argument("--remove-actor", action="append", default=[], metavar="ID", help="leave actor ID out")
    e.add_argument("--shift-actor", action="append", default=[], metavar="ID:dx,dy,dz",
                   help="move actor ID by (dx, dy, dz) metres in the world frame")
    e.add_argument("--time-shift-actor", action="append", default=[], metavar="ID:S",
                   help="actor ID at t is where it was at t + S")
    t = p.add_argument_group("topics and frames")
    t.add_argument("--odometry-topic", default="", help="ego odometry topic (default: the topic ending in "
                                                        "ego/odometry)")
    t.add_argument("--actors-topic", default="", help="actor states topic (default: the topic ending in actors)")
    t.add_argument("--tf-topic", default="/tf", help="tf topic, used for the ego where there is no odometry")
    t.add_argument("--world-frame", default="map", help="world frame (default map)")
    t.add_argument("--base-frame", default="base_link", help="ego base frame (default base_link)")
    o = p.add_argument_group("output")
    o.add_argument("--backend", choices=BACKENDS, default="auto", help="renderer backend (default auto)")
    o.add_argument("--layout", choices=tuple(LAYOUTS), default="", help="PointCloud2 layout (default: as recorded)")
    o.add_argument("--unorganized", action="store_true", help="drop no-return points (default: as recorded)")
    o.add_argument("--world-from-scene", default="", metavar="PLACEMENT", help="place the scene in the world frame")
    o.add_argument("--force", action="store_true", help="replace an existing OUT_BAG (once the new one is done)")
    o.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    o.add_argument("--contact-rows", type=int, default=4, metavar="N", help="rows of the contact sheet (0: none)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    v = p.add_argument_group("ground truth (bags written by xsim synth)")
    v.add_argument("--validate", action="store_true",
                   help="render the exact ray-traced truth of the edited drive and score the replay against it")
    v.add_argument("--world", type=Path, default=None, metavar="DIR",
                   help="--validate: the synth directory holding world/ (default: the bag's parent)")
    v.add_argument("--frames", type=int, default=3, metavar="K", help="--validate: captures per sensor (default 3)")

    def error(message: str):
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)

    p.error = error  # type: ignore[method-assign]
    p.set_defaults(func=run)
    return p


def build_edits(args: argparse.Namespace):
    """Edits of the command line: --edits FILE first, then the flags."""
    from ..replay import edits as ed

    out = ed.edits_from_yaml(args.edits) if args.edits is not None else ed.Edits()
    if args.ego_lateral_offset is not None:
        out.ego_lateral_offset = args.ego_lateral_offset
    if args.ramp is not None:
        out.ramp = args.ramp
    if args.ego_time_shift is not None:
        out.ego_time_shift = args.ego_time_shift
    out.remove_actors |= {ed._actor_id(a, "--remove-actor") for a in args.remove_actor}
    out.shift_actors.update(dict(ed.parse_shift(a) for a in args.shift_actor))
    out.time_shift_actors.update(dict(ed.parse_time_shift(a) for a in args.time_shift_actor))
    ed.check(out, "--ramp")
    return out


def check_out(out: Path, force: bool) -> None:
    """InputError unless OUT_BAG can be created (or replaced with --force)."""
    out = Path(os.path.abspath(out))
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: directory {out.parent} is not writable")
    if out.exists() and not force:
        raise InputError(f"--out {out}: exists already (use --force to replace it)")


def run(args: argparse.Namespace) -> int:
    """Execute `xsim replay`; returns 0, or raises InputError (one line, exit 2 in cli.main)."""
    from ..replay.rewrite import ReplayConfig, fps, replay
    from ..replay.trajectory import TopicOptions

    check_out(args.out, args.force)
    edits = build_edits(args)
    if args.frames < 1:
        raise InputError(f"--frames: must be >= 1, got {args.frames}")
    world_dir = None
    if args.validate:
        from ..replay.validate import find_world

        world_dir = find_world(args.bag, args.world)
    topics = TopicOptions(args.odometry_topic, args.actors_topic, args.tf_topic, args.world_frame, args.base_frame)
    config = ReplayConfig(args.bag, args.scene, args.rig, args.out, edits, topics, args.backend, args.layout,
                          False if args.unorganized else None, args.world_from_scene, args.resume, not args.quiet,
                          max(0, args.contact_rows), args.force)
    with StopSignals("xsim replay") as signals:
        config.stop = signals.check
        summary = replay(config)
    rates = fps(summary)
    per_sensor = ", ".join(f"{name} {t.captures} captures {rates[name]:.2f}/s" for name, t in summary.timings.items())
    print(f"wrote {summary.out} ({sum(summary.counts.values())} messages; {edits.describe()}; "
          f"{summary.rendered} captures rendered, {summary.reused} from the checkpoint, {summary.stale} refused; "
          f"{summary.wall_s:.1f} s wall{'; ' + per_sensor if per_sensor else ''})")
    if summary.history_resets:
        print(f"state history reset {summary.history_resets} time(s) (clock jumped backwards)")
    if summary.contact_sheet is not None:
        print(f"contact sheet {summary.contact_sheet}")
    if world_dir is not None:
        from ..replay.validate import format_table, validate_replay

        result = validate_replay(summary, world_dir, args.frames)
        print(format_table([result]))
        print(f"wrote {result['output']}")
    return 0
