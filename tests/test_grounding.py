"""LLM-written turns checked against their context; schema-constrained replies from the real embedded model."""

import json

import pytest

from tests.conftest import SHARED, openai_stub
from unicorn.instruct.grounding import check_turn, context_words
from unicorn.instruct.writer import decoding_schema, parse_turns, plan_types, turn_schema, write_conversations
from unicorn.llm import SamplingParams, create_llm

CAPTION = "A black dog sits on a red couch next to a window with white curtains."
CONTEXT = context_words(CAPTION)


@pytest.mark.parametrize(
    "turn",
    [
        {"type": "short", "question": "What colour is the couch?", "answer": "The couch is red."},
        {"type": "yes_no", "question": "Is the dog sitting on the couch?", "answer": "Yes"},
        {"type": "yes_no", "question": "Is the dog wearing a collar?", "answer": "No"},
        {"type": "multiple_choice", "question": "What is next to the couch?",
         "options": ["a door", "window", "a lamp", "a tree"], "answer": "B"},
        {"type": "unanswerable", "question": "What is the dog's name?", "answer": "That cannot be told."},
        {"type": "summary", "question": "Describe the image.", "answer": "A black dog on a red couch by a window."},
    ],
)  # fmt: skip
def test_supported_turns_are_kept(turn):
    assert check_turn(turn, CONTEXT) is None


@pytest.mark.parametrize(
    "turn, why",
    [
        ({"type": "yes_no", "question": "Is the couch blue?", "answer": "Yes"}, "does not state"),
        ({"type": "yes_no", "question": "Is the dog on the couch?", "answer": "No"}, "context states"),
        ({"type": "short", "question": "What is the dog doing?", "answer": "It is chasing a cat in a garden."},
         "not supported"),
        ({"type": "multiple_choice", "question": "What is next to the couch?",
          "options": ["a door", "window", "a lamp", "a tree"], "answer": "A"}, "not in the context"),
        ({"type": "multiple_choice", "question": "What is on the couch?",
          "options": ["dog", "dog", "a lamp", "a tree"], "answer": "A"}, "repeated"),
        ({"type": "unanswerable", "question": "What colour is the couch?", "answer": "That cannot be told."},
         "answers"),
        ({"type": "unanswerable", "question": "Is the dog on the red couch?", "answer": "That cannot be told."},
         "context states"),
        ({"type": "short", "question": "What is the man wearing?", "answer": "red"}, "not about the context"),
    ],
)  # fmt: skip
def test_unsupported_turns_are_rejected_with_the_reason(turn, why):
    reason = check_turn(turn, CONTEXT)
    assert reason is not None and why in reason


def test_scene_and_boxes_count_as_context():
    world = context_words("Some shapes.", {"objects": [{"shape": "star", "colour": "green", "size": "small",
                                                        "texture": "dotted"}]})  # fmt: skip
    assert check_turn({"type": "short", "question": "What shape is it?", "answer": "a green star"}, world) is None
    boxes = context_words("A kitchen.", {"instances": [{"category": "oven", "bbox": [0, 0, 1, 1]}]})
    assert check_turn({"type": "yes_no", "question": "Is there an oven?", "answer": "Yes"}, boxes) is None


def test_the_decoding_schema_closes_what_it_can():
    types = ["short", "multiple_choice", "yes_no", "unanswerable"]
    schema = decoding_schema(types, CAPTION, key=5)
    SamplingParams(json_schema=json.dumps(schema))  # a valid JSON Schema
    short, mc, yes_no, unanswerable = schema["prefixItems"]
    assert "red couch" in short["properties"]["answer"]["enum"]
    slots = mc["properties"]["options"]["prefixItems"]
    right = "ABCD".index(mc["properties"]["answer"]["const"])
    assert "enum" in slots[right] and all("const" in s for k, s in enumerate(slots) if k != right)
    assert len({s["const"] for k, s in enumerate(slots) if k != right}) == 3  # distinct distractors
    assert yes_no["properties"]["answer"]["enum"] == ["Yes", "No"] and "const" in unanswerable["properties"]["answer"]
    assert plan_types(5, 4) == plan_types(5, 4) and len(set(plan_types(5, 6))) == 6


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["in-process", "llama.cpp server"])
def test_the_embedded_model_writes_schema_valid_conversations_for_every_type(backend):
    """Real captions, the real 270M model, the schema enforced while decoding (in-process by llama.cpp's grammar, or
    behind a real `python -m llama_cpp.server` through `openai:`): every reply parses under the loose final schema,
    at least 80% are kept after the grounding check, and every planned type appears across the set."""
    from unicorn.llm.llamacpp import default_model_path
    from unicorn.llm.server import llama_server
    from unicorn.seeds import read_seeds

    coco = SHARED / "coco_captions_val2017" / "captions_val2017.json"
    if not coco.is_file():
        pytest.skip(f"shared COCO captions not found at {coco}")
    rows, _ = read_seeds(str(coco), limit=8)
    batch = {"id": [r["id"] for r in rows], "caption": [r["text"] for r in rows]}
    if backend == "in-process":
        convs, rejects = write_conversations(batch, create_llm("llamacpp:default"), min_turns=3, max_turns=3,
                                             repairs=1, max_tokens=320)  # fmt: skip
    else:
        with llama_server(default_model_path()) as url:
            convs, rejects = write_conversations(batch, create_llm(f"openai:{url}#gemma"), min_turns=3,
                                                 max_turns=3, repairs=1, max_tokens=320)  # fmt: skip
    schema_failures = [r for r in rejects if not r["reason"].startswith("ungrounded")]
    assert len(schema_failures) <= len(rows) * 0.05, schema_failures  # >= 95% pass the schema
    assert len(convs) >= 0.8 * len(rows), rejects  # >= 80% kept after grounding
    seen = {t for c in convs for t in c["types"]} | {d["type"] for c in convs for d in c["dropped"]}
    assert len(seen) >= 5, seen
    for c in convs:
        assert len(c["conversations"]) // 2 >= 2


def test_a_conversation_with_too_few_grounded_turns_is_rejected_with_its_reason():
    """A stub server (a real model will not write a chosen unsupported answer on demand): one reply grounded, one
    that says 'Yes' to what the caption never states; the first is kept, the second dropped with its reason."""
    good = [
        {"type": "short", "question": "What colour is the couch?", "answer": "red"},
        {"type": "yes_no", "question": "Is the dog on the couch?", "answer": "Yes"},
    ]
    bad = [{"type": "short", "question": "What colour is the couch?", "answer": "red"},
           {"type": "yes_no", "question": "Is the toilet red?", "answer": "Yes"}]  # fmt: skip

    def reply(body, _):
        return 200, json.dumps(good if "couch." in body["messages"][-1]["content"] else bad)

    with openai_stub(reply) as url:
        rows, rejects = write_conversations(
            {"id": ["a", "b"], "caption": [CAPTION.replace("curtains.", "couch."), CAPTION]},
            create_llm(f"openai:{url}#m"), min_turns=2, max_turns=2, repairs=0,
        )  # fmt: skip
    assert [r["id"] for r in rows] == ["a"] and [r["id"] for r in rejects] == ["b"]
    assert rejects[0]["reason"].startswith("ungrounded: 1 of 2 turns grounded; 'yes' to a question")
    assert parse_turns(json.dumps(good), turn_schema(2, 2))[0] is not None


def test_llava_kinds_keep_grounded_answers_and_say_why_others_go():
    """LLaVA's detail and complex kinds from captions + boxes, against a stub server (a real model will not write a
    chosen broken or unsupported reply on demand): a grounded answer is kept as a one-turn LLaVA row, an answer about
    what the context lacks and a broken reply are rejected with their reasons; conv honours min_grounded_turns."""
    from unicorn.instruct.llava_kinds import context_text, write_kinds

    scene = {"captions": ["A dog sleeps on a red couch.", "A couch with a dog."],
             "instances": [{"category": "dog", "bbox": [0.1, 0.2, 0.5, 0.6]},
                           {"category": "couch", "bbox": [0.0, 0.3, 1.0, 1.0]}]}  # fmt: skip
    assert context_text(scene, "x").splitlines()[2] == "dog: [0.10, 0.20, 0.50, 0.60]"
    replies = {
        "a": '{"answer": "A dog sleeps on a red couch."}',
        "b": '{"answer": "Three cats chase a mouse across the kitchen floor."}',
        "c": '{"answer": "A dog',
    }

    def reply(body, _):
        if "Turns:" in body["messages"][-1]["content"]:  # conv: one grounded turn only
            return 200, json.dumps([{"type": "short", "question": "What is on the couch?", "answer": "dog"},
                                    {"type": "yes_no", "question": "Is the couch blue?", "answer": "Yes"},
                                    {"type": "yes_no", "question": "Is there a cat?", "answer": "Yes"}])  # fmt: skip
        return 200, replies[body["messages"][-1]["content"].split("Context:\n")[-1].split("\n")[0][-1]]

    scenes = [{**scene, "captions": [f"A dog sleeps on a red couch. {i}"]} for i in "abc"]
    batch = {"id": ["a", "b", "c"], "caption": ["x a", "x b", "x c"], "scene": scenes}
    with openai_stub(reply) as url:
        llm = create_llm(f"openai:{url}#m")
        rows, rejects = write_kinds(batch, llm, ("detail", "conv"), repairs=0)
        lenient, _ = write_kinds(batch, llm, ("conv",), repairs=0, min_grounded_turns=1)
    detail = {r["image"]: r for r in rows if r["kind"] == "detail"}
    assert list(detail) == ["a"] and detail["a"]["conversations"][1]["value"] == "A dog sleeps on a red couch."
    why = {(r["id"], r["kind"]): r["reason"] for r in rejects}
    assert why[("b", "detail")].startswith("ungrounded: summary answer not supported")
    assert why[("c", "detail")].startswith("invalid JSON")
    assert all(why[(i, "conv")].startswith("ungrounded: 1 of 3 turns grounded") for i in "abc")
    assert [len(r["conversations"]) // 2 for r in lenient] == [1, 1, 1]  # the option reaches the conv writer


@pytest.mark.parametrize(
    "caption, facts",
    [
        ("Two women waiting at a bench next to a street.",
         {("count", "How many women are there?", "two"), ("action", "What are the women doing?", "waiting at a bench"),
          ("place", "Where is the bench?", "next to a street")}),
        ("A black Honda motorcycle parked in front of a garage.",
         {("colour", "What colour is the honda motorcycle?", "black"),
          ("place", "Where is the honda motorcycle?", "in front of a garage")}),
        ("An old man is wearing an odd hat", {("action", "What is the old man doing?", "wearing an odd hat")}),
        (CAPTION, {("colour", "What colour is the couch?", "red"),
                   ("colour", "What colour are the curtains?", "white")}),
    ],
)  # fmt: skip
def test_caption_slots_read_what_the_caption_states(caption, facts):
    from unicorn.instruct.slots import caption_slots

    assert facts <= {(f.kind, f.question, f.answer) for f in caption_slots(caption).facts}


def _instances(item: dict):
    """Every turn a slot-schema item allows, with a fixed sentence for its free answers."""
    for alt in item.get("anyOf", [item]):
        p = alt["properties"]
        answers = p["answer"].get("enum") or [p["answer"].get("const", "the dog sits on the red couch")]
        questions = p["question"].get("enum") or [p["question"]["const"]]
        options = [s.get("const") or s["enum"][0] for s in p["options"]["prefixItems"]] if "options" in p else None
        for q in questions:
            for a in answers:
                turn = {"type": p["type"]["const"], "question": q, "answer": a}
                yield turn if options is None else {**turn, "options": options}


def test_every_turn_the_slot_schema_allows_is_grounded():
    """The slot schema's claim, checked by the independent grounding check: whatever the model picks within it, the
    turn is grounded in the caption (and passes the final schema)."""
    import jsonschema

    from unicorn.instruct.writer import TYPES, slot_schema

    for caption in (CAPTION, "Two women waiting at a bench next to a street.", "An old man is wearing an odd hat"):
        schema = slot_schema(list(TYPES), caption, key=3)
        SamplingParams(json_schema=json.dumps(schema))  # a valid JSON Schema
        context = context_words(caption)
        n = 0
        for item in schema["prefixItems"]:
            for turn in _instances(item):
                if "the dog sits" in turn["answer"] and "dog" not in caption:
                    continue  # the fixed free sentence only fits the dog caption
                jsonschema.validate(turn, item)
                assert check_turn(turn, context) is None, (caption, turn)
                assert parse_turns(json.dumps([turn]), turn_schema(1, 1))[0] is not None
                n += 1
        assert n >= 12


def test_slot_free_answers_are_limited_to_the_captions_words():
    import jsonschema

    from unicorn.instruct.writer import slot_schema

    summary = slot_schema(["summary"], CAPTION, key=0)["prefixItems"][0]
    ok = {"type": "summary", "question": "Describe the image briefly.", "answer": "a black dog sits on a red couch"}
    jsonschema.validate(ok, summary)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ok, "answer": "a black cat chases a mouse"}, summary)


def test_questions_mode_is_checked():
    from unicorn.errors import InputError
    from unicorn.steps.instruct import InstructConfig

    with pytest.raises(InputError, match="questions must be one of slots, free"):
        InstructConfig(questions="open")
    with pytest.raises(InputError, match="questions must be one of"):
        write_conversations({"id": ["a"], "caption": [CAPTION]}, None, questions="open")


def test_answers_are_checked_against_the_scene_where_the_row_has_one():
    """Every word of the planted answers is the caption's, so the word check passes them all; the scene graph knows
    that the square is green and the triangle yellow, and that there are no boxes of a dog."""
    scene = {"objects": [{"shape": "square", "colour": "green", "size": "large", "texture": "plain"},
                         {"shape": "triangle", "colour": "yellow", "size": "small", "texture": "dotted"}]}  # fmt: skip
    caption = "A large green square and a small yellow dotted triangle."
    context = context_words(caption, scene)
    right = {"type": "summary", "question": "Describe the image briefly.", "answer": "a green square and a triangle"}
    swapped = {**right, "answer": "a yellow square and a green triangle"}
    yes = {"type": "yes_no", "question": "Is there a yellow square in the image?", "answer": "Yes"}
    assert check_turn(swapped, context) is None and check_turn(yes, context) is None  # words alone pass
    assert check_turn(right, context, scene=scene) is None
    assert "scene lacks" in check_turn(swapped, context, scene=scene)
    assert "scene lacks" in check_turn(yes, context, scene=scene)
    boxes = {"instances": [{"category": "couch", "bbox": [0, 0, 1, 1]}]}
    dog = {"type": "short", "question": "What is on the couch?", "answer": "a dog"}
    assert "scene lacks" in check_turn(dog, context_words("A dog on a couch.", boxes), scene=boxes)


def test_long_answers_are_checked_by_their_cosine_to_the_captions():
    """A long answer that infers and paraphrases fails the word share but sits close to its captions under the real
    all-MiniLM-L6-v2; an answer about another scene does not, whatever its length."""
    from unicorn.encoders import create_encoder
    from unicorn.instruct.grounding import MIN_COSINE
    from unicorn.instruct.llava_kinds import answer_cosines

    captions = "A dog sleeps on a red couch. A brown dog naps on a sofa in a living room."
    context = context_words(captions)
    inferred = ("The dog is probably resting on the couch because its soft cushions make a comfortable spot for a "
                "long afternoon nap indoors.")  # fmt: skip
    elsewhere = "Snow covers the mountain trail as hikers climb toward a frozen summit under a grey winter sky."
    close, far = answer_cosines(create_encoder("st:default"), [inferred, elsewhere], [captions, captions])
    turn = {"type": "reasoning", "question": "What might explain this arrangement?", "answer": inferred}
    assert "not about the context" in check_turn(turn, context, min_share=0.5)  # words reject the question
    assert "not supported" in check_turn({**turn, "question": "Why is the dog there?"}, context, min_share=0.5)
    assert close >= MIN_COSINE and check_turn(turn, context, similarity=close) is None
    reason = check_turn({**turn, "answer": elsewhere}, context, similarity=far)
    assert far < MIN_COSINE and "not close to the context" in reason
