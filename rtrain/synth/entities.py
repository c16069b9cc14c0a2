"""Entity pools from CLDR, partitioned into train / held-out before any row is generated.

Partition (deterministic in the seed and `heldout_fraction`):
- territories and currencies together: the connected groups of the territory<->currency graph (all euro
  countries form one group) go wholly to one split, so no currency is shared across splits; groups larger
  than half the held-out target stay in train (keeps train broad, held-out varied). Cities follow their
  territory.
- languages (subjects of script facts, answers of official-language facts): the held-out share is taken from
  the languages official mostly in held-out territories (ties by a seeded hash).
- numeric/date slot values (dates, times, temperatures, distances, amounts, quantities): each value goes
  to one split by a seeded hash, so held-out rows use numbers and dates train never shows.
Weekdays, scripts and durations are small closed classes and are shared.

Shape: `{"train": SplitPool, "heldout": SplitPool}`; a SplitPool is plain lists/dicts (pickles to Ray).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from babel.core import get_global
from babel.languages import get_official_languages
from babel.numbers import get_territory_currencies

from rtrain.synth.slots import REFERENCE_DATE, language_script, localizer

SPLITS: tuple[str, ...] = ("train", "heldout")
NEIGHBOURS = 8  # nearest territories kept per territory for hard negatives

# value pools of numeric/date slot types: type -> every value a row may use (before the split)
NUMBER_POOLS: dict[str, range] = {
    "date": range(REFERENCE_DATE.replace(year=2024).toordinal(), REFERENCE_DATE.replace(year=2028).toordinal()),
    "time": range(6 * 60, 23 * 60, 5),  # 06:00 .. 22:55, minutes after midnight
    "temperature": range(-15, 41),  # °C
    "distance": range(20, 1201, 5),  # km
    "amount": range(100, 10000, 5),  # minor units: 1.00 .. 99.95 (or 100 .. 9995 in zero-decimal currencies)
    "quantity": range(1, 41),  # half kilograms: 0.5 .. 20 kg
}


@dataclass
class SplitPool:
    """Entities one split may use; every list is sorted so sampling is reproducible."""

    name: str
    territories: list[str] = field(default_factory=list)  # ["AT", "CH", ...] with >= 1 currency
    currencies: dict[str, list[str]] = field(default_factory=dict)  # "CH" -> ["CHF"]
    all_currencies: list[str] = field(default_factory=list)
    official: dict[str, list[str]] = field(default_factory=dict)  # "CH" -> official langs in this split
    official_territories: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)  # zone ids, "Europe/Zurich"
    city_territory: dict[str, str] = field(default_factory=dict)  # zone -> territory
    cities_of: dict[str, list[str]] = field(default_factory=dict)  # territory -> zones
    languages: list[str] = field(default_factory=list)  # language entities of this split
    script_of: dict[str, str] = field(default_factory=dict)  # language -> script (subjects of script facts)
    script_languages: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    neighbours: dict[str, list[str]] = field(default_factory=dict)  # territory -> near ones, nearest first
    cluster_territories: list[str] = field(default_factory=list)  # territories with >= 2 kinds of facts
    # kind of territory fact -> territories it can be stated for (list to sample, set to test)
    facet_territories: dict[str, list[str]] = field(default_factory=dict)
    facet_sets: dict[str, frozenset[str]] = field(default_factory=dict)
    numbers: dict[str, list[int]] = field(default_factory=dict)  # slot type -> sorted allowed values


@dataclass
class EntityPools:
    """Both split pools plus what was left out for lack of a localization in some selected language."""

    splits: dict[str, SplitPool]
    official_all: dict[str, list[str]]  # territory -> every official language (for "not official" checks)
    skipped: dict[str, int]  # entity type -> count skipped (missing localization / data)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of the parts' text that is the same in every process (unlike hash())."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _split_by_hash(items: list, fraction: float, salt: str) -> tuple[list, list]:
    """(train, heldout): the round(fraction * n) items with the smallest salted hash are held out,
    keeping at least two values on each side (a near value needs a second one)."""
    ranked = sorted(items, key=lambda item: stable_hash(salt, item))
    cut = min(len(ranked) - 2, max(2, round(fraction * len(ranked))))
    return sorted(ranked[cut:]), sorted(ranked[:cut])


def _components(currencies: dict[str, list[str]]) -> list[list[str]]:
    """Groups of territories linked by a shared currency, each sorted; sorted by first member."""
    parent = {t: t for t in currencies}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    holder: dict[str, str] = {}
    for terr in sorted(currencies):
        for cur in currencies[terr]:
            if cur in holder:
                parent[find(terr)] = find(holder[cur])
            else:
                holder[cur] = terr
    groups: dict[str, list[str]] = defaultdict(list)
    for terr in sorted(currencies):
        groups[find(terr)].append(terr)
    return sorted(groups.values())


def _neighbour_ranking(territories: list[str]) -> dict[str, list[str]]:
    """Each territory's others ranked by nearness: shared CLDR metazone, same tz continent, shared languages."""
    zones = get_global("territory_zones")
    metazones = get_global("meta_zones")
    spoken = get_global("territory_languages")
    meta = {t: {metazones.get(z) for z in zones[t]} - {None} for t in territories}
    continent = {t: Counter(z.split("/")[0] for z in zones[t]).most_common(1)[0][0] for t in territories}
    langs = {t: set(spoken.get(t, {})) for t in territories}

    def nearness(a: str, b: str) -> tuple:
        overlap = len(langs[a] & langs[b]) / max(1, len(langs[a] | langs[b]))
        return (not (meta[a] & meta[b]), continent[a] != continent[b], -overlap, b)

    return {a: sorted((b for b in territories if b != a), key=lambda b: nearness(a, b)) for a in territories}


def build_pools(languages: list[str], fraction: float, seed: int) -> EntityPools:
    """Entities every language in `languages` can name, split into train / held-out pools."""
    locs = [localizer(lang) for lang in languages]
    named = lambda kind, value: all(loc.has(kind, value) for loc in locs)  # noqa: E731
    skipped: Counter[str] = Counter()
    zones = get_global("territory_zones")

    currencies: dict[str, list[str]] = {}
    for terr in sorted(t for t in zones if len(t) == 2 and t.isalpha()):
        tender = get_territory_currencies(terr, start_date=REFERENCE_DATE, end_date=REFERENCE_DATE)
        if not tender:
            skipped["territory (no currency in CLDR)"] += 1
            continue
        if not named("territory", terr):
            skipped["territory (missing localization)"] += 1
            continue
        usable = sorted(c for c in tender if named("currency", c))
        skipped["currency (missing localization)"] += len(tender) - len(usable)
        if usable:
            currencies[terr] = usable
        else:
            skipped["territory (currency lacks localization)"] += 1

    official_all = {t: sorted(get_official_languages(t)) for t in currencies}
    candidates = sorted({lang for langs in official_all.values() for lang in langs})
    entity_langs = [lang for lang in candidates if "_" not in lang and named("language", lang)]
    skipped["language (missing localization or script variant)"] += len(candidates) - len(entity_langs)
    script_of = {}
    for lang in entity_langs:
        script = language_script(lang)
        if script and named("script", script):
            script_of[lang] = script
        else:
            skipped["script (missing localization)"] += 1

    # territories + currencies: whole currency groups per split
    target = max(1, round(fraction * len(currencies)))
    groups = sorted(_components(currencies), key=lambda g: stable_hash(seed, "territory-group", g[0]))
    heldout_terr: set[str] = set()
    for group in groups:
        if len(group) <= max(1, target // 2) and len(heldout_terr) + len(group) <= target:
            heldout_terr.update(group)
    # held-out languages: those official mostly in held-out territories first, so held-out official-language
    # facts have material; ties broken by a seeded hash
    share = {
        lang: sum(t in heldout_terr for t in currencies if lang in official_all[t])
        / max(1, sum(lang in official_all[t] for t in currencies))
        for lang in entity_langs
    }
    ranked = sorted(entity_langs, key=lambda lang: (-share[lang], stable_hash(seed, "language", lang)))
    cut = max(1, round(fraction * len(ranked)))
    lang_train, lang_heldout = sorted(ranked[cut:]), sorted(ranked[:cut])
    ranking = _neighbour_ranking(sorted(currencies))

    city_candidates = sorted(z for t in currencies for z in zones[t] if not z.startswith("Etc/"))
    zone_territory = get_global("zone_territories")
    city_ok = [z for z in city_candidates if named("city", z)]
    skipped["city (missing localization)"] += len(city_candidates) - len(city_ok)
    # "Andorra is a city in Andorra": zones named after their territory are not cities
    city_named = [
        z for z in city_ok if not any(loc.text("city", z) == loc.text("territory", zone_territory[z]) for loc in locs)
    ]
    skipped["city (same name as its territory)"] += len(city_ok) - len(city_named)
    city_ok = city_named

    pools: dict[str, SplitPool] = {}
    for name, terrs, langs in (
        ("train", sorted(set(currencies) - heldout_terr), lang_train),
        ("heldout", sorted(heldout_terr), lang_heldout),
    ):
        pool = SplitPool(name=name, territories=terrs, languages=langs)
        member, lang_set = set(terrs), set(langs)
        pool.currencies = {t: currencies[t] for t in terrs}
        pool.all_currencies = sorted({c for t in terrs for c in currencies[t]})
        pool.official = {t: [lang for lang in official_all[t] if lang in lang_set] for t in terrs}
        pool.official_territories = [t for t in terrs if pool.official[t]]
        pool.cities = [z for z in city_ok if zone_territory.get(z) in member]
        pool.city_territory = {z: zone_territory[z] for z in pool.cities}
        pool.cities_of = defaultdict(list)
        for zone in pool.cities:
            pool.cities_of[pool.city_territory[zone]].append(zone)
        pool.cities_of = dict(pool.cities_of)
        pool.script_of = {lang: script_of[lang] for lang in langs if lang in script_of}
        pool.script_languages = sorted(pool.script_of)
        pool.scripts = sorted(set(pool.script_of.values()))
        pool.neighbours = {t: [n for n in ranking[t] if n in member][:NEIGHBOURS] for t in terrs}
        pool.cluster_territories = [t for t in terrs if pool.official[t] or t in pool.cities_of]
        pool.facet_territories = {
            "currency": terrs,
            "official_language": pool.official_territories,
            "city_country": sorted(pool.cities_of),
        }
        pool.facet_sets = {kind: frozenset(ts) for kind, ts in pool.facet_territories.items()}
        pools[name] = pool
    for kind, values in NUMBER_POOLS.items():
        train, heldout = _split_by_hash(list(values), fraction, f"{seed}|{kind}")
        pools["train"].numbers[kind], pools["heldout"].numbers[kind] = train, heldout
    return EntityPools(splits=pools, official_all=official_all, skipped=dict(sorted(skipped.items())))


def pool_sizes(pool: SplitPool) -> dict[str, int]:
    """Entity counts of one split, for the manifest."""
    return {
        "territories": len(pool.territories),
        "currencies": len(pool.all_currencies),
        "cities": len(pool.cities),
        "languages": len(pool.languages),
        **{f"{kind}_values": len(values) for kind, values in sorted(pool.numbers.items())},
    }
