"""Vehicle models of the ego car for closed-loop driving (ROS-free): the kinematic bicycle model."""
