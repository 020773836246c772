"""Session-wide test settings: ROS discovery on loopback only, and a small torch thread pool."""

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import torch  # noqa: E402

torch.set_num_threads(2)
