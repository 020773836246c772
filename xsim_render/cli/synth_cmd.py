"""`xsim synth`: generate a synthetic drive (world, rig, Gaussian twin, ROS 2 bag) or validate one.

    xsim synth --out DIR [--seed N] [--duration S] [--preset small|default] [--layout L] [--unorganized] [--force]
    xsim synth --validate DIR [--frames K]

An existing non-empty --out directory is refused unless --force (then it is replaced, but only once the new
drive is complete). Bad arguments and unwritable paths print one line `xsim synth: error: ...` on stderr and
exit with code 2; nothing is left behind (the output is written to a temporary directory and renamed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..errors import InputError
from ..rosio.pointcloud import LAYOUTS

PRESETS = ("small", "default")
PROG = "xsim synth"


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def _int_at_least(minimum: int):
    """argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
        return value

    return parse


def _one_line_error(parser: argparse.ArgumentParser):
    def error(message: str):
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)

    return error


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `synth` on an argparse subparsers object; the handler is args.func = run."""
    p = subparsers.add_parser("synth", help="generate a synthetic drive as a ROS 2 bag, or validate one",
                              description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, metavar="DIR",
                      help="output directory (bag/, rig.yaml, scene/, world/ with overview.png)")
    mode.add_argument("--validate", type=Path, metavar="DIR", help="render the twin of DIR and compare with its bag")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="world seed (default 0)")
    p.add_argument("--duration", type=_duration, default=3.0, help="drive length in seconds (default 3)")
    p.add_argument("--preset", choices=PRESETS, default="small", help="world and rig size (default small)")
    p.add_argument("--layout", choices=tuple(LAYOUTS), default="xyzircaedt", help="PointCloud2 layout")
    p.add_argument("--unorganized", action="store_true",
                   help="drop no-return points (is_dense) instead of organized beams x columns clouds")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out directory")
    p.add_argument("--frames", type=_int_at_least(1), default=3, help="--validate: captures per sensor (default 3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.error = _one_line_error(p)  # type: ignore[method-assign]
    p.set_defaults(func=run)
    return p


def check_out_dir(out: Path, force: bool) -> None:
    """Raise InputError unless `out` can be created (or replaced with force) in a writable parent."""
    out = Path(os.path.abspath(out))
    parent = out.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: parent directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: parent directory {parent} is not writable")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"--out {out}: directory exists and is not empty (use --force to replace it)")


def _fail(message: str) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Execute `xsim synth`; returns the process exit code (0 ok, 2 bad input)."""
    if args.validate is not None:
        from ..synth.validate import print_table, validate

        try:
            result = validate(args.validate, frames=args.frames)
        except InputError as err:
            return _fail(str(err))
        print_table(result)
        return 0

    from ..synth.export import generate_drive

    try:
        check_out_dir(args.out, args.force)
        summary = generate_drive(args.out, preset=args.preset, seed=args.seed, duration=args.duration,
                                 layout=args.layout, progress=not args.quiet, organized=not args.unorganized)
    except InputError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"--out {args.out}: cannot write ({err.strerror or err})")
    total = sum(summary.counts.values())
    print(f"wrote {summary.out_dir} ({total} messages in bag/, {sum(summary.timings_s.values()):.1f} s)")
    return 0
