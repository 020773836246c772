"""ROS 2 message I/O without a ROS install: PointCloud2 / Image / CameraInfo packing, a typestore with this
project's xsim_msgs types, and an atomic rosbag2 (mcap) writer, all over the pure-Python `rosbags` library."""
