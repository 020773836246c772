"""File I/O shared by every stage: atomic output (temp path, then rename) and YAML input with one-line errors."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML file; unreadable or invalid files raise InputError naming the file and `what` it is."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to path so that readers never see a half-written file."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write(path: Path, writer: Callable[[Path], object]) -> None:
    """Call writer(tmp_path) then rename tmp_path onto path; the temp file is removed on failure.

    The temporary name keeps the target's suffix so that writers that dispatch on it (np.savez) behave.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: Path):
    """Yield a temporary directory beside `path`; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
