"""A regular (non-editable) `pip install .` carries the default config, the world seeds, the checkpoints and the
prompts, and the installed `unicorn` finds them from any folder. Installed into a real virtual environment that
borrows this environment's dependencies (--system-site-packages), so only the project itself is copied."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_regular_install_finds_the_shipped_files(tmp_path):
    source = tmp_path / "source"  # a copy, so pip's in-tree build leaves the checkout alone
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "runs", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import json, unicorn; from unicorn.pipeline.config import load_config; from unicorn.prompts import load_text;"
        "from unicorn.world.clip import DEFAULT_CHECKPOINT; c = load_config();"
        "print(json.dumps([unicorn.__file__, c.seeds.source, c.embed.projector, str(DEFAULT_CHECKPOINT),"
        "len(load_text('caption'))]))"
    )
    out = subprocess.run([str(python), "-c", probe], cwd=elsewhere, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    module, seeds, projector, clip, prompt = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(venv) in module and not module.startswith(str(ROOT))  # the installed copy, not the checkout
    for path in (seeds, projector, clip):
        assert path.startswith(str(venv)) and Path(path).exists()
    assert prompt > 0
    # the installed CLI runs a config that names shipped files by their relative names, from another folder
    (elsewhere / "run.yaml").write_text(
        "seeds: {source: seeds/world.jsonl, limit: 4}\ncaptions: {k: 0}\ninstruct: {llm_share: 0.0}\n"
        "embed: {projector: checkpoints/world-projector}\nshard_size: 2\n"
    )
    run = subprocess.run(
        [str(venv / "bin" / "unicorn"), "run", "run.yaml", "--out", "out", "--no-report"],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "4 rows in 2 shards" in run.stdout
