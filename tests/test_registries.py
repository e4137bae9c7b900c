"""Open registries: a projector, an LLM backend and an encoder defined here, outside the package, are usable by
spec string from a run config, the same as the built-in ones."""

import numpy as np
import pytest

from modality_transfer import Projector, create_projector, register_projector, unregister_projector
from tests.test_pipeline import read_run
from tests.test_scale import seeds_file
from unicorn.errors import InputError
from unicorn.llm import BACKENDS, LLM, Completion, list_backends, register_backend
from unicorn.pipeline.config import load_config
from unicorn.pipeline.run import run_pipeline


class HalfShift(Projector):
    """Half of the text mean out: a user's own method."""

    name = "half_shift"

    def state_shapes(self, dim):
        return {"text_mean": (dim,)}

    def _fit(self, text, image):
        return {"text_mean": text.mean(0)}

    def _transform(self, x, start):
        return x - 0.5 * self.state["text_mean"]


class EchoLLM(LLM):
    """A user's backend: answers a caption prompt with its seed caption, reworded (no model)."""

    def __init__(self, ident: str, *, cache=None) -> None:
        super().__init__(cache=cache)
        self.spec, self.model_id = f"echo:{ident}", f"echo:{ident}"

    def _generate(self, requests, params, done) -> None:
        for j, messages in enumerate(requests):
            seed = messages[-1]["content"].rsplit("Caption:", 1)[-1].split("\n")[0].strip()
            done(j, Completion("In this picture: " + seed[0].lower() + seed[1:], completion_tokens=8))


@pytest.fixture
def registered():
    register_projector(HalfShift)
    register_backend("echo", EchoLLM)
    try:
        yield
    finally:
        unregister_projector("half_shift")
        BACKENDS.unregister("echo")


def test_a_projector_and_a_backend_from_outside_run_from_a_config(registered, tmp_path):
    rng = np.random.default_rng(0)
    text = rng.standard_normal((64, 256)).astype(np.float32)
    create_projector("half_shift").fit(text).save(tmp_path / "half")
    config = tmp_path / "own.yaml"
    config.write_text(
        f"seeds: {{source: {seeds_file(tmp_path, 4)}}}\ncaptions: {{k: 1, llm: 'echo:v1', include_seeds: false}}\n"
        f"instruct: {{llm_share: 0.0}}\nembed: {{projector: {tmp_path / 'half'}}}\nshard_size: 2\n"
    )
    assert "echo" in list_backends()
    manifest = run_pipeline(load_config(config), tmp_path / "run", progress=False, log=lambda m: None)
    provenance = {p for meta, *_ in read_run(tmp_path / "run").values() for p in meta["provenance"]}
    assert "llm:echo:v1" in provenance and manifest["llm_usage"]["requests"] == 4


def test_registering_the_wrong_thing_is_one_clear_error():
    with pytest.raises(InputError, match="must subclass unicorn.llm.LLM"):
        register_backend("bad", dict)
    with pytest.raises(InputError, match="Projector subclass"):
        register_projector(dict)
    from unicorn.llm import create_llm

    with pytest.raises(InputError, match="unknown llm schema 'nope'"):
        create_llm("nope:x")
