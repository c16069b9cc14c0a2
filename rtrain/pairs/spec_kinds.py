"""The reader kinds of a SOURCE_SPEC, one pydantic model each (see `rtrain.pairs.spec`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rtrain.pairs.spec_base import SourceBase, as_paths, not_eval


class ParallelSource(SourceBase):
    """Translations of the same sentences -> `bitext` pairs for every chosen language pair.

    Give `files` (line-aligned text files: line i of every file is one sentence) or `tsv` (files joined
    on `id_column`, e.g. ud_pud's `split \\t sent_id \\t text`). Pairs: every pair of languages (`all`),
    each language with `pivot`, or an explicit list of `[query_lang, doc_lang]`; `both_directions`
    adds the reverse of each.
    """

    kind: Literal["parallel"]
    task: str = Field("bitext", min_length=1)
    files: dict[str, str] | None = Field(None, description="language -> line-aligned text file")
    tsv: dict[str, str] | None = Field(None, description="language -> TSV file joined on id_column")
    id_column: int | str = Field(1, description="TSV: 0-based column index (or header name) of the id")
    text_column: int | str = Field(2, description="TSV: 0-based column index (or header name) of the text")
    header: bool = Field(False, description="TSV: the first line holds column names")
    pairs: Literal["all"] | list[tuple[str, str]] = "all"
    pivot: str | None = Field(None, description="Pair only this language with each other one")
    both_directions: bool = True

    def input_paths(self) -> list[str]:
        return list((self.files or self.tsv or {}).values())

    _guard = field_validator("files", "tsv")(not_eval)

    @model_validator(mode="after")
    def _check(self) -> ParallelSource:
        if (self.files is None) == (self.tsv is None):
            raise ValueError("give exactly one of files (line-aligned) or tsv (joined on id_column)")
        langs = list(self.files or self.tsv or {})
        if len(langs) < 2:
            raise ValueError(f"needs at least two languages, got {langs}")
        if isinstance(self.id_column, str) or isinstance(self.text_column, str):
            if not self.header:
                raise ValueError("id_column/text_column given by name need header: true")
        if self.pivot is not None:
            if self.pairs != "all":
                raise ValueError("give pivot or an explicit pairs list, not both")
            if self.pivot not in langs:
                raise ValueError(f"pivot {self.pivot!r} is not one of the languages {langs}")
        if self.pairs != "all":
            unknown = sorted({lang for pair in self.pairs for lang in pair if lang not in langs})
            if unknown:
                raise ValueError(f"pairs name language(s) {unknown} that have no file; languages: {langs}")
            if any(a == b for a, b in self.pairs):
                raise ValueError("a pair needs two different languages")
        return self

    def language_pairs(self) -> list[tuple[str, str]]:
        """Directed (query_lang, doc_lang) pairs in spec order, reverse directions included."""
        langs = list(self.files or self.tsv or {})
        if self.pivot is not None:
            base = [(self.pivot, other) for other in langs if other != self.pivot]
        elif self.pairs == "all":
            base = [(a, b) for i, a in enumerate(langs) for b in langs[i + 1 :]]
        else:
            base = list(self.pairs)
        out: list[tuple[str, str]] = []
        for a, b in base:
            for pair in [(a, b), (b, a)] if self.both_directions else [(a, b)]:
                if pair not in out:
                    out.append(pair)
        return out


class SquadSource(SourceBase):
    """SQuAD-style JSON (`data[].paragraphs[].qas[]`) -> `qa` pairs: question -> its paragraph."""

    kind: Literal["squad"]
    task: str = Field("qa", min_length=1)
    files: dict[str, str | list[str]] = Field(min_length=1, description="language -> SQuAD JSON file(s)")
    skip_unanswerable: bool = Field(True, description="Skip (and count) is_impossible / answerless questions")
    context_replace: dict[str, str] = Field(
        default_factory=dict, description="Replace substrings of paragraphs, e.g. {' [SEP] ': '\\n'} for JSQuAD"
    )

    def input_paths(self) -> list[str]:
        return [p for value in self.files.values() for p in as_paths(value)]

    _guard = field_validator("files")(not_eval)


class MonolingualSource(SourceBase):
    """Sentences -> self-supervised pairs inside blocks of at most `window` consecutive sentences.

    `ict` (inverse cloze, ORQA/Contriever): a sentence -> the rest of its block; the sentence is
    removed from that context with probability `ict_remove_prob`, else kept in place.
    `crop`: two independent random spans (`crop_ratio` of the block's sentences) of the same block;
    with `crop_unit: words` each line is a document and the spans are of its words (characters for
    `char_langs`), as Contriever crops documents.
    Blocks never cross documents: TSV rows with the same `document_column` value (matched by
    `document_pattern`, group 1) in a row, or text lines between blank lines.
    """

    kind: Literal["monolingual"]
    task: str = Field("self_supervised", min_length=1)
    files: dict[str, str | list[str]] = Field(min_length=1, description="language -> TSV or text file(s)")
    format: Literal["auto", "tsv", "txt"] = Field("auto", description="auto: .tsv files are TSV, others text")
    text_column: int = Field(2, ge=0, description="TSV: 0-based column of the sentence")
    document_column: int | None = Field(None, ge=0, description="TSV: column whose value changes between documents")
    document_pattern: str | None = Field(None, description="regex on the document column; group 1 is the document key")
    window: int = Field(8, ge=2, description="Sentences per block")
    mode: Literal["ict", "crop", "both"] = "both"
    ict_remove_prob: float = Field(0.9, ge=0.0, le=1.0)
    crops_per_block: int = Field(1, ge=1, description="Crop pairs per block (per sentence with crop_unit: words)")
    crop_unit: Literal["sentences", "words"] = Field(
        "sentences", description="sentences: spans of a block; words: spans of one line (a document per line)"
    )
    crop_ratio: tuple[float, float] = Field((0.1, 0.5), description="min, max fraction of the units to keep")
    min_crop_units: int = Field(4, ge=2, description="crop_unit words: lines with fewer words are not cropped")
    char_langs: list[str] = Field(
        default_factory=lambda: ["zh", "zh-Hant", "ja", "th"], description="crop_unit words: crop characters here"
    )
    min_chars: int = Field(10, ge=1, description="Shorter sentences are skipped (and counted)")
    joiner: str = Field(" ", description="Joins sentences of a context or span")
    joiner_by_lang: dict[str, str] = Field(
        default_factory=lambda: {"zh": "", "ja": "", "zh-Hant": ""}, description="Per-language joiner"
    )

    def input_paths(self) -> list[str]:
        return [p for value in self.files.values() for p in as_paths(value)]

    _guard = field_validator("files")(not_eval)

    @model_validator(mode="after")
    def _check(self) -> MonolingualSource:
        low, high = self.crop_ratio
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_ratio {list(self.crop_ratio)} must satisfy 0 < min <= max <= 1")
        if self.document_pattern is not None:
            try:
                re.compile(self.document_pattern)
            except re.error as err:
                raise ValueError(f"document_pattern {self.document_pattern!r} is not a regex: {err}") from None
            if self.document_column is None:
                raise ValueError("document_pattern needs document_column")
        return self


MAPPABLE = ("query", "positive", "negatives", "task", "query_lang", "doc_lang", "instruction")


class MappedSource(SourceBase):
    """Rows that already are pairs: `columns` maps schema fields to the input's column names."""

    columns: dict[str, str] = Field(default_factory=dict, description="schema field -> input column")
    lang: str | None = Field(None, description="Default query_lang and doc_lang")
    query_lang: str | None = None
    doc_lang: str | None = None

    @field_validator("columns")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"unknown schema field(s) {unknown}; map any of {list(MAPPABLE)}")
        return value

    def column(self, field: str) -> str | None:
        """The input column for a schema field: the mapping, else the field's own name where that makes sense."""
        if field in self.columns:
            return self.columns[field]
        return field if field in ("query", "positive") else None

    def default(self, field: str) -> str | None:
        """The value used when `field` has no column (or an empty one)."""
        if field == "task":
            return self.task
        if field in ("query_lang", "doc_lang"):
            return getattr(self, field) or self.lang
        return None

    @model_validator(mode="after")
    def _langs_known(self) -> MappedSource:
        missing = [f for f in ("query_lang", "doc_lang") if f not in self.columns and self.default(f) is None]
        if missing:
            raise ValueError(f"no value for {missing}: set lang (or query_lang/doc_lang) or map columns.{missing[0]}")
        return self


class PairFilesSource(MappedSource):
    """Existing JSONL/Parquet files (or folders of them) with any column names."""

    kind: Literal["pairs"]
    files: list[str] = Field(min_length=1, description="JSONL/Parquet files or folders of them")

    def input_paths(self) -> list[str]:
        return list(self.files)

    _guard = field_validator("files")(not_eval)


class HFDatasetSource(MappedSource):
    """A Hugging Face `datasets` dataset from a local path (never the hub)."""

    kind: Literal["hf_dataset"]
    path: str = Field(description="A save_to_disk folder, or a local folder/file load_dataset understands")
    split: str | None = Field(None, description="Needed when the path holds several splits")
    loader: Literal["auto", "load_from_disk", "load_dataset"] = "auto"

    def input_paths(self) -> list[str]:
        return [self.path]

    _guard = field_validator("path")(not_eval)
