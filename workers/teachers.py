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
    if kind == "llm":
        return _llm_teacher(**params)
    if kind == "local":
        return _local_teacher(**params)
    raise ValueError(f"teacher.kind {kind!r} is not one of 'rules', 'embed', 'llm', 'local'")


def _llm_teacher(*, client: dict[str, Any], templates: str | None, discovery_sample: int, merge: str,
                 max_skills: int, max_tokens: int | None, seed: int, sender: Any = None) -> Teacher:
    """The STAT teacher over a chat endpoint (`client`: ChatClient's arguments)."""
    from pathlib import Path

    from sgi.skills.llm_teacher import LLMTeacher, load_templates
    from sgi.workers.llm_client import ChatClient

    embed = None
    if merge == "embed":
        from sgi.workers.embedder import Embedder

        embed = Embedder().encode
    return LLMTeacher(ChatClient(**client, sender=sender).complete,
                      load_templates(Path(templates) if templates else None),
                      discovery_sample=discovery_sample, merge=merge, max_skills=max_skills, embed=embed,
                      max_tokens=max_tokens, seed=seed)


def _local_teacher(*, local_model: str, local_dtype: str, local_engine: str, threads: int | None,
                   client: dict[str, Any], **params: Any) -> Teacher:
    """The llm teacher's prompts, retries and cache, answered by a model in this process: on
    vLLM (`auto` where it is importable) with guided decoding by each reply's schema, or on
    transformers without it, leaning on validation and re-asks."""
    from sgi.workers.models import resolve_model
    from sgi.workers.vllm_student import vllm_available

    path = resolve_model(local_model)
    client = {**client, "base_url": "", "model": str(path)}
    if local_engine == "vllm" or (local_engine == "auto" and vllm_available()):
        from sgi.workers.local_chat import VLLMLocalSender

        return _llm_teacher(client=client, sender=VLLMLocalSender(path, local_dtype), **params)
    from sgi.workers.local_chat import LocalSender

    return _llm_teacher(client={**client, "structured": "off"}, sender=LocalSender(path, local_dtype, threads),
                        **params)
