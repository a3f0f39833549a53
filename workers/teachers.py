"""Teacher factory, called inside the teacher's actor so the embedding model loads there."""

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
    raise ValueError(f"teacher.kind {kind!r} is not one of 'rules', 'embed'")
