"""The keys of a collated training batch: `PairCollator` writes them, the losses and the train loop read them.

Imports nothing from rtrain, so any layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextGroup:
    """One group of texts in a batch: its token ids and attention mask, both (rows, seq)."""

    name: str
    ids: str
    mask: str


QUERY = TextGroup("q", "q_input_ids", "q_attention_mask")  # (B, Lq)
POSITIVE = TextGroup("p", "p_input_ids", "p_attention_mask")  # (B, Ld)
NEGATIVE = TextGroup("n", "n_input_ids", "n_attention_mask")  # (B*k, Ld); absent when k = 0
TEXT_GROUPS: tuple[TextGroup, ...] = (QUERY, POSITIVE, NEGATIVE)  # the order the losses take them

P_HASH = "p_hash"  # (B,) int64 text hash of each positive (false-negative masking)
N_HASH = "n_hash"  # (B*k,) int64 text hash of each negative; absent when k = 0
GROUP = "group"  # (B,) int64 task/source id of each row (the homogeneous-batch check); optional
ROW = "row"  # (B,) int64 position of each row in its rank's planned stream (the ledger, resume); optional
