"""`xsim replay-batch`: replays as Ray tasks on a local Ray with 2 workers (tiny wall-and-actor world of
_replay_bag.py, tiny rig, bags of 0.2 s: two captures per sensor).

One batch run (one Ray start) holds: a good bag; a truncated (corrupt) bag, which fails alone with its one-line
error and leaves nothing at its OUT; a bag whose worker kills itself (SIGKILL) on the first attempt, which Ray
retries and which then succeeds; the same kill with max_retries 0, which fails as a lost worker. The good and the
retried bags equal a direct `xsim replay` of the same bag message for message (bytes and log times); a task
asking for more GPUs than any node has fails at once instead of waiting. A bad manifest fails on one line with
exit code 2 before Ray is started; --address connects to a running Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _replay_bag import raw_messages, write_assets, write_bag

from xsim_render.cli.main import main
from xsim_render.replay import batch
from xsim_render.replay.batch import KILL_ONCE_ENV
from xsim_render.replay.checkpoint import work_dir

REPO = Path(__file__).resolve().parents[1]
# RAY_timeout_ms_task_wait_for_death_info: how long Ray waits for a dead worker's exit detail before failing its
# task for good (30 s by default); short here, so that the 'lost' bag does not hold the test up.
ENV = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "OMP_NUM_THREADS": "1",
       "RAY_USAGE_STATS_ENABLED": "0", "RAY_timeout_ms_task_wait_for_death_info": "2000"}
JOBS = ("good", "corrupt", "killed", "lost")


def _strays(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp" in p.name]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    scene, rig = write_assets(d)
    (d / "bags").mkdir()
    (d / "out").mkdir()
    write_bag(d / "bags" / "good", duration=0.2)
    write_bag(d / "bags" / "other", duration=0.3)
    shutil.copytree(d / "bags" / "good", d / "bags" / "corrupt")
    mcap = next((d / "bags" / "corrupt").glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    return d


def _manifest(d: Path, jobs: list[dict], name: str = "manifest.yaml", **defaults) -> Path:
    doc = {"defaults": {"scene": "scene", "rig": "rig.yaml", "contact_rows": 0, "cpus": 1, **defaults},
           "jobs": jobs}
    path = d / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def batch_run(world):
    d = world
    jobs = [{"in": "bags/good", "out": "out/good"},
            {"in": "bags/corrupt", "out": "out/corrupt"},
            {"name": "killed", "in": "bags/other", "out": "out/killed", "max_retries": 2,
             "edits": {"ego_lateral_offset": 0.5, "ramp": 0}},
            {"name": "lost", "in": "bags/good", "out": "out/lost", "max_retries": 0},
            {"name": "greedy", "in": "bags/good", "out": "out/greedy", "gpus": 64}]
    manifest = _manifest(d, jobs, max_retries=1)
    markers = {name: d / f"{name}.marker" for name in ("killed", "lost")}
    env = {**ENV, KILL_ONCE_ENV: ";".join(f"{n}:{m}" for n, m in markers.items())}
    proc = subprocess.run([sys.executable, "-m", "xsim_render.cli.main", "replay-batch", str(manifest), "--num-cpus",
                           "2", "--quiet", "--json", str(d / "summary.json")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else None
    return proc, summary, markers


def test_failures_isolated_and_reported(world, batch_run):
    proc, summary, _ = batch_run
    assert proc.returncode == 1, proc.stderr  # some bags failed
    assert summary is not None, proc.stderr
    status = {b["name"]: b["status"] for b in summary["bags"]}
    assert status == {"good": "ok", "corrupt": "failed", "killed": "ok", "lost": "failed", "greedy": "failed"}
    assert (summary["ok"], summary["failed"]) == (2, 3)
    bags = {b["name"]: b for b in summary["bags"]}
    err = bags["corrupt"]["error"]
    assert "\n" not in err and str(world / "bags" / "corrupt") in err and "cannot read bag" in err
    assert bags["good"]["captures"] == 4 and bags["good"]["error"] == ""  # 2 camera + 2 LiDAR captures
    assert bags["killed"]["captures"] == 6
    # the table: a header, one row per bag in manifest order, a totals line
    lines = proc.stdout.strip().splitlines()
    table = lines[: lines.index(next(x for x in lines if x.startswith("2 of 5 bags ok"))) + 1]
    assert table[0].split()[:5] == ["bag", "status", "captures", "wall", "s"]
    assert [row.split()[:3] for row in table[1:6]] == [["good", "ok", "4"], ["corrupt", "failed", "0"],
                                                       ["killed", "ok", "6"], ["lost", "failed", "0"],
                                                       ["greedy", "failed", "0"]]
    assert "cannot read bag" in table[2]
    # a task no node can hold is failed at once instead of waiting for ever
    assert bags["greedy"]["error"].startswith("no node of the Ray cluster has 1 CPU(s) and 64 GPU(s)")


def test_failed_bags_leave_nothing(world, batch_run):
    out = world / "out"
    assert sorted(p.name for p in out.iterdir()) == ["good", "killed"]
    assert not work_dir(out / "good").exists() and not work_dir(out / "killed").exists()
    assert _strays(out) == []


def test_worker_killed_once_is_retried(batch_run):
    _, summary, markers = batch_run
    assert markers["killed"].read_text().startswith("killed pid")  # the first attempt did die
    bags = {b["name"]: b for b in summary["bags"]}
    assert bags["killed"]["status"] == "ok"
    # no retry allowed: the lost worker is reported, with what Ray said
    assert markers["lost"].is_file()
    assert bags["lost"]["error"].startswith("WorkerCrashedError after 1 attempt(s)"), bags["lost"]["error"]


@pytest.mark.parametrize("name, flags", [("good", []), ("killed", ["--ego-lateral-offset", "0.5", "--ramp", "0"])])
def test_batch_output_equals_direct_replay(world, batch_run, tmp_path, name, flags):
    bag = {"good": "good", "killed": "other"}[name]
    direct = tmp_path / "direct"
    assert main(["replay", str(world / "bags" / bag), "--scene", str(world / "scene"), "--rig",
                 str(world / "rig.yaml"), "--out", str(direct), "--quiet", "--contact-rows", "0", *flags]) == 0
    assert raw_messages(world / "out" / name) == raw_messages(direct)


BAD = [
    ({"jobs": []}, "field 'jobs'"),
    ({"jobs": [{"in": "bags/good"}]}, "field 'jobs[0].out'"),
    ({"jobs": [{"in": "bags/nope", "out": "out/x"}]}, "field 'jobs[0].in'"),
    ({"jobs": [{"in": "bags/good", "out": "missing_dir/x"}]}, "field 'jobs[0].out'"),
    ({"jobs": [{"in": "bags/good", "out": "out/a"}, {"in": "bags/other", "out": "out/a"}]}, "field 'jobs[1].out'"),
    ({"jobs": [{"in": "bags/good", "out": "out/a", "edits": {"ramp": -1}}]}, "field 'jobs[0].edits.ramp'"),
    ({"jobs": [{"in": "bags/good", "out": "out/a", "edits": {"wiggle": 1}}]}, "field 'jobs[0].edits.wiggle'"),
    ({"jobs": [{"in": "bags/good", "out": "out/a", "cpus": 0}]}, "field 'jobs[0].cpus'"),
    ({"defaults": {"backend": "gpu"}, "jobs": [{"in": "bags/good", "out": "out/a"}]}, "field 'defaults.backend'"),
    ({"defaults": {"rig": "nope.yaml"}, "jobs": [{"in": "bags/good", "out": "out/a"}]}, "field 'defaults.rig'"),
    ({"defaults": {"colour": 1}, "jobs": [{"in": "bags/good", "out": "out/a"}]}, "field 'defaults.colour'"),
    ({"jobs": [{"in": "bags/good", "out": "bags/other"}]}, "field 'jobs[0].out'"),  # exists (and is an input)
]


@pytest.mark.parametrize("doc, needle", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_manifest_one_line_exit_2_before_ray(world, tmp_path, monkeypatch, capsys, doc, needle):
    def no_ray(*_a, **_k):
        raise AssertionError("Ray started for a bad manifest")

    monkeypatch.setattr(batch, "_start_ray", no_ray)
    base = {"defaults": {"scene": "scene", "rig": "rig.yaml"}}
    merged = {**doc, "defaults": {**base["defaults"], **doc.get("defaults", {})}}
    path = world / f"bad_{abs(hash(needle))}.yaml"
    path.write_text(yaml.safe_dump(merged))
    assert main(["replay-batch", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"xsim replay-batch: error: {path}: {needle}"), err
    assert not (world / "out" / "a").exists() and not (world / "out" / "x").exists()


def test_not_yaml_and_missing_manifest(world, tmp_path, capsys):
    assert main(["replay-batch", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: manifest not found" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("jobs: [\n")
    assert main(["replay-batch", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml: not valid YAML" in err[0]


def test_unreachable_address_one_line_exit_2(world, capsys):
    manifest = _manifest(world, [{"in": "bags/good", "out": "out/never"}], name="unreachable.yaml")
    assert main(["replay-batch", str(manifest), "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xsim replay-batch: error: --address 127.0.0.1:1: cannot connect (Connection refused)"]
    assert not (world / "out" / "never").exists()


@pytest.fixture
def restore_environ():
    """ray.init sets variables in os.environ (RAY_AUTH_MODE); put the environment back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_address_connects_to_a_running_ray(world, tmp_path, restore_environ):
    """A Ray head started here (1 CPU, loopback); the command connects to it with --address and leaves it
    running."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read at import: keep Ray on 127.0.0.1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    info = ray.init(num_cpus=1, include_dashboard=False, object_store_memory=80 * 2**20, configure_logging=False,
                    log_to_driver=False)
    # Ray turned token authentication on for the cluster it started (RAY_AUTH_MODE=token here, the token in
    # ~/.ray/auth_token); a driver given an explicit address needs the mode set, as every Ray driver does
    auth_env = {**ENV, **{k: os.environ[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN") if k in os.environ}}
    try:
        manifest = _manifest(world, [{"in": "bags/good", "out": "out/via_address"}], name="address.yaml")
        proc = subprocess.run([sys.executable, "-m", "xsim_render.cli.main", "replay-batch", str(manifest),
                               "--address", info.address_info["gcs_address"], "--quiet"], cwd=REPO, env=auth_env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert "1 of 1 bags ok" in proc.stdout
        assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 1.0  # the head is still up
    finally:
        ray.shutdown()
    direct = tmp_path / "direct"
    assert main(["replay", str(world / "bags" / "good"), "--scene", str(world / "scene"), "--rig",
                 str(world / "rig.yaml"), "--out", str(direct), "--quiet", "--contact-rows", "0"]) == 0
    assert raw_messages(world / "out" / "via_address") == raw_messages(direct)


def test_remove_strays_keeps_checkpoint_and_other_outputs(tmp_path):
    """What a killed attempt leaves beside OUT: its temporary bag directory goes, the checkpoint and the
    temporaries of other outputs stay."""
    out = tmp_path / "drive"
    for name in (".drive.0badf00d.tmp", ".drive.replay-work", ".drive2.0badf00d.tmp", "drive.contact_sheet.png"):
        (tmp_path / name).mkdir()
    (tmp_path / ".drive.1234abcd.tmp.png").write_bytes(b"x")
    batch.remove_strays(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".drive.replay-work", ".drive2.0badf00d.tmp",
                                                         "drive.contact_sheet.png"]
