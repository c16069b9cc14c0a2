"""Language-neutral slot values per kind: a fresh sample, a near *subject* and a wrong *answer*.

Values are a dict slot -> neutral value (see spec.SLOT_TYPES), e.g. for "weather"::

    {"city": "Europe/Paris", "date": 739324, "temperature": 21}

- `sample(kind, pool, rng)`: a true-by-construction value set from the split's pool.
- `vary_subject(kind, pool, v, rng)`: another subject near v (neighbouring territory, a date a few days
  off, ...) with its own answer -> a hard negative passage that does not answer the question.
- `vary_answer(kind, pool, v, rng)`: same subject, a different answer value -> a hard negative answer.
Every value comes from the same split's pool, so held-out rows (negatives included) stay held out.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from typing import Any

from rtrain.synth.entities import SplitPool

Values = dict[str, Any]
KM_PER_HOUR = 80  # travel duration = distance / 80 km/h, at least one hour


def _near_number(values: list[int], value: int, rng: random.Random, width: int = 6) -> int:
    """Another value of the sorted pool list a few positions away from `value` (never equal)."""
    if len(values) < 2:
        raise ValueError(f"a pool of {len(values)} value(s) has no second value; move heldout_fraction toward 0.2")
    at = bisect.bisect_left(values, value)
    while True:
        pick = values[min(len(values) - 1, max(0, at + rng.randint(-width, width)))]
        if pick != value:
            return pick


def near_territory(pool: SplitPool, terr: str, rng: random.Random, facet: str | None = None) -> str:
    """A territory close to `terr` (among those that have `facet`, a territory-fact kind, if given)."""
    allowed = pool.facet_sets[facet] if facet else None
    near = [n for n in pool.neighbours.get(terr, ()) if allowed is None or n in allowed]
    if near:
        return rng.choice(near[:4])
    candidates = pool.facet_territories[facet] if facet else pool.territories
    for _ in range(8):
        pick = rng.choice(candidates)
        if pick != terr:
            return pick
    return terr


def _near_city(pool: SplitPool, zone: str, rng: random.Random) -> str:
    """Another city of the same territory, or of a neighbouring one."""
    terr = pool.city_territory[zone]
    same = [z for z in pool.cities_of[terr] if z != zone]
    if same and rng.random() < 0.5:
        return rng.choice(same)
    other = near_territory(pool, terr, rng, facet="city_country")
    candidates = [z for z in pool.cities_of.get(other, ()) if z != zone] or [z for z in pool.cities if z != zone]
    return rng.choice(candidates)


def _amount(pool: SplitPool, zone: str, rng: random.Random, minor: int | None = None) -> tuple[int, str]:
    """A price in (one of) the currency of the city's territory."""
    currency = rng.choice(pool.currencies[pool.city_territory[zone]])
    return (minor if minor is not None else rng.choice(pool.numbers["amount"]), currency)


def _two_cities(pool: SplitPool, rng: random.Random) -> tuple[str, str]:
    origin = rng.choice(pool.cities)
    return origin, _near_city(pool, origin, rng)


def _hours(km: int) -> int:
    return max(1, round(km / KM_PER_HOUR))


def _opening(pool: SplitPool, rng: random.Random) -> tuple[int, int]:
    """(open, close) minutes from the pool: open by noon, close at least four hours later."""
    times = pool.numbers["time"]  # sorted
    last_open = max(1, bisect.bisect_right(times, 12 * 60))
    start = times[rng.randrange(last_open)]
    first_close = bisect.bisect_left(times, start + 4 * 60)
    if first_close >= len(times):
        first_close = min(len(times) - 1, bisect.bisect_right(times, start))
    return start, times[rng.randrange(first_close, len(times))]


# --- samplers: kind -> (pool, rng) -> values -------------------------------------------------------


def _sample_currency(pool: SplitPool, rng: random.Random, terr: str | None = None) -> Values:
    terr = terr or rng.choice(pool.territories)
    return {"territory": terr, "currency": rng.choice(pool.currencies[terr])}


def _sample_official(pool: SplitPool, rng: random.Random, terr: str | None = None) -> Values:
    terr = terr or rng.choice(pool.official_territories)
    return {"territory": terr, "language": rng.choice(pool.official[terr])}


def _sample_city(pool: SplitPool, rng: random.Random, terr: str | None = None) -> Values:
    zone = rng.choice(pool.cities_of[terr]) if terr else rng.choice(pool.cities)
    return {"city": zone, "territory": pool.city_territory[zone]}


def _sample_script(pool: SplitPool, rng: random.Random) -> Values:
    lang = rng.choice(pool.script_languages)
    return {"language": lang, "script": pool.script_of[lang]}


def _sample_appointment(pool: SplitPool, rng: random.Random) -> Values:
    return {"date": rng.choice(pool.numbers["date"]), "time": rng.choice(pool.numbers["time"])}


def _sample_travel(pool: SplitPool, rng: random.Random) -> Values:
    origin, destination = _two_cities(pool, rng)
    km = rng.choice(pool.numbers["distance"])
    return {"origin": origin, "destination": destination, "distance": km, "duration": _hours(km)}


def _sample_price(pool: SplitPool, rng: random.Random) -> Values:
    zone = rng.choice(pool.cities)
    return {"city": zone, "amount": _amount(pool, zone, rng)}


def _sample_schedule(pool: SplitPool, rng: random.Random) -> Values:
    zone = rng.choice(pool.cities)
    start, end = _opening(pool, rng)
    return {"city": zone, "weekday": rng.randrange(7), "open": start, "close": end}


def _sample_weather(pool: SplitPool, rng: random.Random) -> Values:
    return {
        "city": rng.choice(pool.cities),
        "date": rng.choice(pool.numbers["date"]),
        "temperature": rng.choice(pool.numbers["temperature"]),
    }


def _sample_shopping(pool: SplitPool, rng: random.Random) -> Values:
    zone = rng.choice(pool.cities)
    return {"city": zone, "quantity": rng.choice(pool.numbers["quantity"]), "amount": _amount(pool, zone, rng)}


SAMPLERS: dict[str, Callable[[SplitPool, random.Random], Values]] = {
    "currency": _sample_currency,
    "official_language": _sample_official,
    "city_country": _sample_city,
    "language_script": _sample_script,
    "appointment": _sample_appointment,
    "travel": _sample_travel,
    "price": _sample_price,
    "schedule": _sample_schedule,
    "weather": _sample_weather,
    "shopping": _sample_shopping,
}

# Facts about one territory, for clustering two passages about the same entity.
TERRITORY_FACETS: dict[str, Callable[[SplitPool, random.Random, str], Values]] = {
    "currency": _sample_currency,
    "official_language": _sample_official,
    "city_country": _sample_city,
}


def territory_facets(pool: SplitPool, terr: str) -> list[str]:
    """Kinds of fact the pool can state about one territory."""
    return [
        kind
        for kind, ok in (
            ("currency", True),
            ("official_language", bool(pool.official.get(terr))),
            ("city_country", terr in pool.cities_of),
        )
        if ok
    ]


def available_kinds(pool: SplitPool, kinds: list[str]) -> list[str]:
    """Kinds whose entity lists are non-empty in this split."""
    # enough distinct subjects for a sample plus a different near one (travel: two cities plus a third)
    enough = {
        "currency": len(pool.territories) >= 2,
        "official_language": len(pool.official_territories) >= 2,
        "language_script": len(pool.script_languages) >= 2 and len(pool.scripts) >= 2,
        **{
            kind: len(pool.cities) >= 3
            for kind in ("city_country", "travel", "price", "schedule", "weather", "shopping")
        },
    }
    return [kind for kind in kinds if enough.get(kind, True)]


def sample(kind: str, pool: SplitPool, rng: random.Random) -> Values:
    """A fresh value set of one kind."""
    return SAMPLERS[kind](pool, rng)


def vary_subject(kind: str, pool: SplitPool, v: Values, rng: random.Random) -> Values:
    """A value set about a near but different subject (its own answer)."""
    if kind == "currency":
        return _sample_currency(pool, rng, near_territory(pool, v["territory"], rng))
    if kind == "official_language":
        terr = near_territory(pool, v["territory"], rng, facet="official_language")
        return _sample_official(pool, rng, terr)
    if kind == "city_country":
        zone = _near_city(pool, v["city"], rng)
        return {"city": zone, "territory": pool.city_territory[zone]}
    if kind == "language_script":  # half the time another language of the same script (the harder case)
        same = [x for x in pool.script_languages if pool.script_of[x] == v["script"] and x != v["language"]]
        lang = rng.choice(same) if same and rng.random() < 0.5 else rng.choice(pool.script_languages)
        return {"language": lang, "script": pool.script_of[lang]}
    if kind == "appointment":
        return {**v, "date": _near_number(pool.numbers["date"], v["date"], rng)}
    if kind == "travel":
        side, other = rng.choice((("origin", "destination"), ("destination", "origin")))
        for _ in range(5):
            zone = _near_city(pool, v[side], rng)
            if zone != v[other]:
                return {**v, side: zone}
        return {**v, side: rng.choice([z for z in pool.cities if z not in (v[side], v[other])])}
    if kind == "price":
        zone = _near_city(pool, v["city"], rng)
        return {"city": zone, "amount": _amount(pool, zone, rng, minor=v["amount"][0])}
    if kind == "schedule":
        if rng.random() < 0.5:
            return {**v, "weekday": (v["weekday"] + rng.choice((1, 2, 5, 6))) % 7}
        return {**v, "city": _near_city(pool, v["city"], rng)}
    if kind == "weather":
        if rng.random() < 0.5:
            return {**v, "date": _near_number(pool.numbers["date"], v["date"], rng)}
        return {**v, "city": _near_city(pool, v["city"], rng)}
    if kind == "shopping":
        if rng.random() < 0.5:
            return {**v, "quantity": _near_number(pool.numbers["quantity"], v["quantity"], rng, width=3)}
        zone = _near_city(pool, v["city"], rng)
        return {**v, "city": zone, "amount": _amount(pool, zone, rng, minor=v["amount"][0])}
    raise KeyError(f"unknown kind {kind!r}")


def vary_answer(
    kind: str, pool: SplitPool, v: Values, rng: random.Random, official_all: dict[str, list[str]]
) -> Values:
    """The same subject with a different answer (a wrong fact / another number)."""
    if kind == "currency":
        own = set(pool.currencies[v["territory"]])
        near = {c for n in pool.neighbours.get(v["territory"], ()) for c in pool.currencies[n]} - own
        options = sorted(near) or [c for c in pool.all_currencies if c not in own]
        return {**v, "currency": rng.choice(options)} if options else v
    if kind == "official_language":
        own = set(official_all.get(v["territory"], ()))
        near = {lang for n in pool.neighbours.get(v["territory"], ()) for lang in pool.official.get(n, ())} - own
        options = sorted(near) or [lang for lang in pool.languages if lang not in own]
        return {**v, "language": rng.choice(options)} if options else v
    if kind == "city_country":
        return {**v, "territory": near_territory(pool, v["territory"], rng)}
    if kind == "language_script":
        options = [s for s in pool.scripts if s != v["script"]]
        return {**v, "script": rng.choice(options)} if options else v
    if kind in ("appointment",):
        return {**v, "time": _near_number(pool.numbers["time"], v["time"], rng, width=12)}
    if kind == "travel":
        km = _near_number(pool.numbers["distance"], v["distance"], rng, width=20)
        return {**v, "distance": km, "duration": _hours(km)}
    if kind in ("price", "shopping"):
        minor = _near_number(pool.numbers["amount"], v["amount"][0], rng, width=40)
        return {**v, "amount": (minor, v["amount"][1])}
    if kind == "schedule":
        start, end = _opening(pool, rng)
        return {**v, "open": start, "close": end}
    if kind == "weather":
        return {**v, "temperature": _near_number(pool.numbers["temperature"], v["temperature"], rng, width=4)}
    raise KeyError(f"unknown kind {kind!r}")


def entity_tags(v: Values, pool: SplitPool) -> set[str]:
    """The partitioned entities a value set mentions: {"territory:CH", "currency:CHF", "date:739324", ...}."""
    tags: set[str] = set()
    for slot, value in v.items():
        if slot in ("territory",):
            tags.add(f"territory:{value}")
        elif slot in ("city", "origin", "destination"):
            tags.update((f"city:{value}", f"territory:{pool.city_territory[value]}"))
        elif slot == "currency":
            tags.add(f"currency:{value}")
        elif slot == "language":
            tags.add(f"language:{value}")
        elif slot == "amount":
            tags.update((f"amount:{value[0]}", f"currency:{value[1]}"))
        elif slot in ("open", "close"):
            tags.add(f"time:{value}")
        elif slot in ("date", "time", "temperature", "distance", "quantity"):
            tags.add(f"{slot}:{value}")
    return tags
