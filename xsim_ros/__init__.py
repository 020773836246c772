"""ROS 2 (rclpy) front end of XSIM-ROS.

Nodes that drive the :mod:`xsim_render` renderer from ROS topics (ego odometry, actor states,
``/clock``) and publish simulated camera images and LiDAR point clouds.
"""
