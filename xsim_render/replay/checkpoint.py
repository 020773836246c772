"""The checkpoint of a replay: a work directory beside OUT holding every capture rendered so far.

    .<OUT name>.replay-work/
        job.json                 fingerprint of the inputs (bag files' sizes and mtimes, scene, rig file hash,
                                 edits, options); --resume refuses a checkpoint of other inputs
        captures/<key>.npz       one rendered capture: for each output message its topic kind, type and CDR
                                 bytes (uint8 arrays, no pickle), or a 'stale' reason; written atomically

A run without --resume starts from an empty work directory. A finished replay removes it; an interrupted or
failed one leaves it, so that `--resume` renders only what is missing. Rendering is deterministic, so a resumed
replay writes the same bag as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io_utils import atomic_write_stream, atomic_write_text

Outputs = dict[str, tuple[str, bytes]]  # topic kind -> (message type, CDR bytes)


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.replay-work"


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents), for the fingerprint."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def bag_stamp(path: str | Path) -> list[list[Any]]:
    """Names, sizes and mtimes of a bag's files (cheap identity of the input)."""
    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


class Checkpoint:
    """Captures rendered so far (see the module docstring)."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], resume: bool) -> None:
        self.dir = work_dir(out)
        self.captures = self.dir / "captures"
        self.reused = 0
        job = self.dir / "job.json"
        text = json.dumps(fingerprint, sort_keys=True, indent=1)
        if resume and job.is_file():
            if job.read_text() != text:
                raise InputError(f"--resume: the checkpoint {self.dir} was made for other inputs or edits "
                                 f"(run without --resume to start over)")
        else:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.captures.mkdir(parents=True)
            atomic_write_text(job, text)

    def load(self, key: str) -> tuple[Outputs, str] | None:
        """(outputs, stale reason) of a capture done before, or None."""
        path = self.captures / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                stale = str(z["stale"]) if "stale" in z.files else ""
                kinds = [str(k) for k in z["kinds"]] if "kinds" in z.files else []
                out = {kind: (str(z[f"type_{i}"]), z[f"data_{i}"].tobytes()) for i, kind in enumerate(kinds)}
        except (OSError, ValueError, KeyError):
            return None  # a damaged file: render again
        self.reused += 1
        return out, stale

    def save(self, key: str, outputs: Outputs, stale: str = "") -> None:
        arrays: dict[str, np.ndarray] = {"kinds": np.array(list(outputs), dtype=str)} if outputs else {}
        for i, (msgtype, data) in enumerate(outputs.values()):
            arrays[f"type_{i}"] = np.array(msgtype)
            arrays[f"data_{i}"] = np.frombuffer(data, dtype=np.uint8)
        if stale:
            arrays["stale"] = np.array(stale)
        atomic_write_stream(self.captures / f"{key}.npz", lambda f: np.savez(f, **arrays))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
