"""What each template kind talks about: its slots, which of them a question names and which it asks for.

A *kind* is one family of sentences (a fact about a territory, an appointment, ...). Every language's
template file has, per kind, four lists of phrasings (see templates/README.md):

    labels:    topic names, no slots                         -> classification documents
    questions: must use every `subject` slot, no `answer` slot -> retrieval / qa queries
    passages:  must use every `subject` and `answer` slot      -> retrieval documents, bitext, ...
    answers:   must use every `answer` slot (subject optional) -> qa documents

Slot values are language-neutral (territory "CH", date ordinal, minutes after midnight ...) and are
localized per language by `rtrain.synth.slots`; `SLOT_TYPES` says which renderer a slot name uses.
"""

from __future__ import annotations

from dataclasses import dataclass

# slot name in templates -> value type (the renderer in slots.py and the partition pool in entities.py)
SLOT_TYPES: dict[str, str] = {
    "territory": "territory",  # CLDR region code, "CH"
    "currency": "currency",  # ISO 4217, "CHF"
    "language": "language",  # CLDR language code, "fr"
    "script": "script",  # ISO 15924, "Latn"
    "city": "city",  # IANA zone id whose exemplar city is meant, "Europe/Zurich"
    "origin": "city",
    "destination": "city",
    "date": "date",  # proleptic Gregorian ordinal (datetime.date.toordinal)
    "time": "time",  # minutes after midnight
    "open": "time",
    "close": "time",
    "weekday": "weekday",  # 0 = Monday
    "temperature": "temperature",  # degrees Celsius, int
    "distance": "distance",  # kilometers, int
    "duration": "duration",  # hours, int
    "amount": "amount",  # (minor units, currency code)
    "quantity": "quantity",  # half kilograms, int
}

SECTIONS: tuple[str, ...] = ("labels", "questions", "passages", "answers")
MIN_PHRASINGS: dict[str, int] = {"labels": 2, "questions": 2, "passages": 2, "answers": 1}


@dataclass(frozen=True)
class KindSpec:
    """Slots of one kind. `family` is "territory" (facts about a country), "fact" or "everyday"."""

    name: str
    subject: tuple[str, ...]
    answer: tuple[str, ...]
    family: str

    @property
    def slots(self) -> tuple[str, ...]:
        """All slots a passage must use."""
        return self.subject + self.answer


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec("currency", ("territory",), ("currency",), "territory"),
        KindSpec("official_language", ("territory",), ("language",), "territory"),
        KindSpec("city_country", ("city",), ("territory",), "territory"),
        KindSpec("language_script", ("language",), ("script",), "fact"),
        KindSpec("appointment", ("date",), ("time",), "everyday"),
        KindSpec("travel", ("origin", "destination"), ("distance", "duration"), "everyday"),
        KindSpec("price", ("city",), ("amount",), "everyday"),
        KindSpec("schedule", ("city", "weekday"), ("open", "close"), "everyday"),
        KindSpec("weather", ("city", "date"), ("temperature",), "everyday"),
        KindSpec("shopping", ("city", "quantity"), ("amount",), "everyday"),
    )
}


def section_rules(spec: KindSpec, section: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required slots, allowed slots) for one section of one kind."""
    if section == "labels":
        return (), ()
    if section == "questions":
        return spec.subject, spec.subject
    if section == "answers":
        return spec.answer, spec.slots
    return spec.slots, spec.slots
