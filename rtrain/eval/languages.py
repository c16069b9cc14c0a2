"""Language codes as mteb writes them (``"deu-Latn"``: ISO 639-3 + ISO 15924 script)."""

from __future__ import annotations

# ISO 639-1 (and the codes rtrain's data uses) -> mteb's language-script code.
_ISO1 = {
    "am": "amh-Ethi",
    "ar": "ara-Arab",
    "be": "bel-Cyrl",
    "bn": "ben-Beng",
    "cs": "ces-Latn",
    "de": "deu-Latn",
    "el": "ell-Grek",
    "en": "eng-Latn",
    "es": "spa-Latn",
    "fa": "fas-Arab",
    "fi": "fin-Latn",
    "fr": "fra-Latn",
    "gl": "glg-Latn",
    "ha": "hau-Latn",
    "he": "heb-Hebr",
    "hi": "hin-Deva",
    "hy": "hye-Armn",
    "id": "ind-Latn",
    "is": "isl-Latn",
    "it": "ita-Latn",
    "ja": "jpn-Jpan",
    "ka": "kat-Geor",
    "kk": "kaz-Cyrl",
    "ko": "kor-Hang",
    "mr": "mar-Deva",
    "nl": "nld-Latn",
    "pl": "pol-Latn",
    "pt": "por-Latn",
    "ru": "rus-Cyrl",
    "sv": "swe-Latn",
    "sw": "swa-Latn",
    "ta": "tam-Taml",
    "te": "tel-Telu",
    "th": "tha-Thai",
    "tr": "tur-Latn",
    "ug": "uig-Arab",
    "uk": "ukr-Cyrl",
    "ur": "urd-Arab",
    "vi": "vie-Latn",
    "wo": "wol-Latn",
    "yo": "yor-Latn",
    "zh": "zho-Hans",
    "zh-Hant": "zho-Hant",
}


def mteb_language(code: str) -> str:
    """``deu_Latn`` / ``deu-Latn`` -> ``deu-Latn``; ``de`` -> ``deu-Latn``; unknown codes pass through."""
    if code in _ISO1:
        return _ISO1[code]
    parts = code.replace("_", "-").split("-")
    if len(parts) == 2 and len(parts[0]) == 3 and len(parts[1]) == 4 and parts[1][0].isupper():
        return f"{parts[0]}-{parts[1]}"
    return code


def subset_languages(subset: str) -> list[str]:
    """mteb ``languages`` of a subset name: ``de`` -> [deu-Latn]; ``de-en`` or ``deu_Latn-eng_Latn`` -> both.

    A FLORES-style code (``deu_Latn``) is one language; a name that is neither (``default``,
    ``en-es-wmt``) maps each known dash-separated part and keeps the rest as is.
    """
    if subset in _ISO1 or "_" in subset and "-" not in subset:
        return [mteb_language(subset)]
    parts = [p for p in subset.split("-") if p]
    known = [mteb_language(p) for p in parts if p in _ISO1 or "_" in p]
    return list(dict.fromkeys(known)) or [subset]
