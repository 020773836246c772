"""Atomic output (io_utils and the rosbag writer): bytes land exactly at the target, nothing else is ever left
behind (failures in the writer, at rename time, KeyboardInterrupt), modes follow the umask, and OSErrors become
the one-line InputError. Tests run as root, where permission bits do not block writes: unwritable places are
simulated by a path under a regular file, by /sys (where even root cannot create files) and by making os.replace
or the file's write() fail; each test says which it uses."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from xsim_render import io_utils
from xsim_render.errors import InputError
from xsim_render.io_utils import (
    atomic_directory,
    atomic_write,
    atomic_write_stream,
    atomic_write_text,
    check_output_file,
    process_umask,
)
from xsim_render.rosio import messages as m
from xsim_render.rosio.bag import BagWriter, read_bag

# 002 is the umask that tells "follows the umask" apart from rosbags' fixed 0o755 bag directory.
UMASKS = [0o022, 0o027, 0o002]


@pytest.fixture(params=UMASKS, ids=[f"umask{u:03o}" for u in UMASKS])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def tree_modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = mode(p)
    return out


# ------------------------------------------------------------------------------------------------------ modes


def test_process_umask_reads_the_mask_without_changing_it(umask, tmp_path):
    assert process_umask() == umask
    assert os.umask(umask) == umask  # unchanged by the read
    fake = tmp_path / "status"
    fake.write_text("Name:\tpython\nUmask:\t0077\nState:\tR (running)\n")
    assert io_utils._proc_umask(str(fake)) == 0o077
    assert io_utils._proc_umask(str(tmp_path / "missing")) is None


def test_file_writers_follow_umask(umask, tmp_path):
    expected = 0o666 & ~umask
    atomic_write_stream(tmp_path / "a.bin", lambda f: f.write(b"abc"))
    atomic_write_text(tmp_path / "b.txt", "hello\n")
    atomic_write(tmp_path / "c.npz", lambda p: np.savez(p, x=np.arange(3)))
    assert {n: mode(tmp_path / n) for n in listing(tmp_path)} == {"a.bin": expected, "b.txt": expected,
                                                                  "c.npz": expected}
    assert (tmp_path / "a.bin").read_bytes() == b"abc" and (tmp_path / "b.txt").read_text() == "hello\n"
    assert np.load(tmp_path / "c.npz")["x"].tolist() == [0, 1, 2]


def test_replacing_a_file_gives_the_umask_mode(umask, tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o666 & ~umask


def test_atomic_directory_follows_umask(umask, tmp_path):
    with atomic_directory(tmp_path / "out") as d:
        (d / "sub").mkdir()
        (d / "sub" / "f.txt").write_text("x")
        atomic_write_text(d / "g.txt", "y")
    assert listing(tmp_path) == ["out"]
    assert mode(tmp_path / "out") == 0o777 & ~umask
    assert tree_modes(tmp_path / "out") == {"sub": 0o777 & ~umask, "sub/f.txt": 0o666 & ~umask,
                                            "g.txt": 0o666 & ~umask}


def test_bag_writer_follows_umask(umask, tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        bag.write("/clock", m.clock(1_700_000_000_123_456_789), 1_700_000_000_123_456_789)
    assert listing(tmp_path) == ["bag"]
    assert mode(tmp_path / "bag") == 0o777 & ~umask
    files = tree_modes(tmp_path / "bag")
    assert "metadata.yaml" in files and any(n.endswith(".mcap") for n in files)
    assert set(files.values()) == {0o666 & ~umask}
    assert [ns for ns, _ in read_bag(tmp_path / "bag")["/clock"]] == [1_700_000_000_123_456_789]


# ----------------------------------------------------------------------------------------- exact target name


@pytest.mark.parametrize("name", ["x", "x.npy", ".hidden"])
def test_stream_writer_puts_the_bytes_exactly_at_the_target(tmp_path, name):
    target = tmp_path / name
    atomic_write_stream(target, lambda f: np.savez(f, rgb=np.full((2, 3), 0.25, np.float32)))
    assert listing(tmp_path) == [name]
    data = np.load(target)
    assert data.files == ["rgb"] and data["rgb"].tolist() == [[0.25] * 3] * 2


def test_path_writer_that_writes_another_name_is_caught(tmp_path):
    # np.savez appends '.npz' to a path without it: the old writer renamed the empty temp file onto the target
    # and left the data in a hidden '.x.*.npz'.
    with pytest.raises(RuntimeError, match="instead of the temporary file"):
        atomic_write(tmp_path / "x", lambda p: np.savez(p, a=np.arange(4)))
    assert listing(tmp_path) == []


# -------------------------------------------------------------------------------------- failures, no strays


def _raise(exc: BaseException):
    def fail(*_args, **_kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("where", ["writer", "rename"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ValueError("bad value"),
                                 OSError(errno.ENOSPC, "No space left on device")], ids=["ctrl-c", "value", "enospc"])
def test_file_failure_leaves_only_the_old_target(tmp_path, monkeypatch, where, exc):
    target = tmp_path / "out.npz"
    target.write_bytes(b"previous")

    def writer(f):
        f.write(b"partial" * 1000)
        if where == "writer":
            raise exc

    if where == "rename":
        monkeypatch.setattr(io_utils.os, "replace", _raise(exc))
    expected = InputError if isinstance(exc, OSError) else type(exc)
    with pytest.raises(expected) as info:
        atomic_write_stream(target, writer)
    if expected is InputError:
        assert str(info.value) == f"{target}: cannot write (No space left on device)"
        assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC  # OutputError keeps errno
    assert listing(tmp_path) == ["out.npz"] and target.read_bytes() == b"previous"


def test_path_writer_failure_removes_what_the_writer_appended(tmp_path):
    class Bomb:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    # np.savez creates '<tmp>.npz' (it appends the suffix), writes 'a', then is interrupted on 'b'.
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x", lambda p: np.savez(p, a=np.arange(10), b=Bomb()))
    assert listing(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("render failed")], ids=["ctrl-c", "error"])
def test_directory_failure_in_block_leaves_the_old_target(tmp_path, exc):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("old")
    with pytest.raises(type(exc)):
        with atomic_directory(tmp_path / "out") as d:
            (d / "new.txt").write_text("new")
            raise exc
    assert listing(tmp_path) == ["out"] and listing(tmp_path / "out") == ["keep.txt"]


def test_directory_write_error_inside_is_one_line_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        with atomic_directory(tmp_path / "out") as d:
            (d / "missing" / "f.txt").write_text("x")  # ENOENT on a path inside the temporary directory
    assert str(info.value) == f"{tmp_path / 'out'}: cannot write (No such file or directory)"
    assert listing(tmp_path) == []


def test_directory_input_error_outside_passes_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_directory(tmp_path / "out"):
            (tmp_path / "no_such_input.yaml").read_text()  # reading an input is not an output failure
    assert listing(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), PermissionError(errno.EACCES, "Permission denied")],
                         ids=["ctrl-c", "eacces"])
def test_directory_rename_failure_leaves_nothing(tmp_path, monkeypatch, exc):
    monkeypatch.setattr(io_utils.os, "replace", _raise(exc))
    with pytest.raises(InputError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        with atomic_directory(tmp_path / "out") as d:
            (d / "f.txt").write_text("x")
    if isinstance(exc, OSError):
        assert str(info.value) == f"{tmp_path / 'out'}: cannot write (Permission denied)"
    assert listing(tmp_path) == []


def test_directory_does_not_replace_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(InputError, match="cannot write"):
        with atomic_directory(tmp_path / "out") as d:
            (d / "f.txt").write_text("x")
    assert listing(tmp_path) == ["out"] and (tmp_path / "out").read_text() == "a file"


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), PermissionError(errno.EACCES, "Permission denied")],
                         ids=["ctrl-c", "eacces"])
def test_bag_rename_failure_leaves_nothing(tmp_path, monkeypatch, exc):
    # os.replace patched to fail: simulates the directory refusing the final rename (root ignores chmod).
    monkeypatch.setattr("xsim_render.rosio.bag.os.replace", _raise(exc))
    with pytest.raises(InputError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        with BagWriter(tmp_path / "bag") as bag:
            bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
            bag.write("/clock", m.clock(5), 5)
    if isinstance(exc, OSError):
        assert str(info.value) == f"{tmp_path / 'bag'}: cannot write (Permission denied)"
    assert listing(tmp_path) == []


def test_bag_in_a_place_root_cannot_write_is_input_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot write"):
        with BagWriter(tmp_path / "file" / "bag"):  # parent is a regular file: ENOTDIR
            pass
    assert listing(tmp_path) == ["file"]


# -------------------------------------------------------------------------------------- check_output_file


def test_check_output_file_accepts_new_and_existing_files(tmp_path):
    (tmp_path / "old.npz").write_bytes(b"x")
    assert check_output_file(tmp_path / "new.npz") == tmp_path / "new.npz"
    assert check_output_file(str(tmp_path / "old.npz")) == tmp_path / "old.npz"
    assert listing(tmp_path) == ["old.npz"]  # the probe file is gone


@pytest.mark.parametrize("case, needle", [
    ("dir", "is a directory"),
    ("slash", "is a directory"),
    ("under_file", "is not a directory"),
    ("missing_parent", "does not exist"),
    ("device", "not a regular file"),
    ("sysfs", "cannot create a file in"),
])
def test_check_output_file_rejects(tmp_path, case, needle):
    (tmp_path / "adir").mkdir()
    (tmp_path / "somefile").write_text("")
    path = {"dir": str(tmp_path / "adir"), "slash": str(tmp_path / "newdir") + "/",
            "under_file": str(tmp_path / "somefile" / "x.npz"), "missing_parent": str(tmp_path / "no" / "x.npz"),
            "device": "/dev/null", "sysfs": "/sys/xsim_test_out.npz"}[case]
    if case == "sysfs" and not os.path.isdir("/sys"):
        pytest.skip("no /sys on this machine")
    before = listing(tmp_path)
    with pytest.raises(InputError) as info:
        check_output_file(path, "--out")
    message = str(info.value)
    assert message.startswith(f"--out {path}: ") and "\n" not in message
    if case == "sysfs" and "not writable" in message:  # a read-only /sys mount fails the access() check first
        needle = "not writable"
    assert needle in message, message
    assert listing(tmp_path) == before
