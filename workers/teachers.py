"""Teacher factory, called inside the teacher's actor so the embedding model (or the HTTP client) lives there."""

from __future__ import annotations

from typing import Any

from sgi.skills.interfaces import Teacher


def make_teacher(kind: str, **params: Any) -> Teacher:
    if kind == "rules":
        from sgi.skills.rules import RulesTeacher

        return RulesTeacher()
    if kind == "embed":
        from sgi.skills.embed_teacher import EmbedTeacher
        from sgi.workers.embedder import Embedder

        return EmbedTeacher(embed=Embedder().encode, **params)
    if kind == "llm":  # also the `local` kind: build.teacher_args gives it base_url None
        return _llm_teacher(**params)
    raise ValueError(f"teacher.kind {kind!r} is not one of 'rules', 'embed', 'llm', 'local'")


def _llm_teacher(*, base_url: str | None, model: str, api_key_env: str | None, max_concurrency: int,
                 timeout_s: float, max_retries: int, parse_retries: int, structured: str, cache: Any,
                 templates: str | None, discovery_sample: int, merge: str, max_skills: int, max_tokens: int | None,
                 seed: int, local_dtype: str | None = None, threads: int | None = None) -> Teacher:
    """base_url None: the `local` kind, `model` answered in this process (no guided decoding)."""
    from pathlib import Path

    from sgi.skills.llm_teacher import LLMTeacher, load_templates
    from sgi.workers.llm_client import ChatClient

    sender = None
    if base_url is None:
        from sgi.workers.local_chat import LocalSender
        from sgi.workers.models import resolve_student

        path = resolve_student(model)
        model, sender, structured = str(path), LocalSender(path, local_dtype or "auto", threads), "off"
    client = ChatClient(base_url or "", model, api_key_env=api_key_env, max_concurrency=max_concurrency,
                        timeout_s=timeout_s, max_retries=max_retries, parse_retries=parse_retries,
                        structured=structured, cache=cache, sender=sender)
    embed = None
    if merge == "embed":
        from sgi.workers.embedder import Embedder

        embed = Embedder().encode
    return LLMTeacher(client.complete, load_templates(Path(templates) if templates else None),
                      discovery_sample=discovery_sample, merge=merge, max_skills=max_skills, embed=embed,
                      max_tokens=max_tokens, seed=seed)
