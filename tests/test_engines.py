"""The same steps on two engines: `local` and `ray` (Ray Data on a real local Ray instance, and on a real two-node
`ray.cluster_utils.Cluster`) write identical rows; a killed Ray driver resumes; bad engine input is one line."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_pipeline import read_run
from unicorn.cli import main
from unicorn.pipeline.config import DEFAULT_CONFIG, load_config
from unicorn.pipeline.run import run_pipeline
from unicorn.pipeline.validate import validate_run

ROOT = Path(__file__).resolve().parents[1]
# Each test here runs the default config (LLM captions and grammar-constrained conversations) at least once: minutes.
pytestmark = pytest.mark.slow
EIGHT = {"seeds": {"source": "../seeds/world.jsonl", "limit": 8}, "shard_size": 4}


def eight_seed_config(tmp_path, **ray_section):
    """The default config with its LLM stages on, on 8 seeds (2 shards), as a YAML file a CLI run can read."""
    import yaml

    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data.update(EIGHT)
    data["captions"]["k"], data["instruct"]["llm_share"] = 2, 0.1  # the LLM stages on (off in the main job)
    data["seeds"]["source"] = str(ROOT / "seeds" / "world.jsonl")
    data["embed"]["projector"] = str(ROOT / "checkpoints" / "world-projector")
    for step, actors in ray_section.items():
        data["ray"][step] = actors
    path = tmp_path / "eight.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    config = eight_seed_config(tmp)
    run_pipeline(load_config(config), tmp / "run", progress=False, log=lambda m: None)
    return config, tmp / "run"


def test_ray_writes_the_rows_local_writes(local_run, ray_local, tmp_path):
    config, local = local_run
    manifest = run_pipeline(load_config(config), tmp_path / "ray", engine="ray", progress=False, log=lambda m: None)
    assert manifest["engine"] == "ray" and manifest["totals"]["shards"] == 2
    assert read_run(tmp_path / "ray") == read_run(local)  # ids, captions, conversations, embedding bytes
    assert validate_run(tmp_path / "ray")["problems"] == []
    assert manifest["llm_usage"]["requests"] > 0 and manifest["llm_usage"]["cache_hits"] == 0
    # every reply paid for is stored with its shard, for a resume on any node or another engine; no SQLite file
    # is written in the run folder (which a multi-node run keeps on a network file system)
    assert replies_stored(tmp_path / "ray") >= 16 and not list((tmp_path / "ray").rglob("*.sqlite"))


def test_changing_actor_counts_changes_nothing_written(local_run, ray_local, tmp_path):
    """The `ray` section is resources only: not in the checksum, so a run resumes under other actor counts."""
    config, local = local_run
    one = load_config(config)
    two = load_config(eight_seed_config(tmp_path, captions={"concurrency": 1, "num_cpus": 2, "num_gpus": 0}))
    assert one.sha256() == two.sha256() and one.ray != two.ray


@pytest.mark.slow
def test_two_node_cluster_writes_the_same_rows(local_run, tmp_path):
    """A real two-node Ray cluster on this machine (one CPU each); the CLI driver joins it with --address."""
    from ray.cluster_utils import Cluster

    config, local = local_run
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cmd = [sys.executable, "-m", "unicorn.cli", "run", str(config), "--out", str(tmp_path / "two"),
               "--engine", "ray", "--address", cluster.address, "--no-report"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        cluster.shutdown()
    assert read_run(tmp_path / "two") == read_run(local)


@pytest.mark.slow
def test_killed_ray_driver_resumes_to_the_clean_rows(local_run, ray_local, tmp_path):
    """SIGKILL the driver (a CLI process joined to the session's cluster) once some replies are cached; the same
    command, run again, pays only for the rest and ends with exactly the rows of a clean run."""
    config, local = local_run
    out = tmp_path / "killed"
    address = ray_local.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "unicorn.cli", "run", str(config), "--out", str(out), "--engine", "ray",
           "--address", address, "--no-report"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    cached = 0
    while time.time() < deadline and proc.poll() is None:
        cached = replies_stored(out)
        if cached >= 4:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert cached >= 4, "the driver finished or stalled before any reply was cached"
    manifest = run_pipeline(load_config(config), out, engine="ray", progress=False, log=lambda m: None)
    assert read_run(out) == read_run(local)
    assert manifest["llm_usage"]["cache_hits"] >= 4
    assert validate_run(out)["problems"] == []


def replies_stored(out: Path) -> int:
    return sum(p.read_text().count("\n") for p in (out / "replies").glob("*.jsonl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_engine_input_is_one_line_and_loses_nothing(local_run, tmp_path, capsys):
    config, local = local_run
    before = read_run(local)
    manifest_before = (local / "manifest.json").read_bytes()
    assert main(["run", str(config), "--out", str(local), "--engine", "spark"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "unicorn: error: unknown engine 'spark'; engines are local, ray"
    gpus = eight_seed_config(tmp_path, embed={"concurrency": 1, "num_cpus": 1, "num_gpus": 1})
    cmd = [sys.executable, "-m", "unicorn.cli", "run", str(gpus), "--out", str(local), "--engine", "ray"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        "unicorn: error: ray.embed.num_gpus is 1.0 but the cluster has 0 GPUs"
    )
    nowhere = f"127.0.0.1:{_free_port()}"
    started = time.time()
    done = subprocess.run([*cmd[:4], str(config), *cmd[5:], "--address", nowhere], capture_output=True, text=True)
    assert done.returncode == 2 and time.time() - started < 60
    assert done.stderr.strip().splitlines()[-1] == (
        f"unicorn: error: no Ray cluster answers at {nowhere} (is `ray start --head` running there?)"
    )
    assert read_run(local) == before and (local / "manifest.json").read_bytes() == manifest_before


def test_captions_cli_writes_the_rows_the_run_writes(local_run, tmp_path):
    """`unicorn captions` calls the run's own captions + dedup steps: same config and seeds, same captions."""
    config, local = local_run
    out = tmp_path / "captions"
    assert main(["captions", "--config", str(config), "--seeds", str(ROOT / "seeds" / "world.jsonl"),
                 "--limit", "8", "--out", str(out)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    run = read_run(local).values()
    run_rows = [(i, c) for meta, *_ in run for i, c in zip(meta["id"], meta["caption"], strict=True)]
    assert [(r["id"], r["caption"]) for r in rows] == run_rows
    # the CLI wrote into a fresh folder, so it asked the model itself rather than reading the run's cache
    stats = json.loads((out / "stats.json").read_text())
    assert stats["llm"]["requests"] >= 16 and stats["llm"]["cache_hits"] == 0


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_an_unreachable_llm_server_stops_the_run_at_its_shard(engine, ray_local, tmp_path):
    """No server listens at the port: the first shard's requests fail their retries, and the run stops with the
    server and the shard named (through Ray's wrapped actor errors too), instead of writing rows of rejects."""
    import dataclasses

    from unicorn.errors import ServiceUnavailable

    url = f"http://127.0.0.1:{_free_port()}/v1"
    config = load_config(eight_seed_config(tmp_path))
    config = dataclasses.replace(config, captions=dataclasses.replace(config.captions, llm=f"openai:{url}#m"))
    with pytest.raises(ServiceUnavailable) as failed:
        run_pipeline(config, tmp_path / "run", engine=engine, progress=False, log=lambda m: None)
    message = str(failed.value)
    # two shards: under Ray either may fail first
    assert (
        url in message and re.search(r"while writing shard [01]\)", message) and "run the same command again" in message
    )
    assert not (tmp_path / "run" / "shards.jsonl").exists()
