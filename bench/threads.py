"""How many threads should llama.cpp use? No more than the cores the process has to itself.

llama.cpp's threads busy-wait for one another, so a model with more threads than the cores it really gets collapses
instead of slowing down gently. This bench runs two model processes at once on this machine's CPUs (a shared machine:
two runs, two Ray actors, a run beside a training job), each generating the same caption requests with the bundled
Gemma 3 270M, side by side in one run:

- pinned: each process pinned to its own CPU (a cpuset, `taskset`): threads = its usable CPUs (`usable_cpus()`, the
  affinity mask: the backend's default) against threads = `os.cpu_count()` (the old default).
- shared: both processes free to use every CPU (no affinity to read): threads = cpu_count each against threads = 1
  each (the config's `threads:` option; what the Ray engine sets from an actor's `num_cpus`).

- loaded (`--loaded`): one model process alone and beside a CPU hog (one busy loop per usable CPU, as another job on
  a shared node; or a torch job with a thread per CPU, as a training run), with the backend's default (threads and
  wait policy chosen by the load at model load), every CPU with OpenMP's waiting threads spinning (`ACTIVE`,
  libgomp's default, a short spin count) or sleeping (`PASSIVE`), and one passive thread: the share of its
  tokens/s alone that each keeps under load.

It prints aggregate completion tokens/s, the ratios, and whether the replies are identical (threads change speed,
not text).

    python bench/threads.py [--requests 4] [--max-tokens 32] [--loaded [--only NAME,NAME]] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(cpus: list[int], threads: int, requests: int, max_tokens: int) -> dict:
    """Runs in the pinned child: load the model with `threads`, generate, report."""
    os.sched_setaffinity(0, cpus)
    from unicorn.llm import SamplingParams, create_llm
    from unicorn.seeds import read_seeds

    seeds, _ = read_seeds(str(ROOT / "seeds" / "world.jsonl"), limit=requests)
    prompts = [[{"role": "user", "content": f"Describe this scene in one sentence: {s['text']}\nDescription:"}]
               for s in seeds]  # fmt: skip
    llm = create_llm("llamacpp:default", threads=threads or None)  # 0: the backend's choice
    params = [SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=i) for i in range(len(prompts))]
    start = time.perf_counter()
    out = llm.generate(prompts, params, progress=False)
    wall = time.perf_counter() - start
    tokens = sum(c.completion_tokens for c in out)
    llm.close()
    return {"threads": threads, "cpus": len(cpus), "seconds": round(wall, 2), "tokens": tokens,
            "tok_s": round(tokens / wall, 2), "replies": [c.text for c in out]}  # fmt: skip


def _environment(changes: dict | None) -> dict:
    """This process's environment with `changes`; an empty value removes the variable (libgomp's default)."""
    env = dict(os.environ)
    for key, value in (changes or {}).items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


def together(runs: list[tuple[list[int], int]], args, env: dict | None = None) -> dict:
    """Start one child per (cpus, threads) at once; their aggregate tokens/s and their replies."""
    procs = []
    for cpus, threads in runs:
        code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.threads import child; "
                f"print(json.dumps(child({cpus!r}, {threads}, {args.requests}, {args.max_tokens})))")  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                      env=_environment(env)))  # fmt: skip
    start = time.perf_counter()
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - start
    tokens = sum(o["tokens"] for o in outs)
    slowest = max(o["seconds"] for o in outs)
    return {"threads_each": runs[0][1], "wall_s": round(wall, 2), "tok_s": round(tokens / slowest, 2),
            "replies": [o["replies"] for o in outs]}  # fmt: skip


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--loaded", action="store_true", help="only the loaded case: alone vs beside a CPU hog")
    parser.add_argument("--only", default="", help="--loaded: these variants only (comma-separated names)")
    args = parser.parse_args(argv)
    if args.loaded:
        return loaded(args)
    mine, machine = sorted(os.sched_getaffinity(0)), os.cpu_count() or 1
    if len(mine) < 2:
        parser.error("needs at least 2 usable CPUs (two processes, one CPU each)")
    a, b = [mine[0]], [mine[1]]
    cases = {
        "pinned": {"usable_cpus (default)": [(a, 1), (b, 1)], "cpu_count": [(a, machine), (b, machine)]},
        "shared": {"threads: 1 (config)": [(mine, 1), (mine, 1)], "cpu_count": [(mine, machine), (mine, machine)]},
    }
    result: dict = {"machine_cpus": machine, "usable_cpus": len(mine), "requests_each": args.requests}
    for case, variants in cases.items():
        measured = {name: together(runs, args) for name, runs in variants.items()}
        good, bad = measured.values()
        result[case] = {name: {k: v for k, v in m.items() if k != "replies"} for name, m in measured.items()}
        result[case]["speedup"] = round(good["tok_s"] / bad["tok_s"], 2)
        result[case]["same_replies"] = good["replies"] == bad["replies"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"two processes at once, {args.requests} requests of <= {args.max_tokens} tokens each, "
              f"{len(mine)} usable of {machine} CPUs")  # fmt: skip
        for case in cases:
            for name in cases[case]:
                r = result[case][name]
                print(
                    f"  {case:6} {name:22} threads={r['threads_each']:<2} {r['wall_s']:7.2f} s {r['tok_s']:7.2f} tok/s"
                )
            print(f"  {case:6} speedup {result[case]['speedup']}x, same replies: {result[case]['same_replies']}")
    return result


TORCH_JOB = """
import torch
torch.set_num_threads({threads})
a = torch.randn(256, 256)
while True:
    a = torch.tanh(a @ a.T / 16)  # small ops, many barriers: the shape of a small model's training step
"""


def loaded(args) -> dict:
    """One model process alone, then beside a CPU hog: one busy loop per usable CPU, or a torch job with one
    thread per usable CPU (a training run beside the pipeline), under each thread count and OpenMP wait policy."""
    mine = sorted(os.sched_getaffinity(0))
    n = len(mine)
    result: dict = {"usable_cpus": n, "requests": args.requests}
    variants = {  # (threads, environment); threads 0: the backend's choice (by the load it sees at model load)
        "unicorn default": (0, {}),
        "libgomp default": (n, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "300000"}),  # its documented count
        "ACTIVE": (n, {"OMP_WAIT_POLICY": "ACTIVE"}),
        "SPINCOUNT=10000": (n, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"}),
        "PASSIVE": (n, {"OMP_WAIT_POLICY": "PASSIVE"}),
        "1 thread PASSIVE": (1, {"OMP_WAIT_POLICY": "PASSIVE"}),
    }
    hogs = {
        "busy loops": [[sys.executable, "-c", "while True: pass"] for _ in mine],
        "torch job": [[sys.executable, "-c", TORCH_JOB.format(threads=n)]],
    }
    if args.only:
        unknown = set(args.only.split(",")) - set(variants)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}; variants are {', '.join(variants)}")
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    for name, (threads, env) in variants.items():
        alone = together([(mine, threads)], args, env)
        row = {"alone_tok_s": alone["tok_s"]}
        for hog, commands in hogs.items():
            if hog == "torch job" and name in ("ACTIVE", "SPINCOUNT=10000"):
                continue  # spinning beside spinning: the busy loops already show the collapse
            procs = [subprocess.Popen(c) for c in commands]
            time.sleep(1.0)  # the hog is running when the model loads and reads the load
            try:
                busy = together([(mine, threads)], args, env)
            finally:
                for proc in procs:
                    proc.kill()
                    proc.wait()
            row[hog] = {"tok_s": busy["tok_s"], "kept": round(busy["tok_s"] / alone["tok_s"], 3),
                        "same_replies": alone["replies"] == busy["replies"]}  # fmt: skip
        result[name] = row
        print(f"{name:18} alone {row['alone_tok_s']:6.2f} tok/s" + "".join(
            f"; beside {hog} {row[hog]['tok_s']:6.2f} tok/s (keeps {100 * row[hog]['kept']:.0f}%, same replies: "
            f"{row[hog]['same_replies']})" for hog in hogs if hog in row), flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
