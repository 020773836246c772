"""Camera projection models (pinhole, OpenCV, OpenCV fisheye). PLACEHOLDER: being written."""
