"""Atomic rosbag2 writer (mcap storage, format version 9) over the `rosbags` library; no ROS install needed.

    with BagWriter(out_dir / "bag") as bag:
        bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        bag.write("/clock", messages.clock(ns), ns)

Messages go to a temporary directory beside the target (`.<name>.XXXX.tmp/<name>`); only a clean exit renames
the finished bag onto the target path. An exception inside the block (or a failing close) removes everything, so
a half-written bag is never left behind. The target must not exist yet unless overwrite=True. The bag directory
gets mode 0o777 & ~umask and its files 0o666 & ~umask; an OSError while creating, closing or renaming the bag
becomes an InputError naming the bag (io_utils' output contract).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from ..io_utils import cannot_write, dir_mode, make_temp_dir
from .typestore import typestore

_ZERO = QosTime(0, 0)
_INFINITE = QosTime(2147483647, 4294967295)


def qos(durability: str = "volatile", reliability: str = "reliable", depth: int = 10) -> Qos:
    """An offered QoS profile for a topic's metadata ('transient_local' for latched topics such as /tf_static)."""
    return Qos(
        history=QosHistory.KEEP_LAST, depth=depth,
        reliability=QosReliability[reliability.upper()], durability=QosDurability[durability.upper()],
        deadline=_INFINITE, lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE, avoid_ros_namespace_conventions=False,
    )


class BagWriter:
    """Write a rosbag2 (mcap) directory atomically: topics by name, messages with integer ns log times."""

    def __init__(self, path: str | Path, *, overwrite: bool = False, store: Any = None) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.store = store if store is not None else typestore()
        self._tmp: Path | None = None
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path}: exists already, not overwriting")
        self._tmp = make_temp_dir(self.path)
        try:
            self._writer = Writer(self._tmp / self.path.name, version=9, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except BaseException as err:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = self._writer = None
            if isinstance(err, OSError):
                raise cannot_write(self.path, err) from None
            raise
        return self

    def add_topic(self, topic: str, msgtype: str, offered_qos: Qos | None = None) -> None:
        """Register a topic of a ROS 2 message type known to the typestore (once per topic)."""
        if self._writer is None:
            raise RuntimeError("BagWriter: add_topic outside the with-block")
        if topic in self._connections:
            raise ValueError(f"topic {topic!r} added twice")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.store, offered_qos_profiles=[offered_qos or qos()])
        self.counts[topic] = 0

    def add_connection_like(self, key: Any, topic: str, msgtype: str, *, msgdef: str = "", rihs01: str = "",
                            serialization_format: str = "cdr", offered_qos: list[Qos] | None = None) -> None:
        """Register a connection copied from another bag under `key` (write_raw(key, ...) writes to it): same
        topic, type, definition, hash, serialization format and QoS profiles. Without a usable definition
        (older bags store none) the typestore's is used."""
        if self._writer is None:
            raise RuntimeError("BagWriter: add_connection_like outside the with-block")
        if key in self._connections:
            raise ValueError(f"connection {key!r} added twice")
        if msgdef and rihs01.startswith("RIHS01_"):
            conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                                               serialization_format=serialization_format,
                                               offered_qos_profiles=offered_qos or [])
        else:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store,
                                               serialization_format=serialization_format,
                                               offered_qos_profiles=offered_qos or [])
        self._connections[key] = conn
        self.counts[key] = 0

    def write(self, topic: str, message: Any, log_time_ns: int) -> None:
        """Serialise (CDR) and append one message with its log (receive) time in nanoseconds."""
        if self._writer is None:
            raise RuntimeError("BagWriter: write outside the with-block")
        connection = self._connections[topic]
        self._writer.write(connection, int(log_time_ns), self.store.serialize_cdr(message, connection.msgtype))
        self.counts[topic] += 1

    def write_raw(self, topic: str, data: bytes, log_time_ns: int) -> None:
        """Append one already serialised (CDR) message, e.g. as received from rclpy with raw=True."""
        if self._writer is None:
            raise RuntimeError("BagWriter: write outside the with-block")
        self._writer.write(self._connections[topic], int(log_time_ns), bytes(data))
        self.counts[topic] += 1

    def set_custom_data(self, key: str, value: str) -> None:
        """Store a key/value string in the bag's metadata.yaml custom_data."""
        assert self._writer is not None
        self._writer.set_custom_data(key, value)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        writer, tmp = self._writer, self._tmp
        self._writer = self._tmp = None
        assert writer is not None and tmp is not None
        try:
            if exc_type is not None:
                writer.abort()
                return
            writer.close()
            os.chmod(tmp / self.path.name, dir_mode())  # rosbags makes it 0o755 whatever the umask
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(tmp / self.path.name, self.path)
        except OSError as err:
            if exc_type is None:
                raise cannot_write(self.path, err) from None
        except BaseException:
            if exc_type is None:
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def read_bag(path: str | Path, topics: list[str] | None = None) -> dict[str, list[tuple[int, Any]]]:
    """All messages of a bag, by topic, in log-time order: [(log_time_ns, message), ...].

    Types are rebuilt from the definitions stored in the bag (custom xsim_msgs types included), with the
    project typestore as the default for anything missing.
    """
    from rosbags.highlevel import AnyReader

    out: dict[str, list[tuple[int, Any]]] = {}
    with AnyReader([Path(path)], default_typestore=typestore()) as reader:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        for connection, log_ns, raw in reader.messages(connections=connections):
            out.setdefault(connection.topic, []).append((log_ns, reader.deserialize(raw, connection.msgtype)))
    return out


def topic_types(path: str | Path) -> dict[str, str]:
    """{topic: message type} of a bag."""
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(path)], default_typestore=typestore()) as reader:
        return {c.topic: c.msgtype for c in reader.connections}
