#!/usr/bin/env python3
"""Make the chat-template goldens that ondo-text's tests compare against (fixtures/templates/).

What transformers itself renders, so ondo's templates can be checked byte for byte:
- transformers_goldens.json: every .jinja in ../shared/models/chat-templates/llamacpp-templates{,-2026}/
  rendered for a fixed set of conversations (Korean, multi-turn, system prompts, tools, documents,
  reasoning, content parts, roles out of order) through transformers' own
  `render_jinja_template` (what `apply_chat_template` calls). A render that raises is recorded as
  the error; `raised_by_template` tells a template's own `raise_exception(...)` from other errors.
- tokenizer_goldens.json: the same conversations through `AutoTokenizer.from_pretrained(dir)
  .apply_chat_template(..., tokenize=False)` for every model folder in ../shared/models with a
  tokenizer_config.json (its own template and special tokens, as a user would call it).
- hfjs_transformers.json: the 53 huggingface.js e2e cases rendered by transformers' jinja
  environment, to tell where huggingface.js' targets and Python disagree.

`strftime_now` is fixed at 2025-07-10 12:00:00 on both sides.

Usage (torch is not needed):
    python3 -m venv /tmp/venv-tmpl && /tmp/venv-tmpl/bin/pip install transformers jinja2
    /tmp/venv-tmpl/bin/python tools/make_template_goldens.py [--shared ../shared]
"""

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

FIXED_NOW = dt.datetime(2025, 7, 10, 12, 0, 0)
BOS, EOS = "<|bos|>", "<|eos|>"
TEMPLATE_DIRS = ["models/chat-templates/llamacpp-templates", "models/chat-templates/llamacpp-templates-2026"]


class FixedClock(dt.datetime):
    """`datetime` whose now() is FIXED_NOW; transformers' strftime_now looks the name up per call."""

    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "도시의 현재 날씨를 알려준다",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "도시 이름"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

SYSTEM_KO = {"role": "system", "content": "당신은 친절한 한국어 도우미입니다."}

# name -> (messages, options); options: add_generation_prompt, tools, documents, extra
CONVERSATIONS = {
    "single_user": (
        [{"role": "user", "content": "Hello! How are you?"}],
        {"add_generation_prompt": True},
    ),
    "korean_system_multiturn": (
        [
            SYSTEM_KO,
            {"role": "user", "content": "안녕하세요! 오늘 서울 날씨는 어때요?"},
            {"role": "assistant", "content": "안녕하세요. 저는 실시간 날씨를 볼 수 없지만, 도와드릴게요."},
            {"role": "user", "content": "그럼 김치찌개 만드는 법을 알려 주세요."},
        ],
        {"add_generation_prompt": True},
    ),
    "korean_no_system_no_prompt": (
        [
            {"role": "user", "content": "한국의 수도는?"},
            {"role": "assistant", "content": "서울입니다."},
            {"role": "user", "content": "인구는요?"},
            {"role": "assistant", "content": "약 940만 명입니다.\n\n더 궁금한 점이 있나요?  "},
        ],
        {"add_generation_prompt": False},
    ),
    "content_parts": (
        [
            {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
            {"role": "user", "content": [{"type": "text", "text": "두 문장으로 "}, {"type": "text", "text": "요약해 줘."}]},
        ],
        {"add_generation_prompt": True},
    ),
    "tools": (
        [
            SYSTEM_KO,
            {"role": "user", "content": "서울 날씨 알려 줘"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "서울", "unit": "celsius"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temperature": 23, "condition": "맑음"}'},
            {"role": "assistant", "content": "서울은 맑고 23도입니다."},
            {"role": "user", "content": "고마워!"},
        ],
        {"add_generation_prompt": True, "tools": [WEATHER_TOOL]},
    ),
    "reasoning": (
        [
            {"role": "user", "content": "2+3은?"},
            {"role": "assistant", "content": "5입니다.", "reasoning_content": "2 더하기 3은 5."},
            {"role": "user", "content": "그럼 5*7은?"},
        ],
        {"add_generation_prompt": True, "extra": {"enable_thinking": False, "reasoning_effort": "low"}},
    ),
    "documents": (
        [{"role": "user", "content": "가장 큰 펭귄은?"}],
        {
            "add_generation_prompt": True,
            "documents": [
                {"title": "펭귄", "text": "황제펭귄은 키가 최대 122cm로 가장 크다."},
                {"title": "Penguins", "text": "Emperor penguins are the tallest."},
            ],
        },
    ),
    "continue_final_message": (
        [
            SYSTEM_KO,
            {"role": "user", "content": "짧은 시를 써 줘."},
            {"role": "assistant", "content": "봄바람이 불어와 "},
        ],
        {"continue_final_message": True},
    ),
    "roles_out_of_order": (
        [
            {"role": "assistant", "content": "먼저 말해도 될까요?"},
            {"role": "assistant", "content": "두 번 연속입니다."},
            {"role": "user", "content": "네."},
        ],
        {"add_generation_prompt": True},
    ),
}


def render(source, messages, options):
    """transformers' render of one conversation: {"expected": text} or the error it raised."""
    try:
        rendered, _ = ctu.render_jinja_template(
            conversations=[messages],
            tools=options.get("tools"),
            documents=options.get("documents"),
            chat_template=source,
            add_generation_prompt=options.get("add_generation_prompt", False),
            continue_final_message=options.get("continue_final_message", False),
            bos_token=BOS,
            eos_token=EOS,
            **options.get("extra", {}),
        )
        return {"expected": rendered[0]}
    except Exception as e:  # noqa: BLE001 - every failure is a golden too
        return error_record(e)


def error_record(e):
    return {
        "error": str(e),
        "error_type": type(e).__name__,
        "raised_by_template": type(e) is jinja2.exceptions.TemplateError,
    }


def template_goldens(shared):
    cases = []
    for folder in TEMPLATE_DIRS:
        for path in sorted((shared / folder).glob("*.jinja")):
            source = path.read_text(encoding="utf-8")
            for name, (messages, options) in CONVERSATIONS.items():
                case = {"template": f"{folder}/{path.name}", "conversation": name}
                case.update(render(source, messages, options))
                cases.append(case)
    return cases


def tokenizer_goldens(shared):
    from transformers import AutoTokenizer

    out = []
    for config in sorted((shared / "models").glob("*/tokenizer_config.json")):
        tokenizer = AutoTokenizer.from_pretrained(config.parent)
        for name, (messages, options) in CONVERSATIONS.items():
            try:
                record = {
                    "expected": tokenizer.apply_chat_template(
                        messages,
                        tools=options.get("tools"),
                        documents=options.get("documents"),
                        add_generation_prompt=options.get("add_generation_prompt", False),
                        continue_final_message=options.get("continue_final_message", False),
                        tokenize=False,
                        **options.get("extra", {}),
                    )
                }
            except Exception as e:  # noqa: BLE001
                record = error_record(e)
            out.append({"model": str(config.parent.relative_to(shared)), "conversation": name, **record})
    return out


def hfjs_goldens(shared):
    doc = json.loads((shared / "models/chat-templates/hfjs_jinja_e2e_cases.json").read_text(encoding="utf-8"))
    out = []
    for case in doc["cases"]:
        data = {k: v for k, v in case["data"].items() if not (isinstance(v, dict) and v.get("__undefined__"))}
        try:
            record = {"expected": ctu._compile_jinja_template(case["chat_template"]).render(**data)}
        except Exception as e:  # noqa: BLE001
            record = error_record(e)
        out.append({"name": case["name"], **record})
    return out


def write(path, doc):
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def main():
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=repo.parent / "shared")
    parser.add_argument("--out", type=Path, default=repo / "fixtures/templates")
    args = parser.parse_args()
    ctu.datetime = FixedClock
    args.out.mkdir(parents=True, exist_ok=True)
    made_by = {"transformers": transformers.__version__, "jinja2": jinja2.__version__}
    conversations = {
        name: {"messages": messages, "options": options} for name, (messages, options) in CONVERSATIONS.items()
    }
    cases = template_goldens(args.shared)
    write(
        args.out / "transformers_goldens.json",
        {
            "made_by": made_by,
            "now": FIXED_NOW.isoformat(),
            "bos_token": BOS,
            "eos_token": EOS,
            "conversations": conversations,
            "cases": cases,
        },
    )
    write(
        args.out / "tokenizer_goldens.json",
        {"made_by": made_by, "now": FIXED_NOW.isoformat(), "conversations": conversations, "cases": tokenizer_goldens(args.shared)},
    )
    write(args.out / "hfjs_transformers.json", {"made_by": made_by, "now": FIXED_NOW.isoformat(), "cases": hfjs_goldens(args.shared)})
    errors = sum("error" in c for c in cases)
    print(f"{len(cases)} template renders, {errors} raise", file=sys.stderr)


if __name__ == "__main__":
    main()
