"""Token positions an encoder computes vs real tokens, for the benchmarks (torch only: the GPU machine runs it)."""

from __future__ import annotations

from typing import Any

import torch


class PositionCounter:
    """Counts the token positions an encoder computes and how many are real tokens, over every forward (GradCache's
    included) while `counting`, from the attention mask each forward gets (after input_ids, as a keyword, or in a
    sentence-transformers features dict). An `unpadded` encoder (`model.unpadded`) computes its layers' linear
    projections on real tokens only: those positions count as computed (attention's padded grid does not)."""

    def __init__(self, module: torch.nn.Module, counting: bool = False, unpadded: bool = False) -> None:
        self.real = self.computed = 0
        self.counting = counting
        self.unpadded = unpadded
        self._hook = module.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, _module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if args and isinstance(args[0], dict):  # a sentence-transformers module gets one features dict
            mask = args[0].get("attention_mask")
        else:
            mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if self.counting and isinstance(mask, torch.Tensor):
            real = int(mask.sum())
            self.real += real
            self.computed += real if self.unpadded else mask.numel()

    def remove(self) -> None:
        """Stop counting for good (the hook leaves the module)."""
        self._hook.remove()

    @property
    def useful(self) -> float:
        """Real tokens / computed positions (nan before any counted forward)."""
        return self.real / self.computed if self.computed else float("nan")
