"""A rosbags typestore (ROS 2 Kilted) with this project's xsim_msgs types registered from their .msg text.

Where the definitions come from, first match wins:
  1. the directory named by the environment variable XSIM_MSG_DIR;
  2. `msg/` at the root of a source checkout (two levels above this package);
  3. `share/xsim_msgs/msg/` and `share/xsim_ros/msg/` under each prefix of AMENT_PREFIX_PATH and under
     sys.prefix (an ament install of the interface package, or setup.py's data_files of xsim_ros);
  4. the copy embedded below (so that a plain `pip install` of xsim_render, which ships no msg/ files,
     still works). test/test_bag.py checks that this copy is identical to the files in msg/.

No build step is needed: rosbags parses the .msg text at run time and AnyReader rebuilds the same types
from the definitions stored in a bag.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "xsim_msgs"
MESSAGES = ("ActorState", "ActorStateArray")
ACTOR_STATE = f"{PACKAGE}/msg/ActorState"
ACTOR_STATE_ARRAY = f"{PACKAGE}/msg/ActorStateArray"

EMBEDDED: dict[str, str] = {
    "ActorState": """\
# State of one actor (vehicle, pedestrian, ...) at the stamp of the enclosing ActorStateArray.
# Package xsim_msgs; frames and units follow REP-103 (metres, radians, seconds).

# Stable actor identifier (the Gaussians' actor_id, as text).
string id
# Semantic category, e.g. "vehicle", "pedestrian", "cyclist".
string category
# Pose of the actor frame (box centre, x forward, z up) in the array's header frame (map).
geometry_msgs/Pose pose
# Linear and angular velocity expressed in the actor's own frame (like nav_msgs/Odometry twist).
geometry_msgs/Twist twist
# Box extent along the actor's x (length), y (width) and z (height), metres.
geometry_msgs/Vector3 size
""",
    "ActorStateArray": """\
# All actors known at header.stamp; poses are in header.frame_id (map).
std_msgs/Header header
ActorState[] actors
""",
}


def candidate_dirs() -> list[Path]:
    """Directories searched for the .msg files, in order (see the module docstring)."""
    dirs: list[Path] = []
    if os.environ.get("XSIM_MSG_DIR"):
        dirs.append(Path(os.environ["XSIM_MSG_DIR"]))
    dirs.append(Path(__file__).resolve().parents[2] / "msg")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    dirs.extend(Path(p) / "share" / pkg / "msg" for p in prefixes for pkg in (PACKAGE, "xsim_ros"))
    return dirs


def message_definitions() -> tuple[dict[str, str], str]:
    """({message name: .msg text}, where they came from): the first directory holding all of them, else embedded."""
    for directory in candidate_dirs():
        files = [directory / f"{name}.msg" for name in MESSAGES]
        if all(f.is_file() for f in files):
            return {name: f.read_text() for name, f in zip(MESSAGES, files)}, str(directory)
    return dict(EMBEDDED), "embedded"


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The shared typestore: all ROS 2 Kilted standard types plus xsim_msgs/msg/ActorState(Array)."""
    store = get_typestore(Stores.ROS2_KILTED)
    texts, _ = message_definitions()
    types: dict[str, Any] = {}
    for name, text in texts.items():
        types.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store


def msg_class(msgtype: str) -> Any:
    """The generated message class of a type name such as 'sensor_msgs/msg/Image'."""
    return typestore().types[msgtype]
