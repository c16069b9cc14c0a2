"""Test helpers: tiny encoders, pair files and jobs built in-process (no downloads, seconds to make)."""

from __future__ import annotations

import contextlib
import json
import random
import re
import zlib
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

FAKE_WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"  # conftest sets it for every test: never in a file

COLORS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"]
THINGS = ["car", "house", "bird", "river", "phone", "book", "garden", "train", "lamp", "chair"]
PLACES = ["berlin", "paris", "tokyo", "lima", "oslo", "cairo", "delhi", "quito"]


def pair_rows(n: int, negatives: int = 2, seed: int = 0, lang: str = "en") -> list[dict]:
    """Learnable toy pairs: the query names a thing, colour and place; the positive restates them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        c, t, p = rng.choice(COLORS), rng.choice(THINGS), rng.choice(PLACES)
        negs = []
        while len(negs) < negatives:
            c2, t2 = rng.choice(COLORS), rng.choice(THINGS)
            if (c2, t2) != (c, t):
                negs.append(f"in {p} there is a {c2} {t2}")
        rows.append(
            {
                "id": f"toy-{seed}-{i}",
                "query": f"where is the {c} {t} of {p}",
                "positive": f"in {p} there is a {c} {t}",
                "negatives": negs,
                "task": "retrieval",
                "query_lang": lang,
                "doc_lang": lang,
                "source": "toy",
            }
        )
    return rows


RAY_FORWARDED = re.compile(r"^(\x1b\[[0-9;]*m)?\(\w+ pid=\d+")


def own_lines(text: str) -> str:
    """`text` without the lines Ray forwards from its actors (`(Name pid=N) ...`): the session-wide test Ray
    keeps background actors of finished runs alive, and their warnings can land in any later captured stream."""
    return "".join(line for line in text.splitlines(keepends=True) if not RAY_FORWARDED.match(line))


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _corpus() -> list[str]:
    words = COLORS + THINGS + PLACES + ["where", "is", "the", "of", "in", "there", "a", "query", "passage"]
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]


def make_tiny_model(out: Path, family: str = "bert", hidden: int = 64, layers: int = 2, max_len: int = 64) -> Path:
    """Save a randomly initialised 2-layer encoder and a freshly trained tokenizer to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if family == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(_corpus(), trainers.WordPieceTrainer(vocab_size=300, special_tokens=special))
        from tokenizers.processors import TemplateProcessing

        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_max_length=max_len,
        )
        config = BertConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=max_len,
            pad_token_id=tok.token_to_id("[PAD]"),
        )
        model = BertModel(config, add_pooling_layer=False)
    elif family == "xlmr":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok.train_from_iterator(
            _corpus(), trainers.UnigramTrainer(vocab_size=300, special_tokens=special, unk_token="<unk>")
        )
        from tokenizers.processors import TemplateProcessing

        tok.post_processor = TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
            model_max_length=max_len,
        )
        config = XLMRobertaConfig(
            vocab_size=tok.get_vocab_size(),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=max_len + 2,
            pad_token_id=tok.token_to_id("<pad>"),
        )
        model = XLMRobertaModel(config, add_pooling_layer=False)
    else:
        raise ValueError(f"family {family!r}: use bert or xlmr")
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


class TrigramEncoder:
    """Deterministic fake `TextEncoder`: hashed character-trigram counts, L2-normalised."""

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim
        self.calls: list[tuple[str, int]] = []

    def encode(self, texts: list[str], kind: str, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls.append((kind, len(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, dim)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                out[row, zlib.crc32(padded[i : i + 3].encode("utf-8")) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_tiny_causal_lm(
    out: Path, corpus: list[str], chat_template: str | None = None, hidden: int = 32, layers: int = 2, seed: int = 0
) -> Path:
    """Save a randomly initialised 2-layer Llama causal LM and a byte-level BPE tokenizer trained on `corpus`.

    Byte-level BPE round-trips any text (every byte is in the vocabulary), so tests can force exact
    replies token by token; `chat_template` (Jinja) makes the tokenizer look instruction-tuned.
    """
    from tokenizers import decoders
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    if chat_template is not None:
        fast.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tok.token_to_id("<pad>"),
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def job_dict(model_path: Path, pairs: Path, storage: Path, **sections) -> dict:
    """A small training job on the tiny model; keyword args replace whole sections' keys."""
    job = {
        "name": "test",
        "model": {"name_or_path": str(model_path), "query_max_length": 32, "passage_max_length": 32},
        "lora": {"r": 4, "alpha": 8},
        "data": {"train_files": [str(pairs)], "tokenize_batch_size": 64},
        "loss": {"negatives_per_query": 1},
        "train": {"batch_size_per_worker": 8, "learning_rate": 1e-3, "log_every_steps": 4, "checkpoint_every_steps": 8},
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.5},
        "logging": {"wandb": False},
        "output": {"storage_path": str(storage), "name": "run"},
    }
    for section, values in sections.items():
        job.setdefault(section, {}).update(values)
    return job


class FakeEngine:
    """The slice of `rtrain.train.engine.Engine` that `train_step` uses: backward accumulates, never steps."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = self.raw = module
        self.device = torch.device("cpu")

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> bool:
        return False

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()
