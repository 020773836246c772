#!/usr/bin/env bash
# `make check-colcon`: builds this repository with colcon in a temporary ROS 2 workspace, the way a user with
# a ROS 2 distro does (README, "Build and install"), but with colcon, ament and rosidl from the pip wheels of
# the venv as the underlay. Then sources install/setup.bash and checks the install space:
#   - packages xsim_msgs (interface package from msg/) and xsim_ros (ament_python) are built;
#   - share/xsim_ros holds package.xml, launch/ and config/ files; the ament index finds the package;
#   - Python imports xsim_ros, xsim_render and xsim_msgs from the install space (not the venv's editable copy);
#   - lib/xsim_ros/sensor_sim exists and, started with a tiny scene and rig, publishes an Image or PointCloud2
#     (seen by scripts/ros_wait_for_message.py, which also feeds it a stationary ego odometry).
#
#   scripts/check_colcon.sh [VENV]          (default .venv; colcon must be installed there: make check-colcon)
# Env: CHECK_COLCON_WS=DIR keeps the workspace in DIR (default: a temporary directory, removed on success),
#      CHECK_COLCON_TIMEOUT=seconds to wait for the first sensor message (default 120).
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# Own DDS domain unless the caller chose one (keeps parallel runs apart).
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(realpath "${1:-$ROOT/.venv}")
PY="$VENV/bin/python"
TIMEOUT=${CHECK_COLCON_TIMEOUT:-120}
fail() { echo "check-colcon: FAIL: $*" >&2; exit 1; }
[ -x "$VENV/bin/colcon" ] || fail "no colcon in $VENV (run: make check-colcon)"

if [ -n "${CHECK_COLCON_WS:-}" ]; then
  WS=$(realpath -m "$CHECK_COLCON_WS"); rm -rf "$WS"; mkdir -p "$WS"; KEEP=1
else
  WS=$(mktemp -d "${TMPDIR:-/tmp}/xsim-colcon-ws.XXXXXX"); KEEP=0
fi
NODE_PID=""
cleanup() {
  rc=$?
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -INT "$NODE_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$NODE_PID" 2>/dev/null; then
      echo "check-colcon: note: sensor_sim did not stop within 10 s of SIGINT; killed"
      kill -KILL "$NODE_PID" 2>/dev/null || true
    fi
    wait "$NODE_PID" 2>/dev/null || true
  fi
  if [ "$rc" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$WS"; else echo "check-colcon: workspace kept in $WS"; fi
}
trap cleanup EXIT
T0=$(date +%s)

# 1. The workspace: the repository cloned into src/xsim_ros (working tree, without build products), and the
#    documented link that lets colcon find the interface package inside it.
echo "== workspace $WS (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
mkdir -p "$WS/src/xsim_ros"
tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./install --exclude=./log \
    --exclude=./out --exclude=./demo_out --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.ruff_cache -cf - . | tar -C "$WS/src/xsim_ros" -xf -
ln -s xsim_ros/xsim_msgs "$WS/src/xsim_msgs"

# 2. colcon build, underlay = the venv (ament_cmake, rosidl generators, message packages from the wheels).
cd "$WS"
export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
colcon list --names-only > colcon_list.txt
sort colcon_list.txt | tr '\n' ' ' | grep -qx 'xsim_msgs xsim_ros ' \
  || fail "colcon should find exactly xsim_msgs and xsim_ros in src/, found: $(tr '\n' ' ' < colcon_list.txt)"
echo "== colcon build (packages: $(tr '\n' ' ' < colcon_list.txt))"
nice -n 10 colcon build --event-handlers console_cohesion+ status- \
  --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF > colcon_build.log 2>&1 \
  || { tail -60 colcon_build.log >&2; fail "colcon build failed (log: $WS/colcon_build.log)"; }
T1=$(date +%s)
echo "== colcon build ok in $((T1 - T0)) s"

# 3. The install space.
set +u; source "$WS/install/setup.bash"; set -u
SHARE="$WS/install/xsim_ros/share/xsim_ros"
for f in package.xml $(cd "$ROOT" && ls launch/*.xml launch/*.py launch/*.yaml config/*.yaml 2>/dev/null); do
  [ -f "$SHARE/$f" ] || fail "install space lacks share/xsim_ros/$f"
done
"$PY" - "$WS/install" <<'PYEOF' || fail "install space imports / ament index"
import sys
from ament_index_python.packages import get_package_prefix, get_package_share_directory
install = sys.argv[1]
import xsim_msgs.msg
import xsim_render
import xsim_ros
from xsim_msgs.msg import ActorStateArray  # noqa: F401
for mod in (xsim_ros, xsim_render, xsim_msgs.msg):
    assert mod.__file__.startswith(install), f"{mod.__name__} imported from {mod.__file__}, not from {install}"
for pkg in ("xsim_ros", "xsim_msgs"):
    assert get_package_prefix(pkg) == f"{install}/{pkg}", (pkg, get_package_prefix(pkg))
print("install space ok: share", get_package_share_directory("xsim_ros"))
PYEOF

# 4. sensor_sim from the install space publishes.
EXE="$WS/install/xsim_ros/lib/xsim_ros/sensor_sim"
[ -x "$EXE" ] || fail "install space has no executable lib/xsim_ros/sensor_sim (console_scripts entry point \
'sensor_sim = xsim_ros.console:sensor_sim' in setup.py, and xsim_ros/sensor_sim.py, are needed)"
"$PY" "$ROOT/scripts/colcon_check_fixture.py" "$WS/fixture" >/dev/null
echo "== starting $EXE"
"$EXE" --ros-args --params-file "$WS/fixture/sensor_sim.params.yaml" -r __ns:=/xsim_check > sensor_sim.log 2>&1 &
NODE_PID=$!
"$PY" "$ROOT/scripts/ros_wait_for_message.py" --timeout "$TIMEOUT" --odometry /xsim_check/ego/odometry \
  > wait.log 2>&1 &
WAIT_PID=$!
while kill -0 "$WAIT_PID" 2>/dev/null; do  # fail at once if the node dies before publishing
  if ! kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$WAIT_PID" 2>/dev/null || true; wait "$WAIT_PID" 2>/dev/null || true
    tail -30 sensor_sim.log >&2; fail "sensor_sim from the install space exited before publishing"
  fi
  sleep 0.5
done
if ! wait "$WAIT_PID"; then
  cat wait.log >&2; tail -30 sensor_sim.log >&2
  fail "sensor_sim from the install space published no Image / PointCloud2 within $TIMEOUT s"
fi
cat wait.log
kill -0 "$NODE_PID" 2>/dev/null || { tail -30 sensor_sim.log >&2; fail "sensor_sim exited"; }
T2=$(date +%s)
echo "check-colcon: OK (build $((T1 - T0)) s, first sensor message after $((T2 - T1)) s)"
