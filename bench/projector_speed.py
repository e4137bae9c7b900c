"""Stream a projector over 1M x 512 float32 rows on disk and compare it, in the same run and with the
same chunked file I/O, with a bare numpy matmul + normalise.

    python bench/projector_speed.py [--rows 1000000] [--dim 512] [--method learned]

Prints rows/s for both, their ratio (projector / bare; the target is >= 0.5) and the peak resident
memory, which stays at a few chunks however many rows there are.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from modality_transfer import create_projector
from modality_transfer.io import NpyReader, transform_file, write_npy_header


def peak_rss_mib() -> float:
    """VmHWM: the peak resident set of this process so far."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bare(src: Path, dst: Path, weight: np.ndarray, chunk: int) -> None:
    reader = NpyReader(src, "text")
    with open(dst, "wb") as f:
        write_npy_header(f, reader.shape)
        for _, x in reader.chunks(chunk):
            y = x @ weight
            f.write((y / np.linalg.norm(y, axis=1, keepdims=True)).tobytes())
    reader.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--method", default="learned")
    parser.add_argument("--chunk-size", type=int, default=16384)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    fit_text = rng.standard_normal((2000, args.dim)).astype(np.float32)
    fit_image = rng.standard_normal((2000, args.dim)).astype(np.float32) + 1.0
    projector = create_projector(args.method).fit(fit_text, fit_image)
    weight = rng.standard_normal((args.dim, args.dim)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "text.npy"
        with open(src, "wb") as f:  # written in chunks too, so setup does not raise the peak
            write_npy_header(f, (args.rows, args.dim))
            for start in range(0, args.rows, args.chunk_size):
                block = rng.standard_normal((min(args.chunk_size, args.rows - start), args.dim)).astype(np.float32)
                f.write((block / np.linalg.norm(block, axis=1, keepdims=True)).tobytes())
        rss_start = peak_rss_mib()
        t0 = time.perf_counter()
        bare(src, Path(tmp) / "bare.npy", weight, args.chunk_size)
        t_bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        transform_file(projector, src, Path(tmp) / "synthetic.npy", chunk_size=args.chunk_size)
        t_ours = time.perf_counter() - t0
        rss_end = peak_rss_mib()

    data_mib = args.rows * args.dim * 4 / 2**20
    print(f"rows={args.rows:,} dim={args.dim} method={args.method} chunk={args.chunk_size} file={data_mib:,.0f} MiB")
    print(f"bare numpy matmul+normalise : {args.rows / t_bare:>10,.0f} rows/s ({t_bare:.2f} s)")
    print(f"projector '{args.method}' (validated): {args.rows / t_ours:>10,.0f} rows/s ({t_ours:.2f} s)")
    print(f"ratio projector / bare      : {t_bare / t_ours:.2f}  (target >= 0.5)")
    print(f"peak RSS {rss_start:,.0f} MiB before, {rss_end:,.0f} MiB after both passes over a {data_mib:,.0f} MiB file")


if __name__ == "__main__":
    main()
