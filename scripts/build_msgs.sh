#!/usr/bin/env bash
# Builds the project's ROS 2 interface packages with the pip-installed ament/rosidl tools and installs them
# into the venv prefix, so that `from xsim_msgs.msg import ActorStateArray` and
# `from tf2_msgs.msg import TFMessage` work from the venv's python with no extra environment.
#
#   scripts/build_msgs.sh [VENV] [BUILD_DIR]      (defaults: .venv, build/msgs)
#
# Packages: xsim_msgs/ (msg files: the repository's msg/*.msg) and venv_interfaces/tf2_msgs/ (stand-in
# for tf2_msgs/TFMessage, which is not on PyPI; venv only, never built into a ROS 2 distro workspace).
# Needs cmake and a C/C++ compiler (gcc). Idempotent: re-running rebuilds incrementally.
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(realpath -m "${1:-$ROOT/.venv}")
BUILD=$(realpath -m "${2:-$ROOT/build/msgs}")
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "build_msgs.sh: no python in venv '$VENV'" >&2; exit 2; }
command -v cmake >/dev/null || { echo "build_msgs.sh: cmake not found (apt-get install cmake)" >&2; exit 2; }

# The wheels' CMake export files carry the include paths of the machine that built them
# (/opt/python/cp311-cp311/...): point them at this venv's Python and numpy headers.
PYINC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy; print(numpy.get_include())")
{ grep -rlZ /opt/python/cp311-cp311 "$VENV/share" --include='*.cmake' || true; } | xargs -0 -r sed -i \
  "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g; s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g"

export PATH="$VENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VENV"
export CMAKE_PREFIX_PATH="$VENV"
JOBS=${BUILD_MSGS_JOBS:-2}
for pkg in xsim_msgs venv_interfaces/tf2_msgs; do
  name=$(basename "$pkg")
  echo "== building interface package $name into $VENV"
  mkdir -p "$BUILD/$name"
  log="$BUILD/$name/xsim_build"
  cmake -S "$ROOT/$pkg" -B "$BUILD/$name" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF >"$log.configure.log" 2>&1 \
    || { cat "$log.configure.log" >&2; exit 1; }
  cmake --build "$BUILD/$name" -j "$JOBS" >"$log.build.log" 2>&1 \
    || { tail -50 "$log.build.log" >&2; exit 1; }
  cmake --install "$BUILD/$name" >"$log.install.log" 2>&1 \
    || { cat "$log.install.log" >&2; exit 1; }
done
"$PY" -c "from xsim_msgs.msg import ActorStateArray; from tf2_msgs.msg import TFMessage" \
  || { echo "build_msgs.sh: interface packages installed but not importable from $PY" >&2; exit 1; }
echo "== interface packages xsim_msgs, tf2_msgs installed into $VENV"
