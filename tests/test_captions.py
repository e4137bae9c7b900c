"""Stage 1: filters, dedup and diversity figures, and caption runs with the real bundled Gemma."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import openai_stub
from unicorn.captions.dedup import Deduplicator, exact_duplicates
from unicorn.captions.diversity import distinct_n, mean_pairwise_distance, type_token_ratio
from unicorn.captions.filters import FilterConfig, apply_filters, english_share, repetition, text_share
from unicorn.captions.summary import caption_stats
from unicorn.cli import main
from unicorn.encoders import create_encoder
from unicorn.engines.in_memory import run_some_steps
from unicorn.llm import RequestCache, create_llm
from unicorn.pipeline.config import RunConfig
from unicorn.steps import CaptionsConfig, seed_columns

SEEDS = ["A man riding a horse on a beach.", "A bowl of oranges on a kitchen table.", "A red bus parked on a street."]


@pytest.fixture(scope="module")
def minilm():
    return create_encoder("st:default")


def test_text_checks():
    assert text_share("A dog runs.") == 1 and text_share("#### @@@ $$") < 0.5
    assert repetition("the cat the cat the cat the cat") > 0.5 and repetition("a dog on a beach at dusk") == 0
    assert english_share("A dog is sitting on the sofa in the room") > 0.3
    assert english_share("Ein Hund sitzt auf dem Sofa im Zimmer") < 0.12


def test_filters_remove_each_kind_of_bad_variant(minilm):
    seed = "A brown dog sitting on a red sofa in a living room."
    batch = {
        "seed": [seed] * 7,
        "caption": [
            "A brown dog with floppy ears sits on a red velvet sofa in a bright living room by a window.",
            "",  # nothing
            "dog",  # too short
            "%%%% #### @@@@ $$$$ %%%% #### @@@@ $$$$ %%%% ####",  # not text
            "the dog the dog the dog the dog the dog the dog the dog the dog",  # repetition
            "Ein brauner Hund sitzt auf einem roten Sofa im hellen Wohnzimmer neben dem Fenster.",  # not English
            "The quarterly revenue of the software company grew by twelve percent over the year.",  # unfaithful
        ],
        "error": [None] * 7,
    }
    out = apply_filters(batch, FilterConfig(), encoder=minilm)
    assert out["reject"] == [None, "length", "length", "non_text", "repetition", "language", "faithfulness"]
    assert out["faithfulness"][0] > 0.5 > out["faithfulness"][6]


def test_dedup_exact_and_semantic(minilm):
    texts = [
        "A cat on a mat.",
        "a cat, on a MAT",
        "A dog in a park.",
        "A kitten sitting on a mat.",
        "A cat on the mat.",
    ]
    assert exact_duplicates(texts) == [False, True, False, False, False]
    dedup = Deduplicator(minilm.dim, threshold=0.9)
    emb = minilm.encode_text(texts)
    first = dedup.decide(texts[:2], emb[:2])  # the second batch is checked against the first one's kept rows
    assert first == [None, "exact_duplicate"]
    second = dedup.decide(texts[2:], emb[2:])
    assert second[0] is None and second[2] == "semantic_duplicate"
    again = dedup.decide(texts[2:], emb[2:])  # kept rows entered the state; a semantic duplicate never did
    assert [r for r, s in zip(again, second, strict=True) if s is None] == ["exact_duplicate"] * second.count(None)
    fresh = Deduplicator(minilm.dim, threshold=0.9)
    assert fresh.decide(["x0", "x1", "x2", "x3", "x4"], emb) == [
        None,
        "semantic_duplicate",
        None,
        None,
        "semantic_duplicate",
    ]


def test_diversity_figures():
    same = ["a red car"] * 4
    varied = ["a red car", "two dogs in snow", "an old man reading", "boats in a harbour"]
    assert distinct_n(same, 2) < distinct_n(varied, 2) and type_token_ratio(same) < type_token_ratio(varied)
    e = np.eye(4, dtype=np.float32)
    assert mean_pairwise_distance(e) == pytest.approx(1.0) and mean_pairwise_distance(
        np.ones((4, 4)) / 2
    ) == pytest.approx(0)


def caption_run(llm: str, tmp_path, k: int = 2):
    """The run's captions + dedup steps over SEEDS (LLM rows only), with the request cache in tmp_path."""
    seeds = [{"id": f"s{i}", "text": t} for i, t in enumerate(SEEDS)]
    config = RunConfig(captions=CaptionsConfig(llm=llm, k=k, include_seeds=False))
    batch, counters = run_some_steps([seed_columns(seeds)], config, ("captions", "dedup"), run_dir=tmp_path)
    return batch, caption_stats(SEEDS, batch, counters)


def test_caption_run_with_the_bundled_gemma(tmp_path):
    batch, stats = caption_run("llamacpp:default", tmp_path)
    assert stats["variants"] == 6 and len(batch["id"]) == 6
    assert sum(v for k, v in stats["filters"].items() if k != "passed") + stats["filters"]["passed"] == 6
    kept = [i for i, r in enumerate(batch["reject"]) if r is None]
    assert all(batch["faithfulness"][i] >= 0.5 for i in kept) and stats["kept"] == len(kept)
    assert stats["llm"]["completion_tokens"] > 0 and stats["llm"]["cache_hits"] == 0
    again, again_stats = caption_run("llamacpp:default", tmp_path)
    assert again_stats["llm"]["cache_hits"] == 6 and again["caption"] == batch["caption"]


def test_malformed_model_output_is_counted(tmp_path):
    replies = ["", "\u0000\u0001\u0002 ### ### ###", "yes yes yes yes yes yes yes yes yes yes"]
    with openai_stub(lambda body, _: (200, replies[body["seed"] % len(replies)])) as url:
        batch, stats = caption_run(f"openai:{url}#m", tmp_path, k=3)
    assert stats["kept"] == 0 and all(batch["reject"]) and len(batch["id"]) == 9
    assert stats["filters"]["passed"] == 0 and sum(v for k, v in stats["filters"].items() if k != "passed") == 9


def test_killed_run_resumes_from_the_cache(tmp_path):
    """SIGKILL a CLI run once some responses are cached; the re-run pays only for the rest and ends with the
    same rows as an uninterrupted run."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(SEEDS) + "\n")
    cmd = [sys.executable, "-m", "unicorn.cli", "captions", "--seeds", str(seeds), "--k", "2", "--shard-size", "1"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(tmp_path / "killed")], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    cache = tmp_path / "killed" / "cache.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if cache.is_file() and len(RequestCache(cache)) >= 2:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "killed" / "captions.jsonl").exists() or proc.returncode == 0
    assert main(["captions", "--seeds", str(seeds), "--k", "2", "--out", str(tmp_path / "killed")]) == 0
    resumed = json.loads((tmp_path / "killed" / "stats.json").read_text())
    assert resumed["llm"]["cache_hits"] >= 2
    assert main(["captions", "--seeds", str(seeds), "--k", "2", "--out", str(tmp_path / "clean")]) == 0
    read = lambda d: (tmp_path / d / "captions.jsonl").read_text()  # noqa: E731
    assert read("killed") == read("clean")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["captions", "--seeds", "/no/seeds.txt", "--out", "o"], "not found"),
        (["captions", "--seeds", "world:3", "--out", "o", "--llm", "magic:x"], "unknown llm schema"),
        (["captions", "--seeds", "world:3", "--out", "o", "--k", "-1"], "captions.k must be >= 0"),
        (["captions", "--seeds", "world:3", "--out", "o", "--shard-size", "0"], "shard_size is out of range"),
        (["captions", "--seeds", "world:3", "--out", "o", "--prompt", "/no/prompt.txt"], "not found"),
        (["instruct", "--out", "o"], "give --captions"),
        (["instruct", "--captions", "/no/c.jsonl", "--out", "o"], "not found"),
    ],
)
def test_cli_bad_input(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unicorn: error:") and message in err and "\n" not in err


def test_photograph_judge_removes_what_it_says_no_to(minilm):
    """The SynthVLM-style judge: a served model answers yes/no per caption; 'no' rows are counted under judge."""

    def reply(body, _):
        caption = body["messages"][0]["content"].rsplit("Text: ", 1)[1]
        return 200, " no" if "preheat" in caption else " yes"

    batch = {
        "seed": ["A kitchen with an oven.", "A kitchen with an oven."],
        "caption": [
            "A bright kitchen with a steel oven, white tiles and a wooden table by the window.",
            "First preheat the kitchen oven, then open the door of the oven and wait by it.",
        ],
        "error": [None, None],
    }
    with openai_stub(reply) as url:
        judge = create_llm(f"openai:{url}#m")
        out = apply_filters(batch, FilterConfig(judge=True, min_faithfulness=0.0), encoder=minilm, judge=judge)
    assert out["reject"] == [None, "judge"]


def test_the_free_scene_check_runs_before_the_paid_judge(minilm):
    """FUNNEL order: a variant the scene check rejects is never sent to the judge (counted: judge requests)."""
    from unicorn.llm import LLM, Completion

    class CountingJudge(LLM):  # an in-process judge that says yes and counts what it is asked
        spec = model_id = "counting:judge"

        def _generate(self, requests, params, done):
            for j in range(len(requests)):
                done(j, Completion("yes"))

    judge = CountingJudge()
    batch = {"caption": ["A large red square sits just beside a small blue circle on a plain grey background.",
                         "A green star floats above a white diamond on a plain grey background in this picture."],
             "seed": ["A red square and a blue circle.", "A green star and a white diamond."],
             "error": [None, None]}  # fmt: skip
    out = apply_filters(batch, FilterConfig(judge=True, min_faithfulness=0.0), encoder=minilm, judge=judge,
                        scene_wrong=[True, False])  # fmt: skip
    assert out["reject"] == ["scene", None] and judge.usage.requests == 1
