"""Start and stop a real OpenAI-compatible llama.cpp server on 127.0.0.1 (for tests and benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from ..errors import InputError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(
    model_path: str,
    *,
    threads: int = 2,
    n_ctx: int = 2048,
    alias: str = "gemma",
    timeout: float = 120,
    port: int | None = None,
):
    """Yields the server's base URL (`http://127.0.0.1:PORT/v1`); the server is stopped on exit. `port` (default: a
    free one) lets a test bring a server back where a run expects it."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_ctx",
        str(n_ctx),
    ]
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: llama.cpp's load log would fill a pipe and stall
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise InputError(f"llama.cpp server exited: {log.read()[-500:]}")
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise InputError(f"llama.cpp server did not start within {timeout} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
