import contextlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from modality_transfer.datasets import synthetic_pairs

# the workplace's real third-party data; UNICORN_SHARED_DATA points elsewhere (tests that need it skip without it)
SHARED = Path(os.environ.get("UNICORN_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
COCO500 = SHARED / "coco500_clip_vitb16"


@pytest.fixture(scope="session")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic (text, image) pairs with a CLIP-like gap."""
    return synthetic_pairs(n=300, dim=64, seed=1)


@pytest.fixture(scope="session")
def coco500() -> tuple[np.ndarray, np.ndarray]:
    """Real CLIP ViT-B/16 embeddings of 500 COCO pairs from ../shared/data (skips where absent)."""
    if not (COCO500 / "text.npy").is_file():
        pytest.skip(f"real COCO CLIP pairs not found at {COCO500}")
    return np.load(COCO500 / "text.npy"), np.load(COCO500 / "image.npy")


@contextlib.contextmanager
def openai_stub(reply):
    """A real HTTP server on 127.0.0.1 speaking the OpenAI chat API, answering `reply(body, headers)` ->
    (status, content). For what a real model will not do on demand: 429s, 5xx, malformed output."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, content = reply(body, self.headers)
            usage = {"prompt_tokens": 3, "completion_tokens": 1}
            answer = {"choices": [{"message": {"content": content}, "finish_reason": "stop"}], "usage": usage}
            payload = json.dumps(answer if status == 200 else {"error": "busy"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray instance for the test session (2 CPUs), shut down at the end even when tests fail."""
    ray = pytest.importorskip("ray", reason="ray[data] is not installed (pip install -e '.[ray]')")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def pytest_report_header(config):
    """Say where the shared third-party data is read from, so tests that skip without it never skip unseen."""
    state = (
        "found" if SHARED.is_dir() else "MISSING: the tests that need it skip; set UNICORN_SHARED_DATA to its folder"
    )
    return f"shared data: {SHARED} ({state})"
