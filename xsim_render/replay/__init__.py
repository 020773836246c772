"""Bag replay: re-render a recorded drive's sensors along an edited trajectory (`xsim replay`).

edits.py       the edits (ego lateral offset with a cosine ramp, ego time shift, actors removed / shifted /
               time-shifted), from flags or a YAML file
trajectory.py  first pass over the bag: ego (odometry or /tf) and actor histories per epoch, capture stamps
apply.py       edits applied to states and to odometry, /tf and actor messages
checkpoint.py  the work directory beside OUT that --resume continues from
rewrite.py     second pass: the SensorEngine (the sensor_sim node's code path) renders each capture; the new bag
validate.py    --validate: exact ray-traced truth of the edited drive (synthetic worlds), metrics, table, plot
"""
