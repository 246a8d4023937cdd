"""vLLM's structured outputs on SmolLM2: ``SamplingParams(structured_outputs=
StructuredOutputsParams(json=... | regex=... | choice=... | grammar=... | json_object=True))``
and the older ``guided_decoding=GuidedDecodingParams(...)``. Schema outputs validate with
``jsonschema``; regex and choice outputs match (and without the constraint they do not, so the
test shows the constraint at work); bad constraints raise ``ValueError`` naming the field or the
unsupported schema keyword."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from ondo import LLM, GuidedDecodingParams, SamplingParams, StructuredOutputsParams

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "enum": ["서울", "부산", "Paris"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3},
        },
        "required": ["city", "tags"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "point": {"$ref": "#/$defs/point"},
            "label": {"anyOf": [{"type": "string", "pattern": "^[a-z]{1,8}$"}, {"type": "null"}]},
        },
        "required": ["point", "label"],
        "additionalProperties": False,
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "number", "minimum": -10, "maximum": 10}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
    },
]
PROMPTS = ["Describe a person as JSON:", "Pick a city and some tags, as JSON:", "A labelled point, as JSON:"]


def texts(llm: LLM, prompts: list[str], **kwargs) -> list[str]:
    outputs = llm.generate(prompts, SamplingParams(max_tokens=80, seed=3, **kwargs))
    return [c.text for o in outputs for c in o.outputs]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_json_schema_outputs_validate(llm: LLM, temperature: float):
    # one generate call: every schema's requests run in one engine batch
    params = [
        SamplingParams(
            max_tokens=120,
            temperature=temperature,
            seed=5,
            structured_outputs=StructuredOutputsParams(json=schema if i % 2 == 0 else json.dumps(schema)),
        )
        for i, schema in enumerate(SCHEMAS)
    ]
    for schema, out in zip(SCHEMAS, llm.generate(PROMPTS, params)):
        c = out.outputs[0]
        assert c.finish_reason == "stop", (c.finish_reason, c.text)
        jsonschema.validate(json.loads(c.text), schema)


def test_without_the_constraint_the_same_prompts_do_not_validate(llm: LLM):
    failures = 0
    for schema, text in zip(SCHEMAS, texts(llm, PROMPTS, temperature=0.7)):
        try:
            jsonschema.validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError):
            failures += 1
    assert failures > 0, "the unconstrained control validated: the schema test would prove nothing"


def test_json_object_regex_choice_and_grammar_match(llm: LLM):
    prompts = ["Your favourite color?"] * 4
    regex = r"[A-Z][a-z]{2,8} [0-9]{2}"
    choice = ["red", "green", "blue"]
    outputs = {
        "json_object": texts(llm, prompts, temperature=0.8, structured_outputs=StructuredOutputsParams(json_object=True)),
        "regex": texts(llm, prompts, temperature=0.8, structured_outputs=StructuredOutputsParams(regex=regex)),
        "choice": texts(llm, prompts, temperature=0.8, structured_outputs=StructuredOutputsParams(choice=choice)),
        "grammar": texts(
            llm, prompts, temperature=0.8, structured_outputs=StructuredOutputsParams(grammar='start: "yes" | "no"')
        ),
    }
    for text in outputs["json_object"]:
        assert isinstance(json.loads(text), dict), text
    assert all(re.fullmatch(regex, t) for t in outputs["regex"]), outputs["regex"]
    assert all(t in choice for t in outputs["choice"]), outputs["choice"]
    assert all(t in ("yes", "no") for t in outputs["grammar"]), outputs["grammar"]
    free = texts(llm, prompts, temperature=0.8)
    assert not all(t in choice for t in free), "the unconstrained control matched the choice"


def test_the_older_guided_decoding_name_and_a_dict_work(llm: LLM):
    choice = ["alpha", "beta"]
    old = texts(llm, ["Pick one:"] * 3, temperature=0.9, guided_decoding=GuidedDecodingParams(choice=choice))
    as_dict = texts(llm, ["Pick one:"] * 3, temperature=0.9, structured_outputs={"choice": choice})
    assert all(t in choice for t in old + as_dict), (old, as_dict)


@pytest.mark.parametrize(
    "so, says",
    [
        ({"json": {"type": "array", "uniqueItems": True}}, "uniqueItems"),
        ({"json": {"type": "object", "not": {"required": ["a"]}}}, "not"),
        ({"json": "{not json"}, "structured_outputs.json"),
        ({"regex": "(unclosed"}, "structured_outputs.regex"),
    ],
)
def test_a_constraint_the_engine_cannot_follow_is_a_value_error_naming_it(llm: LLM, so: dict, says: str):
    params = SamplingParams(structured_outputs=StructuredOutputsParams(**so))
    with pytest.raises(ValueError, match=re.escape(says)):
        llm.generate("hi", params)
    assert llm.generate("hi", SamplingParams(max_tokens=2))[0].outputs[0].token_ids  # still serving


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"structured_outputs": StructuredOutputsParams()}, "structured_outputs must set one of"),
        ({"structured_outputs": StructuredOutputsParams(regex="a", choice=["a"])}, "only one of"),
        ({"structured_outputs": StructuredOutputsParams(choice=[])}, "structured_outputs.choice"),
        ({"structured_outputs": {"choice": "abc"}}, "structured_outputs.choice must be a list of strings"),
        ({"structured_outputs": {"regex": 3}}, "structured_outputs.regex must be a string"),
        (
            {"structured_outputs": StructuredOutputsParams(regex="a"), "guided_decoding": GuidedDecodingParams(regex="b")},
            "not both",
        ),
    ],
)
def test_bad_structured_outputs_raise_value_error_naming_the_field(kwargs: dict, says: str):
    with pytest.raises(ValueError, match=re.escape(says)):
        SamplingParams(**kwargs)


def test_vllm_options_ondo_lacks_are_named():
    with pytest.raises(ValueError, match="whitespace_pattern"):
        StructuredOutputsParams(json={"type": "object"}, whitespace_pattern=r"\s*")
