"""`xsim replay-batch`: many replays as Ray tasks, one bag per task (manifest.py says what a batch holds).

Each task runs `replay()` of rewrite.py (the function `xsim replay` runs: one code path) on its bag, with the
resources its manifest entry declares (num_cpus = `cpus`, num_gpus = `gpus`, 1 by default for the cuda backend)
and torch using exactly `cpus` threads. Per bag:
  * an input error (unreadable or truncated bag, missing topic, ...) fails that bag only, with its one-line
    message; it is not retried (the task returns it as a result, it does not raise);
  * a worker lost during the task (killed, out of memory, node gone) is retried up to `max_retries` times by
    Ray; with `resume: true` the retry continues from the checkpoint the lost attempt left beside OUT;
  * the output is atomic (the replay writes a temporary directory beside OUT and renames it when complete): a
    failed bag leaves nothing at OUT; temporary directories of a killed attempt are removed before the retry
    and after the bag's last attempt.
Without an address a local Ray is started (num_cpus as given, a small object store, no dashboard, node address
127.0.0.1) and stopped at the end; with one, the driver connects to the running cluster and leaves it running.
Progress is a tqdm bar over finished tasks; the end is a table (bag, status, captures, wall time, error) and,
if asked, the same as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_utils import atomic_write_text
from .manifest import BatchJob, Manifest

# Test-only hook: "NAME:MARKER[;NAME2:MARKER2...]" makes the task of job NAME kill its own worker (SIGKILL) once,
# when the file MARKER does not exist yet (it is created first), so that the retry on worker loss can be tested.
KILL_ONCE_ENV = "XSIM_REPLAY_BATCH_TEST_KILL_ONCE"


@dataclass
class BagResult:
    """The outcome of one job: status 'ok' or 'failed', captures written (and refused as stale), the task's wall
    time in s (the driver's time since submission for a lost worker), the one-line error, replay warnings."""

    name: str
    bag: str
    out: str
    status: str = "failed"
    captures: int = 0
    stale: int = 0
    wall_s: float = math.nan
    error: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class RayOptions:
    """How the driver gets a Ray cluster: `address` of a running head, or a local one of `num_cpus` CPUs."""

    address: str = ""
    num_cpus: int | None = None   # local Ray only; None = the machine's cores
    object_store_mb: int = 128    # local Ray only
    progress: bool = True


@dataclass
class BatchReport:
    """Every job's result (manifest order), the batch wall time in s and where Ray ran."""

    results: list[BagResult]
    wall_s: float
    address: str
    ray_start_s: float = math.nan   # ray.init (starting a local Ray, or connecting)

    @property
    def failed(self) -> int:
        return sum(r.status != "ok" for r in self.results)


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _strays(out: Path) -> list[Path]:
    """Temporary outputs beside OUT (io_utils naming: .<name>.<8 hex>.tmp...) left by a killed attempt."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.[0-9a-f]{{8}}\.tmp")
    try:
        return [p for p in out.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        return []


def remove_strays(out: Path) -> None:
    """Remove temporary outputs a killed attempt left beside OUT (never the checkpoint, never OUT)."""
    for p in _strays(out):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _test_kill_hook(name: str) -> None:
    for spec in os.environ.get(KILL_ONCE_ENV, "").split(";"):
        target, _, marker = spec.partition(":")
        if target == name and marker and not os.path.exists(marker):
            Path(marker).write_text(f"killed pid {os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)


def replay_job(job: BatchJob) -> BagResult:
    """Run one job's replay here (the body of a Ray task): torch threads = job.cpus; InputError and any other
    failure become a 'failed' result with a one-line error (so Ray does not retry them); warnings are kept."""
    import torch

    from .rewrite import replay

    threads = max(1, int(job.cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    config = job.config
    result = BagResult(job.name, str(config.bag), str(config.out))
    _test_kill_hook(job.name)
    remove_strays(Path(config.out))
    start = time.perf_counter()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            summary = replay(config)
        result.status = "ok"
        result.captures = summary.rendered + summary.reused - summary.stale
        result.stale = summary.stale
    except InputError as err:
        result.error = _one_line(err)
    except Exception as err:  # noqa: BLE001 - any failure of one bag is that bag's, reported, not raised
        result.error = _one_line(f"{type(err).__name__}: {err}")
    result.wall_s = time.perf_counter() - start
    result.warnings = [_one_line(line) for line in captured.getvalue().splitlines() if "warning" in line]
    return result


def is_loopback(address: str) -> bool:
    """Whether a Ray address ('' = a local Ray to start, 'HOST:PORT', 'ray://HOST:PORT', 'auto') is on this
    machine's loopback interface."""
    if not address:
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _import_ray(loopback: bool) -> Any:
    """Import ray with this project's settings: no usage reports; for a local Ray (or one on 127.0.0.1), every
    Ray process and this driver on the loopback address (Ray otherwise replaces 127.0.0.1 by the machine's
    routable address; the switch is read at import). Workers inherit the environment."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if loopback and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    return ray


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """InputError unless the head at a 'HOST:PORT' address (also 'ray://HOST:PORT') accepts a TCP connection
    (ray.init would retry an unreachable address for ever). Other forms ('auto') are left to Ray."""
    import socket

    text = address.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise InputError(f"--address {address}: cannot connect ({_one_line(err.strerror or err, 200)})") from None


def _start_ray(options: RayOptions) -> str:
    """ray.init for the options; returns the address used ('local' for a local Ray). InputError if impossible."""
    if options.address:
        check_reachable(options.address)
    ray = _import_ray(is_loopback(options.address))
    common: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if options.address:
            ray.init(address=options.address, **common)
            return options.address
        ray.init(num_cpus=options.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=options.object_store_mb * 2**20, _node_ip_address="127.0.0.1", **common)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        where = f"--address {options.address}" if options.address else "local Ray"
        hint = ("; a cluster with token authentication needs RAY_AUTH_MODE=token and its token"
                if options.address and "RAY_AUTH_MODE" not in os.environ else "")
        raise InputError(f"{where}: cannot start or connect ({_one_line(err, 200)}){hint}") from None
    return "local"


def _fits(job: BatchJob, nodes: list[dict[str, float]]) -> bool:
    """Whether some live node offers the task's CPUs and GPUs (a task no node can hold would wait for ever)."""
    return any(res.get("CPU", 0.0) >= job.cpus and res.get("GPU", 0.0) >= job.gpus for res in nodes)


def _describe(nodes: list[dict[str, float]]) -> str:
    return ", ".join(f"{res.get('CPU', 0.0):g} CPU / {res.get('GPU', 0.0):g} GPU" for res in nodes) or "none"


def _lost(job: BatchJob, err: Exception, submitted: float) -> BagResult:
    """The result of a task Ray gave up on (worker lost more often than max_retries allows, cancelled, ...)."""
    kind = type(err).__name__
    first = next((line for line in str(err).splitlines() if line.strip()), "")
    result = BagResult(job.name, str(job.config.bag), str(job.config.out))
    result.error = _one_line(f"{kind} after {job.max_retries + 1} attempt(s): {first}")
    result.wall_s = time.perf_counter() - submitted
    remove_strays(Path(job.config.out))
    return result


def run_batch(manifest: Manifest, options: RayOptions) -> BatchReport:
    """Run every job of the manifest on Ray (module docstring); returns the results in manifest order. What Ray
    itself prints while it runs (worker deaths, retries) goes to stderr, so stdout holds only the table."""
    with contextlib.redirect_stdout(sys.stderr):
        return _run(manifest, options)


def _run(manifest: Manifest, options: RayOptions) -> BatchReport:
    ray = _import_ray(is_loopback(options.address))
    jobs = manifest.jobs
    if not options.address and options.num_cpus is not None and manifest.max_cpus > options.num_cpus:
        raise InputError(f"{manifest.path}: field 'cpus': {manifest.max_cpus:g} per task is more than the local "
                         f"Ray's --num-cpus {options.num_cpus}")
    start = time.perf_counter()
    address = _start_ray(options)
    ray_start_s = time.perf_counter() - start
    bar = None
    try:
        task = ray.remote(replay_job)
        refs: dict[Any, int] = {}
        submitted: dict[int, float] = {}
        results: list[BagResult | None] = [None] * len(jobs)
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        for i, job in enumerate(jobs):
            if not _fits(job, nodes):
                results[i] = BagResult(job.name, str(job.config.bag), str(job.config.out), error=(
                    f"no node of the Ray cluster has {job.cpus:g} CPU(s) and {job.gpus:g} GPU(s) for this task "
                    f"(nodes: {_describe(nodes)})"))
                continue
            opts: dict[str, Any] = {"num_cpus": job.cpus, "max_retries": job.max_retries, "retry_exceptions": False,
                                    "name": f"replay {job.name}"}
            if job.gpus:
                opts["num_gpus"] = job.gpus
            refs[task.options(**opts).remote(job)] = i
            submitted[i] = time.perf_counter()
        if options.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc="replay-batch", unit="bag", file=sys.stderr, dynamic_ncols=True)
            bar.update(len(jobs) - len(refs))
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = refs[ref]
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as err:
                    res = _lost(jobs[i], err, submitted[i])
                results[i] = res
                if bar is not None:
                    bar.update(1)
                    if res.status != "ok":
                        bar.write(f"{res.name}: failed: {res.error}", file=sys.stderr)
    except KeyboardInterrupt:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        if bar is not None:
            bar.close()
        ray.shutdown()
    return BatchReport([r for r in results if r is not None], time.perf_counter() - start, address, ray_start_s)


def format_table(report: BatchReport) -> str:
    """The end-of-batch table: bag, status, captures, wall time, error; and a totals line."""
    rows = [(r.name, r.status, str(r.captures), "-" if math.isnan(r.wall_s) else f"{r.wall_s:.1f}", r.error)
            for r in report.results]
    head = ("bag", "status", "captures", "wall s", "error")
    widths = [max(len(head[c]), *(len(row[c]) for row in rows)) for c in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:4], widths)) + "  " + head[4]]
    for row in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row[:4], widths)) + "  " + row[4])
    ok = len(report.results) - report.failed
    lines.append(f"{ok} of {len(report.results)} bags ok, {report.failed} failed; {report.wall_s:.1f} s wall "
                 f"(ray: {report.address})")
    return "\n".join(lines)


def write_json(report: BatchReport, path: Path, manifest: Manifest) -> None:
    """The summary as JSON (atomic): manifest, address, wall time, counts and every bag's result."""
    def clean(r: BagResult) -> dict[str, Any]:
        d = asdict(r)
        d["wall_s"] = None if math.isnan(r.wall_s) else round(r.wall_s, 3)
        return d

    doc = {"manifest": os.path.abspath(manifest.path), "address": report.address, "wall_s": round(report.wall_s, 3),
           "ray_start_s": round(report.ray_start_s, 3), "ok": len(report.results) - report.failed,
           "failed": report.failed,
           "bags": [clean(r) for r in report.results]}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


__all__ = ["BagResult", "BatchReport", "RayOptions", "format_table", "remove_strays", "replay_job", "run_batch",
           "write_json"]
