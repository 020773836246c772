"""`xsim replay-batch`: many bag replays as Ray tasks, one bag per task (xsim_render/replay/batch.py).

    xsim replay-batch MANIFEST.yaml [--address ADDRESS] [--num-cpus N] [--json PATH] [--quiet]

The manifest (docs/replay.md) holds defaults and a list of jobs (in bag, out bag, per-job overrides); it is
validated in full before Ray starts (bad manifest: one line, exit code 2). Without --address a local Ray is
started and stopped; with it, the running cluster is used. Exit code 0 when every bag succeeded, 1 when any
failed (each failure is in the table with its one-line error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError

PROG = "xsim replay-batch"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `replay-batch` on an argparse subparsers object; the handler is args.func = run."""
    p = subparsers.add_parser("replay-batch", help="replay many bags as Ray tasks (one bag per task)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", type=Path, metavar="MANIFEST.yaml", help="batch manifest (docs/replay.md)")
    p.add_argument("--address", default="", metavar="ADDRESS",
                   help="address of a running Ray head (default: start a local Ray and stop it at the end)")
    p.add_argument("--num-cpus", type=_positive_int, default=None, metavar="N",
                   help="local Ray only: CPUs it may use (default: the machine's cores)")
    p.add_argument("--object-store-mb", type=_positive_int, default=128, metavar="MB",
                   help="local Ray only: object store size (default 128 MiB)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    def error(message: str):
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)

    p.error = error  # type: ignore[method-assign]
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute `xsim replay-batch`: 0 when every bag succeeded, 1 when any failed; InputError (exit 2) for a bad
    manifest or options, raised before Ray starts."""
    from ..io_utils import check_output_file
    from ..replay.batch import RayOptions, format_table, run_batch, write_json
    from ..replay.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    if args.json is not None:
        check_output_file(args.json, "--json")
    if args.address and args.num_cpus is not None:
        raise InputError("--num-cpus: only for a local Ray (the cluster at --address has its own)")
    report = run_batch(manifest, RayOptions(args.address, args.num_cpus, args.object_store_mb, not args.quiet))
    for r in report.results:
        for warning in r.warnings:
            print(f"{r.name}: {warning}", file=sys.stderr)
    print(format_table(report))
    if args.json is not None:
        write_json(report, args.json, manifest)
        print(f"wrote {args.json}")
    return 0 if report.failed == 0 else 1
