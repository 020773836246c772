"""`xsim` command line: subcommands render, synth, replay, replay-batch, launch, doctor.

Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from . import doctor_cmd, launch_cmd, render_cmd, replay_batch_cmd, replay_cmd, synth_cmd
from .interrupt import Stopped


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xsim", description="XSIM-ROS sensor simulator tools")
    sub = parser.add_subparsers(dest="command", required=True)
    render_cmd.add_parser(sub)
    synth_cmd.add_parser(sub)
    replay_cmd.add_parser(sub)
    replay_batch_cmd.add_parser(sub)
    launch_cmd.add_parser(sub)
    doctor_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"xsim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Stopped as stop:  # SIGINT / SIGTERM honoured at a safe point (cli/interrupt.py)
        return 128 + stop.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
