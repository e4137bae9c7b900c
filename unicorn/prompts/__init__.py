"""Prompt templates and persona lists, shipped in `unicorn/prompts/` and replaceable by the user's own files."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

PROMPTS = Path(__file__).resolve().parent


def load_text(name_or_path: str | Path, *, fields: tuple[str, ...] = ()) -> str:
    """A shipped prompt by name (`caption`) or a user's file, checked to hold every `{field}` it must fill."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PROMPTS / f"{name_or_path}.txt"
    if not path.is_file():
        shipped = sorted(p.stem for p in PROMPTS.glob("*.txt"))
        raise InputError(f"prompt {name_or_path} not found (neither a file nor one of {shipped})")
    text = path.read_text(encoding="utf-8")
    missing = [f for f in fields if "{" + f + "}" not in text]
    if missing:
        raise InputError(f"prompt {path} lacks the placeholder {{{missing[0]}}}")
    return text


def load_lines(name_or_path: str | Path) -> list[str]:
    lines = [line.strip() for line in load_text(name_or_path).splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{name_or_path} holds no lines")
    return lines


def few_shot_messages(prompt: str) -> list[dict[str, str]]:
    """A filled few-shot prompt as [system: instructions and examples, user: its last paragraph (the request's own)].

    Rendered for a base model (`render_prompt`) the two give back `prompt` exactly; a backend that evaluates shared
    prefixes once (llama.cpp: `split_prefix`; servers with prefix caching) then pays only for the last paragraph.
    """
    head, sep, last = prompt.rstrip("\n").rpartition("\n\n")
    if not sep:
        return [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": head}, {"role": "user", "content": last}]
