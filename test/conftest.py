"""Session-wide test settings: ROS discovery on loopback only, and a small torch thread pool."""

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import torch  # noqa: E402

torch.set_num_threads(2)


import pytest  # noqa: E402


@pytest.fixture(params=["reference", "cpu"])
def backend(request) -> str:
    """Runs a renderer test once with the reference (the specification) and once with the fast CPU backend."""
    from xsim_render.backends import available_backends

    reason = available_backends().get(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param}: {reason}")
    return request.param
