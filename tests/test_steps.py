"""A stage is one module: a step defined here, in the test module alone (no project file edited), registered with
`register_step`, configured by its own YAML section, runs under both engines with identical rows; the shard record
keeps the column it declares."""

import sys
from dataclasses import dataclass

import pytest

from tests.test_pipeline import read_run
from tests.test_scale import quick_config, seeds_file
from unicorn.errors import InputError
from unicorn.pipeline.config import load_config
from unicorn.pipeline.run import run_pipeline
from unicorn.steps import Step, alive, register_step, step_names, unregister_step


@dataclass(frozen=True)
class WordsConfig:
    longest: int = 12  # captions with more words than this are rejected

    def __post_init__(self) -> None:
        if self.longest < 1:
            raise InputError(f"words.longest must be >= 1, got {self.longest}")


class WordsStep(Step):
    """Counts each caption's words into a metadata column and rejects captions longer than `longest`."""

    name = "words"
    config_class = WordsConfig
    metadata = ("caption_words",)
    ray_defaults = {"concurrency": 1, "num_cpus": 0, "num_gpus": 0}

    def __init__(self, config: WordsConfig, *, seed: int = 0, runtime=None) -> None:
        self.config = config

    def __call__(self, batch):
        words = [len(c.split()) for c in batch["caption"]]
        reject = list(batch["reject"])
        for i in alive(batch):
            if words[i] > self.config.longest:
                reject[i] = "too many words"
        return {**batch, "caption_words": words, "reject": reject}


@pytest.fixture
def words_step():
    register_step(WordsStep, before="embed")
    try:
        yield
    finally:
        unregister_step("words")


def config_with_words(tmp_path):
    path = quick_config(tmp_path, seeds_file(tmp_path, 6), shard_size=3)
    path.write_text(path.read_text() + "words: {longest: 15}\n")
    return load_config(path)


def test_a_registered_step_runs_in_its_place_with_its_own_section(words_step, tmp_path):
    assert step_names() == ("captions", "dedup", "instruct", "words", "embed")
    config = config_with_words(tmp_path)
    assert config.section("words") == WordsConfig(longest=15) and config.ray.actor("words").num_cpus == 0
    run_pipeline(config, tmp_path / "run", progress=False, log=lambda m: None)
    shards = read_run(tmp_path / "run")
    words = [w for meta, *_ in shards.values() for w in meta["caption_words"]]
    assert words and max(words) <= 15 and len(words) < 6  # the long captions were rejected by the step
    with pytest.raises(InputError, match="words.longest must be >= 1"):
        load_config(overrides={"words": {"longest": 0}})
    with pytest.raises(InputError, match="unknown config key wordz"):
        load_config(overrides={"wordz": {}})


@pytest.mark.slow
def test_a_registered_step_gives_the_same_rows_on_ray(words_step, ray_local, tmp_path):
    import ray.cloudpickle

    # the workers have not imported this test module: its classes travel by value, as a user's own module would
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = config_with_words(tmp_path)
    run_pipeline(config, tmp_path / "local", progress=False, log=lambda m: None)
    run_pipeline(config, tmp_path / "ray", engine="ray", progress=False, log=lambda m: None)
    assert read_run(tmp_path / "ray") == read_run(tmp_path / "local")
    assert all("caption_words" in meta for meta, *_ in read_run(tmp_path / "ray").values())
