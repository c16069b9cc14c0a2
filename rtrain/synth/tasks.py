"""One function per task type; each builds (query, positive, negatives, doc_lang) for one row.

| task           | query                  | positive                            | negatives (k)                      |
|----------------|------------------------|-------------------------------------|------------------------------------|
| retrieval      | question               | passage stating the fact            | same passage, near subject         |
| qa             | question               | short answer                        | same answer phrasing, wrong value  |
| bitext         | phrasing i, query_lang | phrasing i in another language      | that translation, near/wrong value |
| paraphrase     | phrasing i             | phrasing j, same values, same lang  | phrasing j, near/wrong values      |
| classification | passage                | its topic label                     | labels of other topics             |
| clustering     | passage: country/topic | other passage, same country/topic   | neighbour's facet / other topics   |

Row shape (rtrain.data.schema): {"id", "query", "positive", "negatives": [str]*k, "task", "query_lang",
"doc_lang", "source": "rtrain-synth", "instruction": None, "pos_score": None, "neg_scores": None}.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from rtrain.synth import kinds as K
from rtrain.synth.entities import EntityPools, stable_hash
from rtrain.synth.slots import localizer
from rtrain.synth.spec import KINDS
from rtrain.synth.templates import LangTemplates

SOURCE = "rtrain-synth"
Built = tuple[str, str, list[str], str]  # (query, positive, negatives, doc_lang)


@dataclass
class GenContext:
    """Everything a shard needs; plain data, so it pickles to Ray workers unchanged."""

    languages: list[str]
    templates: dict[str, LangTemplates]
    pools: EntityPools
    negatives: int
    cross_lingual_rate: float
    seed: int


class RowMaker:
    """Rendering and sampling helpers bound to one shard's split, query language and RNG."""

    def __init__(self, ctx: GenContext, split: str, lang: str, rng: random.Random, tags: set[str] | None) -> None:
        self.ctx, self.lang, self.rng, self.tags = ctx, lang, rng, tags
        self.pool = ctx.pools.splits[split]
        self.kinds = K.available_kinds(self.pool, list(KINDS))
        if not self.kinds:
            raise RuntimeError(f"split {split!r} has too few entities for any kind; move heldout_fraction toward 0.2")
        self.others = [other for other in ctx.languages if other != lang]

    # -- sampling --------------------------------------------------------------------------------
    def kind(self) -> str:
        return self.rng.choice(self.kinds)

    def sample(self, kind: str) -> K.Values:
        return self._tag(K.sample(kind, self.pool, self.rng))

    def vary(self, kind: str, v: K.Values, answer: bool) -> K.Values:
        if answer:
            return K.vary_answer(kind, self.pool, v, self.rng, self.ctx.pools.official_all)
        return K.vary_subject(kind, self.pool, v, self.rng)

    def doc_lang(self) -> str:
        """Another selected language with probability cross_lingual_rate, else the query language."""
        if self.others and self.rng.random() < self.ctx.cross_lingual_rate:
            return self.rng.choice(self.others)
        return self.lang

    def pick(self, lang: str, kind: str, section: str) -> int:
        return self.rng.randrange(len(self.ctx.templates[lang][kind][section]))

    # -- rendering -------------------------------------------------------------------------------
    def render(self, lang: str, kind: str, section: str, index: int, v: K.Values) -> str:
        return localizer(lang).fill(self.ctx.templates[lang][kind][section][index], v)

    def _tag(self, v: K.Values) -> K.Values:
        if self.tags is not None:
            self.tags.update(K.entity_tags(v, self.pool))
        return v

    def negatives(
        self, make: Callable[[], tuple[str, K.Values]], exclude: set[str], section: str, doc_lang: str
    ) -> list[str]:
        """k distinct texts from `make`, none in `exclude`; tops up with other kinds' phrasings if needed."""
        want, out, seen = self.ctx.negatives, [], set(exclude)
        for attempt in range(12 * want + 8):
            if len(out) == want:
                break
            if attempt < 8 * want + 4:
                text, v = make()
            else:  # a small pool kept repeating: a fresh value set of any kind is still a valid negative
                kind = self.kind()
                v = K.sample(kind, self.pool, self.rng)
                text = self.render(doc_lang, kind, section, self.pick(doc_lang, kind, section), v)
            if text not in seen:
                seen.add(text)
                out.append(text)
                self._tag(v)
        if len(out) < want:
            raise RuntimeError(f"found {len(out)} of {want} distinct negatives; lower negatives_per_row")
        return out


def _question_to(m: RowMaker, section: str, answer: bool) -> Built:
    """Question -> a `section` text stating the fact; negatives restate it with a varied value."""
    kind, dl = m.kind(), m.doc_lang()
    v = m.sample(kind)
    query = m.render(m.lang, kind, "questions", m.pick(m.lang, kind, "questions"), v)
    phrasing = m.pick(dl, kind, section)
    positive = m.render(dl, kind, section, phrasing, v)

    def make() -> tuple[str, K.Values]:
        nv = m.vary(kind, v, answer=answer)
        return m.render(dl, kind, section, phrasing, nv), nv

    return query, positive, m.negatives(make, {positive}, section, dl), dl


def retrieval(m: RowMaker) -> Built:
    """Question -> the passage stating the fact; negatives state the fact for a near subject."""
    return _question_to(m, "passages", answer=False)


def qa(m: RowMaker) -> Built:
    """Question -> short answer; negatives are the same answer phrasing with a wrong value."""
    return _question_to(m, "answers", answer=True)


def bitext(m: RowMaker) -> Built:
    """Phrasing i in the query language -> phrasing i (its translation) in another, same slot values."""
    kind, dl = m.kind(), m.rng.choice(m.others)
    v = m.sample(kind)
    section = "passages" if m.rng.random() < 0.75 else "questions"
    i = m.rng.randrange(min(len(m.ctx.templates[lang][kind][section]) for lang in (m.lang, dl)))
    query, positive = m.render(m.lang, kind, section, i, v), m.render(dl, kind, section, i, v)

    def make() -> tuple[str, K.Values]:
        nv = m.vary(kind, v, answer=section == "passages" and m.rng.random() < 0.5)
        return m.render(dl, kind, section, i, nv), nv

    return query, positive, m.negatives(make, {positive}, section, dl), dl


def paraphrase(m: RowMaker) -> Built:
    """Two phrasings of the same values in the same language."""
    kind = m.kind()
    v = m.sample(kind)
    section = "passages" if m.rng.random() < 0.7 else "questions"
    i, j = m.rng.sample(range(len(m.ctx.templates[m.lang][kind][section])), 2)
    query, positive = m.render(m.lang, kind, section, i, v), m.render(m.lang, kind, section, j, v)

    def make() -> tuple[str, K.Values]:
        nv = m.vary(kind, v, answer=section == "passages" and m.rng.random() < 0.5)
        return m.render(m.lang, kind, section, j, nv), nv

    return query, positive, m.negatives(make, {positive, query}, section, m.lang), m.lang


def classification(m: RowMaker) -> Built:
    """Passage -> its topic label; negatives are other topics' labels."""
    kind, dl = m.kind(), m.doc_lang()
    v = m.sample(kind)
    query = m.render(m.lang, kind, "passages", m.pick(m.lang, kind, "passages"), v)
    labels = m.ctx.templates[dl]
    positive = m.rng.choice(labels[kind]["labels"])
    wrong = [label for other in KINDS if other != kind for label in labels[other]["labels"]]
    return query, positive, m.rng.sample(wrong, min(m.ctx.negatives, len(wrong))), dl


def clustering(m: RowMaker) -> Built:
    """Two passages about the same territory (different facts) or the same everyday topic."""
    kind, dl = m.kind(), m.doc_lang()
    pool = m.pool
    if KINDS[kind].family == "territory" and pool.cluster_territories:
        terr = m.rng.choice(pool.cluster_territories)
        first, second = m.rng.sample(K.territory_facets(pool, terr), 2)
        v1 = m._tag(K.TERRITORY_FACETS[first](pool, m.rng, terr))
        v2 = m._tag(K.TERRITORY_FACETS[second](pool, m.rng, terr))
        query = m.render(m.lang, first, "passages", m.pick(m.lang, first, "passages"), v1)
        p = m.pick(dl, second, "passages")
        positive = m.render(dl, second, "passages", p, v2)

        def make() -> tuple[str, K.Values]:
            other = K.near_territory(pool, terr, m.rng, facet=second)
            nv = K.TERRITORY_FACETS[second](pool, m.rng, other)
            return m.render(dl, second, "passages", p, nv), nv

    else:
        v1, v2 = m.sample(kind), m.sample(kind)
        query = m.render(m.lang, kind, "passages", m.pick(m.lang, kind, "passages"), v1)
        positive = m.render(dl, kind, "passages", m.pick(dl, kind, "passages"), v2)
        other_kinds = [k for k in m.kinds if k != kind]

        def make() -> tuple[str, K.Values]:
            other = m.rng.choice(other_kinds)
            nv = K.sample(other, pool, m.rng)
            return m.render(dl, other, "passages", m.pick(dl, other, "passages"), nv), nv

    return query, positive, m.negatives(make, {positive, query}, "passages", dl), dl


TASK_BUILDERS: dict[str, Callable[[RowMaker], Built]] = {
    "retrieval": retrieval,
    "qa": qa,
    "bitext": bitext,
    "paraphrase": paraphrase,
    "classification": classification,
    "clustering": clustering,
}


def build_shard(
    ctx: GenContext, split: str, task: str, lang: str, count: int, tags: set[str] | None = None
) -> list[dict]:
    """`count` rows of one (split, task, query language) shard; its RNG depends only on those and the seed.

    `tags`, if given, collects every partitioned entity the rows mention (see kinds.entity_tags).
    """
    rng = random.Random(stable_hash(ctx.seed, split, task, lang))
    maker = RowMaker(ctx, split, lang, rng, tags)
    build = TASK_BUILDERS[task]
    rows = []
    for i in range(count):
        query, positive, negatives, doc_lang = build(maker)
        rows.append(
            {
                "id": f"synth-{split}-{task}-{lang}-{i:07d}",
                "query": query,
                "positive": positive,
                "negatives": negatives,
                "task": task,
                "query_lang": lang,
                "doc_lang": doc_lang,
                "source": SOURCE,
                "instruction": None,
                "pos_score": None,
                "neg_scores": None,
            }
        )
    return rows
