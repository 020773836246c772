"""The manifest of `xsim replay-batch`: shared defaults and a list of replay jobs (one bag each), validated in full.

    defaults:                      # every key optional here; any job may override any of them
      scene: scene/                # .ply file or native scene directory          (required: here or per job)
      rig: rig.yaml                # sensor rig YAML                              (required: here or per job)
      edits: {ego_lateral_offset: 3.0, ramp: 2.0}   # the edits file's keys, or the path of an edits YAML file
      backend: auto                # reference | cpu | cuda | auto
      cpus: 1                      # CPUs declared per task (= torch threads in the task)
      gpus: 0                      # GPUs declared per task (default 1 when backend is cuda, else 0)
      max_retries: 3               # re-runs of a task whose worker died (never for input errors)
      layout: ''                   # PointCloud2 layout ('' = as recorded)
      unorganized: false           # drop no-return points
      world_from_scene: ''         # scene placement (as --world-from-scene)
      contact_rows: 4              # rows of OUT.contact_sheet.png (0: none)
      force: false                 # replace an existing OUT
      resume: false                # continue from a checkpoint beside OUT (also on a retry after a worker died)
      odometry_topic: ''           # topics and frames, as the `xsim replay` flags of the same names
      actors_topic: ''
      tf_topic: /tf
      world_frame: map
      base_frame: base_link
    jobs:
      - in: bags/drive_000         # input bag (required)
        out: out/drive_000         # output bag directory (required; unique, not an input)
        name: drive_000            # optional label (default: the input's name; unique)
        edits: {remove_actors: [3]}   # merged over defaults.edits, as flags over --edits FILE

Relative paths are taken from the manifest's directory. Every field is checked before anything runs (types,
unknown keys, inputs exist, rig files parse, outputs creatable and distinct): the first problem is an InputError
"MANIFEST: field 'jobs[2].out': ..." (one line; the CLI exits with code 2). The bags themselves are read only by
the tasks, so a bag that turns out unreadable fails its own job, not the batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_utils import read_yaml
from .edits import Edits, edits_from_mapping, edits_from_yaml
from .rewrite import ReplayConfig
from .trajectory import TopicOptions

DEFAULTS: dict[str, Any] = {
    "scene": None, "rig": None, "edits": None, "backend": "auto", "cpus": 1, "gpus": None, "max_retries": 3,
    "layout": "", "unorganized": False, "world_from_scene": "", "contact_rows": 4, "force": False, "resume": False,
    "odometry_topic": "", "actors_topic": "", "tf_topic": "/tf", "world_frame": "map", "base_frame": "base_link",
}
JOB_ONLY = ("in", "out", "name")
TOPIC_KEYS = ("odometry_topic", "actors_topic", "tf_topic", "world_frame", "base_frame")


@dataclass
class BatchJob:
    """One bag of a batch: its label, the replay it runs and the resources its Ray task declares."""

    name: str
    config: ReplayConfig
    cpus: float
    gpus: float
    max_retries: int


@dataclass
class Manifest:
    """A validated manifest: its path and its jobs in manifest order."""

    path: Path
    jobs: list[BatchJob]

    @property
    def max_cpus(self) -> float:
        return max((j.cpus for j in self.jobs), default=0.0)


class _Fields:
    """Typed reads of one mapping of the manifest; errors name the file and the field path."""

    def __init__(self, source: Path, prefix: str, raw: dict[str, Any]) -> None:
        self.source, self.prefix, self.raw = source, prefix, raw

    def fail(self, key: str, message: str) -> InputError:
        return InputError(f"{self.source}: field {self.prefix + key!r}: {message}")

    def text(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def flag(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def count(self, key: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"expected an integer >= {low}, got {value!r}")
        return value

    def amount(self, key: str, value: Any, low: float, strict: bool) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (value <= low if strict else value < low):
            raise self.fail(key, f"expected a number {'>' if strict else '>='} {low:g}, got {value!r}")
        return float(value)


def _path(base: Path, text: str) -> Path:
    return Path(os.path.abspath(base / os.path.expanduser(text)))


def _check_mapping(source: Path, where: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{source}: field {where!r}: expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in known:
            raise InputError(f"{source}: field {where + '.' + str(key)!r}: unknown key "
                             f"(known: {', '.join(known)})")
    return value


def _edits(source: Path, base_dir: Path, where: str, value: Any, base: Edits | None) -> Edits:
    """Edits from a mapping or the path of an edits file, merged over `base`."""
    if value is None:
        return base if base is not None else Edits()
    if isinstance(value, str):
        path = _path(base_dir, value)
        if not path.is_file():
            raise InputError(f"{source}: field {where!r}: edits file {path} not found")
        return edits_from_yaml(path, base)
    return edits_from_mapping(value, str(source), base, prefix=where + ".")


def _check_out(f: _Fields, out: Path, force: bool) -> None:
    if not out.parent.is_dir():
        raise f.fail("out", f"directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise f.fail("out", f"directory {out.parent} is not writable")
    if out.exists() and not force:
        raise f.fail("out", f"{out} exists already (set force: true to replace it)")


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a batch manifest (module docstring); the first problem raises a one-line InputError."""
    from ..backends import BACKENDS
    from ..rosio.pointcloud import LAYOUTS
    from ..scene.placement import parse_placement
    from ..sensors.rig import load_rig

    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: manifest not found")
    doc = read_yaml(source, "batch manifest")
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a mapping with 'defaults' and 'jobs', got {type(doc).__name__}")
    for key in doc:
        if key not in ("defaults", "jobs"):
            raise InputError(f"{source}: field {str(key)!r}: unknown key (known: defaults, jobs)")
    base_dir = Path(os.path.abspath(source)).parent
    defaults = _check_mapping(source, "defaults", doc.get("defaults"), tuple(DEFAULTS))
    jobs_raw = doc.get("jobs")
    if not isinstance(jobs_raw, list) or not jobs_raw:
        raise InputError(f"{source}: field 'jobs': expected a non-empty list of jobs, got {jobs_raw!r}")
    default_edits = _edits(source, base_dir, "defaults.edits", defaults.get("edits"), None)
    rigs_checked: set[Path] = set()
    names: dict[str, int] = {}
    outs: dict[Path, int] = {}
    ins: set[Path] = set()
    jobs: list[BatchJob] = []
    from_defaults = _Fields(source, "defaults.", defaults)
    for i, raw in enumerate(jobs_raw):
        where = f"jobs[{i}]"
        raw = _check_mapping(source, where, raw, JOB_ONLY + tuple(DEFAULTS))
        merged = {**DEFAULTS, **defaults, **{k: v for k, v in raw.items() if k != "edits"}}
        f = _Fields(source, where + ".", raw)

        def field_of(key: str, f: _Fields = f, raw: dict[str, Any] = raw) -> _Fields:
            """The job's own field, else the defaults' (so an error names where the value came from)."""
            return f if key in raw else from_defaults

        for key in ("in", "out"):
            if key not in raw:
                raise InputError(f"{source}: field {where + '.' + key!r}: missing (the {key} bag of the job)")
        bag = _path(base_dir, f.text("in", raw["in"]))
        if not bag.exists():
            raise f.fail("in", f"bag {bag} not found")
        out = _path(base_dir, f.text("out", raw["out"]))
        force = field_of("force").flag("force", merged["force"])
        _check_out(f, out, force)
        if out in outs:
            raise f.fail("out", f"{out} is also the output of jobs[{outs[out]}]")
        outs[out] = i
        ins.add(bag)
        name = f.text("name", raw["name"]) if "name" in raw else bag.name
        if name in names:
            raise f.fail("name" if "name" in raw else "in", f"job name {name!r} is also the name of "
                         f"jobs[{names[name]}] (give the jobs distinct names)")
        names[name] = i
        for key in ("scene", "rig"):
            if merged[key] is None:
                raise InputError(f"{source}: field {where + '.' + key!r}: missing (set it in the job or in defaults)")
        scene = _path(base_dir, field_of("scene").text("scene", merged["scene"]))
        if not scene.exists():
            raise field_of("scene").fail("scene", f"scene {scene} not found")
        rig = _path(base_dir, field_of("rig").text("rig", merged["rig"]))
        if rig not in rigs_checked:
            if not rig.is_file():
                raise field_of("rig").fail("rig", f"rig file {rig} not found")
            load_rig(rig)
            rigs_checked.add(rig)
        backend = field_of("backend").text("backend", merged["backend"])
        if backend not in BACKENDS:
            raise field_of("backend").fail("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
        layout = field_of("layout").text("layout", merged["layout"])
        if layout and layout not in LAYOUTS:
            raise field_of("layout").fail("layout", f"must be one of {', '.join(LAYOUTS)} or '', got {layout!r}")
        placement = field_of("world_from_scene").text("world_from_scene", merged["world_from_scene"])
        if placement and _path(base_dir, placement).is_file():  # a placement YAML file, relative to the manifest
            placement = str(_path(base_dir, placement))
        if placement:
            parse_placement(placement, f"{source}: field {field_of('world_from_scene').prefix}world_from_scene")
        cpus = field_of("cpus").amount("cpus", merged["cpus"], 0.0, strict=True)
        gpus_value = merged["gpus"] if merged["gpus"] is not None else (1 if backend == "cuda" else 0)
        gpus = field_of("gpus").amount("gpus", gpus_value, 0.0, strict=False)
        retries = field_of("max_retries").count("max_retries", merged["max_retries"], 0)
        rows = field_of("contact_rows").count("contact_rows", merged["contact_rows"], 0)
        unorganized = field_of("unorganized").flag("unorganized", merged["unorganized"])
        resume = field_of("resume").flag("resume", merged["resume"])
        topics = TopicOptions(**{k: field_of(k).text(k, merged[k]) for k in TOPIC_KEYS})
        edits = _edits(source, base_dir, where + ".edits", raw.get("edits"), default_edits)
        config = ReplayConfig(bag, str(scene), str(rig), out, edits, topics, backend, layout,
                              False if unorganized else None, placement, resume, False, rows, force)
        jobs.append(BatchJob(name, config, cpus, gpus, retries))
    for i, job in enumerate(jobs):
        if job.config.out in ins:
            raise InputError(f"{source}: field 'jobs[{i}].out': {job.config.out} is an input bag of this batch")
    return Manifest(source, jobs)
