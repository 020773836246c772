"""File I/O shared by every stage: atomic output (temporary name beside the target, then rename) and YAML input.

Output contract, for every writer here (and the rosbag writer in rosio/bag.py):
  * the bytes go exactly to the target path: atomic_write_stream hands the writer a file object (no library can
    append a suffix to it); atomic_write, for writers that only take a path, detects one that wrote elsewhere;
  * nothing but the target is ever left behind: the temporary file or directory is removed on every failure,
    KeyboardInterrupt and failures of the final rename included;
  * modes follow the process umask like any ordinary file: files 0o666 & ~umask, directories 0o777 & ~umask
    (not the 0600 / 0700 of tempfile.mkstemp / mkdtemp);
  * an OSError while writing (disk full, permission denied, read-only file system) becomes an OutputError (an
    InputError and an OSError) whose one-line message names the target and the reason, so CLIs print one line
    and exit with code 2.
check_output_file() lets a CLI refuse an unusable output path before any expensive work starts.
"""

from __future__ import annotations

import errno
import functools
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from .errors import InputError, OutputError

# errno values that mean "the output cannot be written" even when the OSError names no file (e.g. f.write()).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML file; unreadable or invalid files raise InputError naming the file and `what` it is."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


# ---------------------------------------------------------------------------------------------------- modes


def _proc_umask(status: str = "/proc/self/status") -> int | None:
    """The umask from the kernel's process status ("Umask:\t0022", Linux >= 4.7), or None when unavailable."""
    try:
        with open(status, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


@functools.lru_cache(maxsize=1)
def _umask_round_trip() -> int:
    """The umask by setting and restoring it (process-global, so done once and cached; fallback only)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def process_umask() -> int:
    """The process's file-mode creation mask, read without changing it where the OS allows (/proc)."""
    mask = _proc_umask()
    return _umask_round_trip() if mask is None else mask


def file_mode() -> int:
    """Mode of a newly created output file: 0o666 & ~umask."""
    return 0o666 & ~process_umask()


def dir_mode() -> int:
    """Mode of a newly created output directory: 0o777 & ~umask."""
    return 0o777 & ~process_umask()


# ---------------------------------------------------------------------------------------------------- errors


def _reason(err: OSError) -> str:
    """One-line reason of an OSError ("No space left on device")."""
    return " ".join(str(err.strerror or err).split())


def _inside(filename: object, directory: Path) -> bool:
    """Whether an OSError's filename lies in `directory` (the temporary output)."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return False
    name = os.path.abspath(os.fsdecode(filename))
    root = os.path.abspath(directory)
    return name == root or name.startswith(root + os.sep)


def cannot_write(target: str | Path, err: OSError) -> OutputError:
    """The one-line error for an OSError while writing `target`: "<target>: cannot write (<reason>)".

    An OutputError is both the project's InputError (CLIs print it on one line, exit code 2) and an OSError
    carrying the original errno.
    """
    out = OutputError(f"{target}: cannot write ({_reason(err)})")
    out.errno = err.errno
    return out


def _is_output_error(err: OSError, tmp: Path) -> bool:
    """Whether an OSError raised while filling the temporary output `tmp` is a failure to write the output."""
    if isinstance(err, OutputError):  # already names the file that failed
        return False
    if err.filename is None:
        return err.errno in _WRITE_ERRNOS
    return _inside(err.filename, tmp) or _inside(err.filename2, tmp)


@contextmanager
def _as_input_error(target: Path) -> Iterator[None]:
    """Turn an OSError raised while producing `target` into InputError("<target>: cannot write (<reason>)")."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise cannot_write(target, err) from None


# ---------------------------------------------------------------------------------------------------- checks


def check_output_file(path: str | Path, what: str = "--out") -> Path:
    """Raise InputError (one line, naming `what` and the path) unless `path` can be written as a file.

    Checks, before any work is done: the path does not name a directory (nor end in a separator), an existing
    target is a regular file, the parent exists and is a directory the process may write to, and a file can
    really be created there (a probe file is created and removed at once: this also catches read-only mounts
    and pseudo file systems where even root cannot create files). Returns the path as given.
    """
    text = os.fspath(path)
    if not text:
        raise InputError(f"{what}: empty path")
    target = Path(text)
    if text.endswith(os.sep) or (os.altsep and text.endswith(os.altsep)) or target.is_dir():
        raise InputError(f"{what} {text}: is a directory (name a file inside it, e.g. {target / 'out.npz'})")
    if target.exists() and not target.is_file():
        raise InputError(f"{what} {text}: exists and is not a regular file")
    parent = Path(os.path.abspath(target)).parent
    if not parent.exists():
        raise InputError(f"{what} {text}: directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{what} {text}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {text}: directory {parent} is not writable")
    probe: Path | None = None
    try:
        fd, probe = _create_temp_file(target)
        os.close(fd)
    except OSError as err:
        raise InputError(f"{what} {text}: cannot create a file in {parent} ({_reason(err)})") from None
    finally:
        if probe is not None:
            probe.unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------------------------------------------- writers


def _temp_path(target: Path) -> Path:
    """A fresh hidden name beside `target` that keeps its suffix (for writers that dispatch on it)."""
    return target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}"


def _create_temp_file(target: Path) -> tuple[int, Path]:
    """Create (O_EXCL) an empty temporary file beside `target`, mode 0o666 & ~umask; returns (fd, path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = _temp_path(target)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def make_temp_dir(target: Path) -> Path:
    """Create an empty temporary directory beside `target`, mode 0o777 & ~umask; InputError if impossible."""
    target = Path(target)
    with _as_input_error(target):
        for _ in range(100):
            tmp = _temp_path(target)
            try:
                os.mkdir(tmp, 0o777)
                return tmp
            except FileExistsError:
                continue
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _strays(tmp: Path) -> list[Path]:
    """Files a path-taking writer made instead of `tmp` by appending to its name (np.savez adds '.npz')."""
    try:
        with os.scandir(tmp.parent) as entries:
            return [tmp.parent / e.name for e in entries if e.name.startswith(tmp.name + ".")]
    except OSError:
        return []


def _remove(tmp: Path) -> None:
    """Remove a temporary file or directory and anything a writer appended to its name; never raises."""
    for p in [tmp, *_strays(tmp)]:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass


def atomic_write_stream(path: str | Path, writer: Callable[[BinaryIO], object]) -> None:
    """Call writer(f) on a binary file object, then rename the finished file onto `path` (exactly that name).

    Preferred form: a file object cannot be renamed by the library writing it (np.savez(f, ...) writes an npz
    archive to exactly `path`, whatever its suffix). Failures remove the temporary file; OSError -> InputError.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        with _as_input_error(path):
            fd, tmp = _create_temp_file(path)
            with os.fdopen(fd, "wb") as f:
                writer(f)
            os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            _remove(tmp)
        raise


def atomic_write(path: str | Path, writer: Callable[[Path], object]) -> None:
    """Call writer(tmp_path) then rename tmp_path onto `path`; for writers that only take a path.

    The temporary name keeps the target's suffix so that writers which dispatch on it behave. A writer that
    writes to another name (appending a suffix) is detected: its file is removed and RuntimeError raised, so a
    0-byte target never replaces the data. Prefer atomic_write_stream. Failures remove every temporary file;
    OSError -> InputError naming `path`.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        with _as_input_error(path):
            fd, tmp = _create_temp_file(path)
            os.close(fd)
            writer(tmp)
            if tmp.stat().st_size == 0 and _strays(tmp):
                raise RuntimeError(f"{path}: the writer wrote {_strays(tmp)[0].name} instead of the temporary "
                                   f"file it was given (use atomic_write_stream)")
            os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            _remove(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text to `path` so that readers never see a half-written file."""
    data = text.encode("utf-8")
    atomic_write_stream(path, lambda f: f.write(data))


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; on success it replaces `path`, on failure it is removed.

    The directory is made 0o777 & ~umask (files the block creates in it follow the umask by themselves).
    OSErrors of the final swap, and OSErrors raised in the block that name a file inside the temporary directory
    (or name no file and carry a no-space / permission / read-only errno) become InputError naming `path`; any
    other exception passes through unchanged, after the cleanup. An existing directory at `path` is replaced
    once the block has succeeded; an existing non-directory is not (InputError).
    """
    path = Path(path)
    tmp = make_temp_dir(path)
    try:
        try:
            yield tmp
        except OSError as err:
            if _is_output_error(err, tmp):
                raise cannot_write(path, err) from None
            raise
        with _as_input_error(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            os.replace(tmp, path)  # an existing file (not a directory) at `path` fails here: InputError
    except BaseException:
        _remove(tmp)
        raise
