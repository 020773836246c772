# XSIM-ROS developer entry points. Everything runs from the project venv in .venv/.
# Fast DDS must not send multicast discovery on the external interface: every target keeps it on loopback.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Every pip call carries these constraints so that pip never resolves a torch other than 2.13.0
# (the local CPU wheel); PyPI mirrors carry newer ones.
PIPC   := $(PIP) install -c constraints.txt

.PHONY: all venv .venv test demo closed-loop-demo lint bench clean distclean check-kiss-icp kiss-icp-lockstep kiss-icp-layouts soak kernels check-cuda check-nvcc check-colcon
.DEFAULT_GOAL := test

all: lint test

# `make .venv` (or `make venv`) creates / updates the full pip-only ROS 2 environment in .venv:
#   1. $(VENV)/.pip-stamp: torch==2.13.0 first, then requirements.txt (renderer), requirements-ros.txt
#      (rclpy, Fast DDS, message packages, ament/rosidl build tools; all pinned, transitive pins in
#      constraints.txt) and this package in editable mode;
#   2. $(VENV)/.stamp: the interface packages xsim_msgs (msg/*.msg) and the venv's tf2_msgs stand-in
#      (venv_interfaces/tf2_msgs, TFMessage; not on PyPI), built with cmake under build/msgs and
#      installed into the venv prefix (scripts/build_msgs.sh).
# Each stamp makes its step a no-op when its inputs are unchanged; an existing venv is updated in place.
MSG_SRCS := $(sort $(wildcard msg/*.msg)) xsim_msgs/CMakeLists.txt xsim_msgs/package.xml \
	venv_interfaces/tf2_msgs/CMakeLists.txt venv_interfaces/tf2_msgs/package.xml \
	$(wildcard venv_interfaces/tf2_msgs/msg/*.msg) scripts/build_msgs.sh

.venv venv: $(VENV)/.stamp

$(VENV)/.pip-stamp: requirements.txt requirements-ros.txt constraints.txt setup.py setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIPC) -r requirements.txt -r requirements-ros.txt
	$(PIPC) --no-deps -e .
	@# setuptools' editable wheel drops data_files: register the package in the venv's ament index
	@# by hand; share/xsim_ros/{package.xml,launch,config,msg} are links into this checkout (live).
	mkdir -p $(VENV)/share/ament_index/resource_index/packages $(VENV)/share/xsim_ros
	touch $(VENV)/share/ament_index/resource_index/packages/xsim_ros $(VENV)/COLCON_IGNORE
	for d in package.xml launch config msg; do ln -sfn $(CURDIR)/$$d $(VENV)/share/xsim_ros/$$d; done
	touch $@

$(VENV)/.stamp: $(VENV)/.pip-stamp $(MSG_SRCS)
	scripts/build_msgs.sh $(VENV) build/msgs
	touch $@

# colcon from PyPI (only for check-colcon; pinned in requirements-colcon.txt / constraints.txt).
$(VENV)/.colcon-stamp: $(VENV)/.stamp requirements-colcon.txt constraints.txt
	$(PIPC) -r requirements-colcon.txt
	touch $@

# Builds this repository with colcon (ament/rosidl from the wheels) in a temporary workspace, sources
# its install/setup.bash and checks that `sensor_sim` from the install space publishes (scripts/check_colcon.sh).
check-colcon: $(VENV)/.colcon-stamp
	scripts/check_colcon.sh $(VENV)

test: $(VENV)/.stamp kernels
	$(PY) -m pytest -q

# The stills, then the ROS 2 graph (scenario_player + sensor_sim, lockstep) on the demo world: 2 s of sim time
# with the sensors at 2 Hz (10 captures; a few minutes on 2 CPU cores), recorded to demo_out/graph_bag with a
# per-topic table and demo_out/graph_contact_sheet.png. ROS_DOMAIN_ID defaults to 0 (set it to isolate the graph).
demo: $(VENV)/.stamp kernels
	$(PY) -m xsim_render.demo --out demo_out
	$(PY) -m xsim_ros.demo --out demo_out --duration 2 --rate 2

# Closed loop (issue 10, item 4): examples/lane_keeping.py drives the ego from the LiDAR along the synthetic world's
# main road in lockstep (launch/xsim_closed_loop.launch.xml + ego_model, recorded to closed_loop_out/bag); writes the
# driven path on the overview map, the lateral error against time and summary.json (a few minutes on 2 CPU cores).
closed-loop-demo: $(VENV)/.stamp kernels
	$(PY) examples/closed_loop_demo.py --out closed_loop_out

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .

bench: $(VENV)/.stamp
	@set -e; found=0; for f in bench/bench_*.py; do \
	  [ -e "$$f" ] || continue; found=1; \
	  echo "== $$f"; $(PY) "$$f"; \
	done; [ $$found = 1 ] || echo "no bench/bench_*.py"

clean:
	rm -rf build install log demo_out .pytest_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# LiDAR odometry check of a generated drive or of any bag with LiDAR sweeps, /tf_static and /ego/odometry, e.g. one
# recorded with `xsim launch --record` (issue bar: KISS-ICP drift < 2 %); kiss-icp is only needed here.
# Usage: make check-kiss-icp DRIVE=out/drive   or   make check-kiss-icp BAG=path/to/bag
check-kiss-icp: $(VENV)/.stamp
	@test -n "$(DRIVE)$(BAG)" || { echo "usage: make check-kiss-icp DRIVE=DIR (written by xsim synth --out) or BAG=BAG_DIR"; exit 2; }
	$(PIPC) kiss-icp==1.3.0
	$(PY) scripts/check_kiss_icp.py $(or $(BAG),$(DRIVE))

# The same check on what the ROS graph publishes: the drive (default out/drive10, a 10 s default-preset drive,
# generated if missing) played in lockstep through scenario_player + sensor_sim (LiDAR only; CAMERAS=1 keeps the
# cameras), recorded with `xsim launch --record` into OUT (default DRIVE/lockstep), then KISS-ICP on both bags.
kiss-icp-lockstep: $(VENV)/.stamp
	$(PIPC) kiss-icp==1.3.0
	scripts/lockstep_kiss_icp.sh $(or $(DRIVE),out/drive10) $(OUT)

# Soak (issue 10, reliability; not CI): the lockstep graph on the looped demo world for 30 min of sim time, RSS every
# sim minute, captures owed vs received, memory slope; bench/results/soak.csv/.md/.png. SOAK_ARGS passes options.
soak: $(VENV)/.stamp kernels
	nice -n 15 $(PY) scripts/soak_lockstep.py $(SOAK_ARGS)

# KISS-ICP drift of 10 s default drives for three LiDAR beam layouts (README, "LiDAR odometry").
kiss-icp-layouts: $(VENV)/.stamp
	$(PIPC) kiss-icp==1.3.0
	$(PY) scripts/kiss_icp_beam_layouts.py

# Fast rendering kernels (xsim_render/kernels/): build the C++/OpenMP extension, and the CUDA one where torch
# sees a GPU, ahead of their first use (cache: build/kernels/). `xsim doctor` says which backends work here.
kernels: $(VENV)/.stamp
	$(PY) -m xsim_render.kernels.build

# Compile every CUDA source to an object with nvcc (no GPU needed; CI runs it), and syntax-check the CUDA
# binding. Fails loudly if nvcc is missing. `make -j2 check-cuda` compiles the .cu files in parallel.
NVCC ?= nvcc
CUDA_ARCH ?= sm_90
KCSRC := xsim_render/kernels/csrc
CUDA_CHECK_OBJS := $(patsubst $(KCSRC)/cuda/%.cu,build/check-cuda/%.o,$(wildcard $(KCSRC)/cuda/*.cu))

check-cuda: check-nvcc $(CUDA_CHECK_OBJS) $(VENV)/.stamp
	@inc=$$($(PY) -c "import sysconfig, torch.utils.cpp_extension as c; print(' '.join(['-isystem ' + p for p in c.include_paths()] + ['-isystem ' + sysconfig.get_paths()['include']]))"); \
	  cuda_inc=$$($(NVCC) --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$$ INCLUDES="\(.*\)".*/\1/p' | head -1); \
	  echo "c++ -fsyntax-only $(KCSRC)/cuda/bindings.cpp"; \
	  c++ -std=c++17 -fsyntax-only -DTORCH_EXTENSION_NAME=xsim_cuda_check -I$(KCSRC)/include $$cuda_inc $$inc $(KCSRC)/cuda/bindings.cpp
	@echo "check-cuda: $(words $(CUDA_CHECK_OBJS)) CUDA sources compiled ($(CUDA_ARCH)), binding ok"

check-nvcc:
	@command -v $(NVCC) >/dev/null 2>&1 || { echo "check-cuda: $(NVCC) not found: install the CUDA toolkit or set NVCC=/path/to/nvcc" >&2; exit 1; }

build/check-cuda/%.o: $(KCSRC)/cuda/%.cu $(wildcard $(KCSRC)/include/xsim/*.h) $(KCSRC)/cuda/xsim_cuda.h | check-nvcc
	@mkdir -p $(@D)
	$(NVCC) -std=c++17 -O3 -arch=$(CUDA_ARCH) -I$(KCSRC)/include -c $< -o $@
