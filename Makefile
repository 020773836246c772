# XSIM-ROS developer entry points. Everything runs from the project venv in .venv/.
# Fast DDS must not send multicast discovery on the external interface (see shared/ROS_WHEELS.md).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Every pip call carries these constraints so that pip never resolves a torch other than 2.13.0
# (the local CPU wheel); PyPI mirrors carry newer ones.
PIPC   := $(PIP) install -c constraints.txt

.PHONY: all venv .venv test demo lint bench clean distclean check-kiss-icp kiss-icp-layouts
.DEFAULT_GOAL := test

all: lint test

# `make .venv` (or `make venv`) creates / updates the venv; the stamp makes it a no-op when
# requirements.txt, setup.py, setup.cfg and constraints.txt are unchanged.
.venv venv: $(VENV)/.stamp

$(VENV)/.stamp: requirements.txt constraints.txt setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIPC) -r requirements.txt
	$(PIPC) --no-deps -e .
	@# setuptools' editable wheel drops data_files: register the package in the venv's ament index
	@# by hand; share/xsim_ros/{package.xml,launch,config,msg} are links into this checkout (live).
	mkdir -p $(VENV)/share/ament_index/resource_index/packages $(VENV)/share/xsim_ros
	touch $(VENV)/share/ament_index/resource_index/packages/xsim_ros $(VENV)/COLCON_IGNORE
	for d in package.xml launch config msg; do ln -sfn $(CURDIR)/$$d $(VENV)/share/xsim_ros/$$d; done
	touch $@

test: $(VENV)/.stamp
	$(PY) -m pytest -q

demo: $(VENV)/.stamp
	$(PY) -m xsim_render.demo --out demo_out

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

# LiDAR odometry check of a generated drive (issue bar: KISS-ICP drift < 2 %); kiss-icp is only needed here.
# Usage: make check-kiss-icp DRIVE=out/drive
check-kiss-icp: $(VENV)/.stamp
	@test -n "$(DRIVE)" || { echo "usage: make check-kiss-icp DRIVE=DIR (a directory written by xsim synth --out)"; exit 2; }
	$(PIPC) kiss-icp==1.3.0
	$(PY) scripts/check_kiss_icp.py $(DRIVE)

# KISS-ICP drift of 10 s default drives for three LiDAR beam layouts (README, "LiDAR odometry").
kiss-icp-layouts: $(VENV)/.stamp
	$(PIPC) kiss-icp==1.3.0
	$(PY) scripts/kiss_icp_beam_layouts.py
