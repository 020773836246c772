"""Live view over the Foxglove WebSocket protocol (`xsim launch ... --foxglove [PORT]`, xsim_ros/foxglove_bridge.py).

A WebSocket client (the `websockets` package, subprotocol foxglove.sdk.v1: the foxglove.websocket.v1 messages)
reads serverInfo and advertise, subscribes and decodes the binary messageData frames (opcode 0x01, uint32
subscription id, uint64 timestamp, CDR payload) with the rosbags typestore. The graph test runs `xsim launch` with
--foxglove and --record together on the tiny world (lockstep) and checks that the payloads are the very bytes the
graph published (the recorded ones); then SIGINT: exit 0, port free. The server alone: advertise, exact bytes,
latched replay on subscribe, clean stop. Bad port / port in use: one line, exit code 2.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
pytest.importorskip("foxglove")
websockets_sync = pytest.importorskip("websockets.sync.client")
sys.path.insert(0, str(Path(__file__).parent))
from _ros_graph import make_assets, ros_domain_id, stamp_ns, world_doc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LAUNCH = ROOT / "launch" / "xsim_sim.launch.xml"
DOMAIN = int(os.environ.get("XSIM_TEST_ROS_DOMAIN_ID") or ros_domain_id())
SUBPROTOCOL = "foxglove.sdk.v1"  # foxglove-sdk >= 0.2x: the foxglove.websocket.v1 wire format, renamed
IMAGE, INFO = "/sensing/camera/cam/image_raw", "/sensing/camera/cam/camera_info"
CLOUD = "/sensing/lidar/top/pointcloud"
# docs/pointclouds.md, layout xyzircaedt: (name, offset, PointField datatype) and point_step 32
XYZIRCAEDT = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 2), ("return_type", 13, 2),
              ("channel", 14, 4), ("azimuth", 16, 7), ("elevation", 20, 7), ("distance", 24, 7),
              ("time_stamp", 28, 6)]


def _env() -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def _store():
    from xsim_render.rosio.typestore import typestore

    return typestore()


class Client:
    """A minimal Foxglove WebSocket client: channels by topic, subscriptions, received messageData frames."""

    def __init__(self, url: str) -> None:
        self.ws = websockets_sync.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=10, max_size=None).__enter__()
        assert self.ws.subprotocol == SUBPROTOCOL
        self.server_info: dict | None = None
        self.channels: dict[str, dict] = {}
        self.sub_topic: dict[int, str] = {}
        self.data: dict[str, list[tuple[int, bytes]]] = {}

    def poll(self, timeout: float) -> bool:
        """Handle one frame arriving within `timeout` s; False when none came."""
        try:
            frame = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return False
        if isinstance(frame, str):
            msg = json.loads(frame)
            if msg["op"] == "serverInfo":
                self.server_info = msg
            elif msg["op"] == "advertise":
                self.channels.update({c["topic"]: c for c in msg["channels"]})
            return True
        assert frame[0] == 0x01, frame[:1]  # messageData
        sub_id, timestamp = struct.unpack_from("<IQ", frame, 1)
        self.data.setdefault(self.sub_topic[sub_id], []).append((timestamp, bytes(frame[13:])))
        return True

    def until(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not predicate() and time.monotonic() < end:
            self.poll(min(0.5, max(0.01, end - time.monotonic())))
        return bool(predicate())

    def subscribe(self, topics: list[str]) -> None:
        subs = []
        for topic in topics:
            sub_id = len(self.sub_topic) + 1
            self.sub_topic[sub_id] = topic
            subs.append({"id": sub_id, "channelId": self.channels[topic]["id"]})
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))

    def count(self, topic: str) -> int:
        return len(self.data.get(topic, []))


def _connect(url: str, timeout: float = 30.0) -> Client:
    end = time.monotonic() + timeout
    while True:
        try:
            return Client(url)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _raw_bag(path: Path) -> dict[str, list[bytes]]:
    from rosbags.highlevel import AnyReader

    out: dict[str, list[bytes]] = {}
    with AnyReader([path], default_typestore=_store()) as reader:
        for connection, _, raw in reader.messages():
            out.setdefault(connection.topic, []).append(bytes(raw))
    return out


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    found = make_assets(tmp_path_factory.mktemp("tiny_fox"))
    # a long scenario: the graph runs until the test has what it needs and stops it with SIGINT
    (found["world"] / "world.yaml").write_text(yaml.safe_dump(world_doc(duration=120.0), sort_keys=False))
    return found


def test_launch_foxglove_serves_the_graph_bytes_alongside_record_and_stops_on_sigint(assets, tmp_path):
    store = _store()
    bag = tmp_path / "bag"
    proc = subprocess.Popen([str(VENV_BIN / "xsim"), "launch", str(LAUNCH), f"scene:={assets['scene']}",
                             f"rig:={assets['rig']}", f"scenario:={assets['world']}", "--record", str(bag),
                             "--foxglove", "0"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    client = None
    try:
        line = proc.stdout.readline()  # printed before any node starts
        assert line.startswith("foxglove: live view on ws://localhost:"), (line, "".join(stderr)[-2000:])
        port = int(line.split("ws://localhost:")[1].split()[0])
        client = _connect(f"ws://127.0.0.1:{port}")
        wanted = [IMAGE, INFO, CLOUD, "/tf_static", "/diagnostics"]
        ok = client.until(lambda: all(t in client.channels for t in wanted) or proc.poll() is not None, 300)
        assert ok and proc.poll() is None, (sorted(client.channels), proc.poll(), "".join(stderr)[-2000:])
        assert client.server_info is not None and client.server_info["name"] == "xsim"
        for topic, msgtype in ((IMAGE, "sensor_msgs/msg/Image"), (CLOUD, "sensor_msgs/msg/PointCloud2"),
                               ("/tf_static", "tf2_msgs/msg/TFMessage")):
            ch = client.channels[topic]
            assert (ch["encoding"], ch["schemaEncoding"], ch["schemaName"]) == ("cdr", "ros2msg", msgtype)
            assert ch["schema"] == store.generate_msgdef(msgtype, ros_version=2)[0]
        assert "MSG: builtin_interfaces/Time" in client.channels[IMAGE]["schema"]
        assert "/rosout" not in client.channels and "/parameter_events" not in client.channels
        client.subscribe(wanted)
        ok = client.until(lambda: (client.count(IMAGE) >= 2 and client.count(CLOUD) >= 2 and client.count(INFO) >= 1
                                   and client.count("/tf_static") >= 1 and client.count("/diagnostics") >= 1)
                          or proc.poll() is not None, 300)
        assert ok, ({t: client.count(t) for t in wanted}, proc.poll(), "".join(stderr)[-2000:])
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if client is not None:
            client.ws.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(stderr)[-2000:]
    assert f"recorded {bag}" in out
    assert _port_free(port)
    recorded = _raw_bag(bag)

    # images: the exact bytes the graph published (and recorded), 40x30 rgb8, a real picture
    for timestamp, payload in client.data[IMAGE]:
        assert payload in recorded[IMAGE]
        img = store.deserialize_cdr(payload, "sensor_msgs/msg/Image")
        assert (img.width, img.height, img.encoding, img.step) == (40, 30, "rgb8", 120)
        assert img.header.frame_id == "cam_optical_frame"
        pixels = np.asarray(img.data, dtype=np.uint8).reshape(30, 40, 3)
        assert pixels.std() > 1.0 and len(np.unique(pixels)) > 10
        stamp = stamp_ns(img.header.stamp)
        assert stamp % 100_000_000 == 0  # sim clock, captures at n / 10 Hz
        assert abs(timestamp - stamp) < 1_000_000_000  # messageData timestamp = graph (sim) clock at receipt
    info = store.deserialize_cdr(client.data[INFO][0][1], "sensor_msgs/msg/CameraInfo")
    assert client.data[INFO][0][1] in recorded[INFO]
    assert (info.width, info.height) == (40, 30) and np.allclose(info.k, [26, 0, 19.5, 0, 26, 14.5, 0, 0, 1])
    # clouds: organized 8 x 64 xyzircaedt, finite points where there are returns
    for _, payload in client.data[CLOUD]:
        assert payload in recorded[CLOUD]
        cloud = store.deserialize_cdr(payload, "sensor_msgs/msg/PointCloud2")
        assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == XYZIRCAEDT
        assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (8, 64, 32, 32 * 64)
        assert cloud.header.frame_id == "top" and not cloud.is_bigendian
        points = np.frombuffer(np.asarray(cloud.data, dtype=np.uint8).tobytes(), dtype=np.dtype(
            {"names": ["x", "y", "z", "distance"], "formats": ["<f4"] * 4, "offsets": [0, 4, 8, 24],
             "itemsize": 32}))
        hit = points[np.isfinite(points["distance"])]
        assert len(hit) > 0
        xyz = np.stack([hit["x"], hit["y"], hit["z"]], -1).astype(np.float64)
        assert np.all(np.isfinite(xyz))
        assert np.allclose(np.linalg.norm(xyz, axis=-1), hit["distance"], rtol=1e-4, atol=1e-4)
    # /tf_static was published before the client subscribed: the bridge sent it again on subscription
    tf = store.deserialize_cdr(client.data["/tf_static"][0][1], "tf2_msgs/msg/TFMessage")
    assert {(t.header.frame_id, t.child_frame_id) for t in tf.transforms} == {("base_link", "cam_optical_frame"),
                                                                             ("base_link", "top")}
    top = next(t for t in tf.transforms if t.child_frame_id == "top").transform.translation
    assert (top.x, top.y, top.z) == pytest.approx((0.0, 0.0, 1.8))
    diag = store.deserialize_cdr(client.data["/diagnostics"][0][1], "diagnostic_msgs/msg/DiagnosticArray")
    assert any(s.hardware_id == "cam" for s in diag.status)


def test_server_advertises_forwards_exact_bytes_replays_latched_and_frees_the_port():
    from xsim_ros.foxglove_bridge import FoxgloveServer

    server = FoxgloveServer(0)
    try:
        server.add_channel("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        server.add_channel("/chatter", "std_msgs/msg/String")
        server.log("/tf_static", b"\x00\x01\x00\x00latched-a", 5, publisher=b"A")
        server.log("/tf_static", b"\x00\x01\x00\x00latched-b", 6, publisher=b"B")
        server.log("/tf_static", b"\x00\x01\x00\x00latched-a2", 7, publisher=b"A")  # replaces A's
        client = _connect(server.url.replace("localhost", "127.0.0.1"))
        assert client.until(lambda: {"/tf_static", "/chatter"} <= set(client.channels), 10)
        assert client.channels["/chatter"]["schema"] == "string data\n"
        client.subscribe(["/tf_static", "/chatter"])
        assert client.until(lambda: client.count("/tf_static") >= 2, 10)
        assert sorted(client.data["/tf_static"]) == [(6, b"\x00\x01\x00\x00latched-b"),
                                                     (7, b"\x00\x01\x00\x00latched-a2")]
        payload = struct.pack("<4sI", b"\x00\x01\x00\x00", 3) + b"hi\x00"
        server.log("/chatter", payload, 123_456_789_012)
        assert client.until(lambda: client.count("/chatter") >= 1, 10)
        assert client.data["/chatter"] == [(123_456_789_012, payload)]
        assert _store().deserialize_cdr(payload, "std_msgs/msg/String").data == "hi"
        port = server.port
    finally:
        server.stop()
    server.stop()  # idempotent
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed):  # the server closes the connection (after unadvertising its channels)
        client.until(lambda: False, 10)
    assert _port_free(port)


def test_port_in_use_and_bad_port_are_one_line_exit_2(assets):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for flag, needle in ((str(port), f"cannot serve on 127.0.0.1:{port}"), ("70000", "port must be 0..65535")):
            run = subprocess.run([str(VENV_BIN / "xsim"), "launch", str(LAUNCH), f"scene:={assets['scene']}",
                                  f"rig:={assets['rig']}", f"scenario:={assets['world']}", "--foxglove", flag],
                                 env=_env(), capture_output=True, text=True, timeout=120)
            assert run.returncode == 2, run.stderr
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("xsim launch: error: --foxglove: ") and needle in lines[0]
