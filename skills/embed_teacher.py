"""A teacher for unlabelled data: skills are clusters of question embeddings.

    teacher = EmbedTeacher(embed=Embedder().encode)      # from sgi.workers.embedder
    catalogue = teacher.build_catalogue(items)            # k-means; k by silhouette when n_skills=None
    labels = teacher.label(items, catalogue)              # nearest centroid + others above threshold

Each cluster is named by the words that set it apart (mean TF-IDF in the cluster minus
the rest), e.g. "fraction-simplify". Diagnosis has no model to ask, so it blames a
failed case's labelled skills in proportion to how often the student fails them.
Pure numpy/scikit-learn: the embedding function is handed in, so this module never
imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sgi.skills.records import Case, Diagnosis, Item, Label, Skill

K_RANGE = (2, 12)  # automatic k: best silhouette over this range (clipped to the data)
MIN_BLAME_SHARE = 0.2  # a labelled skill is named in a diagnosis when it carries this share of the blame
_NAME_WORDS, _DESCRIPTION_WORDS = 2, 6


class EmbedTeacher:
    """`Teacher` by k-means over sentence embeddings; deterministic for a fixed seed."""

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        n_skills: int | None = None,
        threshold: float = 0.6,
        max_labels: int = 5,
        seed: int = 0,
    ) -> None:
        if n_skills is not None and n_skills < 1:
            raise ValueError(f"EmbedTeacher n_skills must be >= 1 or None (automatic), got {n_skills}")
        if not 1 <= max_labels <= 5:
            raise ValueError(f"EmbedTeacher max_labels must be in 1..5, got {max_labels}")
        self.embed = embed
        self.n_skills = n_skills
        self.threshold = threshold
        self.max_labels = max_labels
        self.seed = seed
        self.centroids: dict[str, np.ndarray] = {}  # skill name -> unit-norm centroid (384,)
        self._cache: dict[str, np.ndarray] = {}  # question -> embedding, so label() after build reuses them

    def build_catalogue(self, items: Sequence[Item]) -> list[Skill]:
        from sklearn.cluster import KMeans

        if not items:
            raise ValueError("EmbedTeacher.build_catalogue needs at least one item")
        questions = [item.question for item in items]
        vectors = self._embed(questions)
        n_distinct = len(np.unique(vectors.round(6), axis=0))
        if self.n_skills is not None:
            k = min(self.n_skills, n_distinct)
            assignment = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit_predict(vectors) if k > 1 else np.zeros(len(items), int)
        else:
            k, assignment = self._auto_k(vectors, n_distinct)

        # Order skills by size (then first appearance) so names and order do not depend
        # on k-means' arbitrary cluster numbering.
        clusters = sorted(range(k), key=lambda c: (-(assignment == c).sum(), int(np.argmax(assignment == c))))
        top_words = _distinctive_words(questions, assignment, clusters)
        catalogue: list[Skill] = []
        self.centroids = {}
        for rank, cluster in enumerate(clusters):
            members = assignment == cluster
            words = top_words[cluster]
            name = _unique_slug("-".join(words[:_NAME_WORDS]) or f"cluster-{rank + 1}", self.centroids)
            centroid = vectors[members].mean(axis=0)
            self.centroids[name] = centroid / (np.linalg.norm(centroid) or 1.0)
            about = ", ".join(words[:_DESCRIPTION_WORDS]) or "no distinctive words"
            catalogue.append(Skill(name=name, description=f"Questions about: {about} ({int(members.sum())} items)"))
        return catalogue

    def label(self, items: Sequence[Item], catalogue: Sequence[Skill]) -> list[Label]:
        names = [skill.name for skill in catalogue if skill.name in self.centroids]
        if not names:
            raise ValueError("EmbedTeacher.label needs a catalogue from this teacher's build_catalogue; call it first")
        if not items:
            return []
        similarity = self._embed([item.question for item in items]) @ np.stack([self.centroids[n] for n in names]).T
        labels: list[Label] = []
        for item, row in zip(items, similarity):
            order = np.argsort(-row, kind="stable")
            chosen = [order[0]] + [j for j in order[1:] if row[j] >= self.threshold]
            labels += [Label(item.item_id, names[j], round(float(row[j]), 6)) for j in chosen[: self.max_labels]]
        return labels

    def diagnose(self, cases: Sequence[Case], skill_accuracy: dict[str, float],
                 catalogue: Sequence[Skill] = ()) -> list[Diagnosis]:
        unlabelled = [case for case in cases if not case.skills]
        nearest = {}
        if unlabelled:
            if not self.centroids:
                raise ValueError("EmbedTeacher.diagnose got cases without skills and has no catalogue; label them first")
            names = list(self.centroids)
            similarity = self._embed([c.item.question for c in unlabelled]) @ np.stack(list(self.centroids.values())).T
            nearest = {id(c): names[int(np.argmax(row))] for c, row in zip(unlabelled, similarity)}

        diagnoses = []
        for case in cases:
            skills = case.skills or (nearest[id(case)],)
            # Blame follows failure rate: a skill the student rarely gets right is the
            # likelier cause. An unmeasured skill counts as a coin flip.
            failure = {s: 1.0 - skill_accuracy.get(s, 0.5) for s in dict.fromkeys(skills)}
            ranked = sorted(failure, key=lambda s: -failure[s])  # stable: ties keep label order
            total = sum(failure.values())
            blamed = [s for s in ranked if total > 0 and failure[s] / total >= MIN_BLAME_SHARE][:3] or ranked[:1]
            rates = ", ".join(f"{s} {failure[s]:.2f}" for s in ranked)
            source = "labelled skills" if case.skills else "nearest skill (item had no labels)"
            diagnoses.append(
                Diagnosis(
                    item_id=case.item.item_id,
                    skills=tuple(blamed),
                    reason=f"{source} ranked by student failure rate: {rates}; "
                    f"blamed those carrying >= {MIN_BLAME_SHARE:.0%} of the failure",
                )
            )
        return diagnoses

    def _auto_k(self, vectors: np.ndarray, n_distinct: int) -> tuple[int, np.ndarray]:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        best: tuple[float, int, np.ndarray] | None = None
        for k in range(K_RANGE[0], min(K_RANGE[1], n_distinct - 1) + 1):
            assignment = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit_predict(vectors)
            score = silhouette_score(vectors, assignment, metric="cosine")
            if best is None or score > best[0] + 1e-9:
                best = (score, k, assignment)
        if best is None:  # fewer than three distinct questions: one skill
            return 1, np.zeros(len(vectors), dtype=int)
        return best[1], best[2]

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = np.asarray(self.embed(missing), dtype=np.float32)
            if vectors.shape[0] != len(missing):
                raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(missing)} texts")
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            self._cache.update(zip(missing, vectors))
        return np.stack([self._cache[t] for t in texts])


def _distinctive_words(questions: list[str], assignment: np.ndarray, clusters: list[int]) -> dict[int, list[str]]:
    """Per cluster, words ranked by mean TF-IDF inside the cluster minus outside it."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", lowercase=True)
    try:
        tfidf = vectorizer.fit_transform(questions)
    except ValueError:  # no words at all (e.g. only arithmetic symbols)
        return {c: [] for c in clusters}
    vocabulary = vectorizer.get_feature_names_out()
    words = {}
    for cluster in clusters:
        inside = assignment == cluster
        outside_mean = tfidf[~inside].mean(axis=0) if (~inside).any() else 0.0
        contrast = np.asarray(tfidf[inside].mean(axis=0) - outside_mean).ravel()
        order = np.lexsort((vocabulary, -contrast))  # by contrast, ties alphabetical
        words[cluster] = [str(vocabulary[j]) for j in order if contrast[j] > 0][:_DESCRIPTION_WORDS]
    return words


def _unique_slug(slug: str, taken: dict[str, np.ndarray]) -> str:
    name, n = slug, 2
    while name in taken:
        name, n = f"{slug}-{n}", n + 1
    return name
