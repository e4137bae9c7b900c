"""Faults injected into a real run: the LLM server dies mid-run (a real `llama_cpp.server` on 127.0.0.1, killed)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_pipeline import read_run
from unicorn.llm import RequestCache
from unicorn.llm.llamacpp import default_model_path
from unicorn.llm.server import free_port, llama_server

ROOT = Path(__file__).resolve().parents[1]


def server_config(tmp_path, url: str) -> Path:
    """Captions from the server (one short variant per seed), programmatic conversations, 12 seeds in 6 shards."""
    path = tmp_path / "served.yaml"
    path.write_text(
        f"seeds: {{source: {ROOT / 'seeds' / 'world.jsonl'}, limit: 12}}\n"
        f"captions: {{llm: 'openai:{url}#gemma', k: 1, max_tokens: 16}}\n"
        f"instruct: {{llm_share: 0.0}}\nembed: {{projector: {ROOT / 'checkpoints' / 'world-projector'}}}\n"
        "shard_size: 2\n"
    )
    return path


STARTED: list[subprocess.Popen] = []


def unicorn(*args) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "unicorn.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def no_leftover_runs():
    """A run the test started is killed when the test ends, even when an assertion or a timeout ended it early (the
    llama.cpp servers are stopped by their own context managers)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def shards_done(out: Path) -> int:
    try:
        return (out / "shards.jsonl").read_bytes().count(b"\n")
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_the_llm_server_dies_mid_run_and_the_same_command_finishes_once_it_is_back(tmp_path):
    model, port = default_model_path(), free_port()
    url = f"http://127.0.0.1:{port}/v1"
    config = server_config(tmp_path, url)
    clean, faulted = tmp_path / "clean", tmp_path / "faulted"
    with llama_server(model, port=port):
        first = unicorn("run", str(config), "--out", str(clean), "--no-report")
        assert first.wait(timeout=600) == 0, first.communicate()[1]

    with llama_server(model, port=port) as served:
        run = unicorn("run", str(config), "--out", str(faulted), "--no-report")
        deadline = time.time() + 300
        while shards_done(faulted) < 1 and run.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        # kill the server itself (SIGKILL, no goodbye), not the run
        server_pid = int(subprocess.check_output(["pgrep", "-f", f"llama_cpp.server.*--port {port}"]).split()[0])
        subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(server_pid)], check=True)
        _, err = run.communicate(timeout=300)
        assert served  # the context manager's cleanup copes with a server that is already gone
    assert run.returncode == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("unicorn: error: LLM server") and url in line and "while writing shard" in line, line
    finished = shards_done(faulted)
    assert 1 <= finished < 6, "the server died after the first shard and before the last"
    before = read_run(faulted)
    cached = len(RequestCache(faulted / "cache.sqlite"))
    assert cached >= 2 * finished  # every reply received is kept, including those of the unfinished shard

    with llama_server(model, port=port):
        again = unicorn("run", str(config), "--out", str(faulted), "--no-report")
        _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    after = read_run(faulted)
    assert all(after[name] == rows for name, rows in before.items())  # finished shards untouched
    assert after == read_run(clean)
