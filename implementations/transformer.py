r"""A small pre-norm Transformer whose attention and feed-forward slots take any mechanism.

Each of the ``depth`` blocks is the pre-norm residual pair of *Attention Is All You
Need* (Vaswani et al., 2017, arXiv:1706.03762) as rearranged by Xiong et al. (2020,
*On Layer Normalization in the Transformer Architecture*, arXiv:2002.04745):

$$
h = x + \mathrm{Attn}(\mathrm{LN}(x)), \qquad y = h + \mathrm{FFN}(\mathrm{LN}(h)),
$$

followed by a final $\mathrm{LN}$. The attention slot takes any registered mechanism of
kind ``attention``, ``memory`` or ``downsample``; the feed-forward slot a plain MLP
$\mathrm{FFN}(x) = W_2\,\mathrm{GELU}(W_1 x)$ (hidden width ``ff_mult * dim``) or any
registered mechanism of kind ``ffn``.

Every slot is called through [apply][implementations._registry.apply], which knows each
kind's contract. How each kind plugs in:

* ``attention``: ``Attn(LN(x), mask)``; the key-padding mask is passed to every layer.
* ``memory``: ``Attn(LN(x), memory) -> (y, memory)``; each layer's memory is returned
  in [`TransformerOutput.memories`][implementations.transformer.TransformerOutput] and is passed
  back in on the next call (the segment recurrence). Padding masks are not part of this contract.
* ``downsample``: the layer returns ``output_length(n)`` positions. The residual is the
  input pooled by the module's own ``pool_residual(x, mask)`` when it defines one (the
  Funnel-Transformer pools the stream as it pools its queries), else average-pooled to
  that length (padding zeroed first); the mask is max-pooled (a pooled position is real
  when any position of its window is), unless the module defines ``output_mask(mask)``.
* ``ffn``: ``FFN(LN(h), mask) -> (y, aux_loss)``; the mask keeps padded tokens out of
  a mixture of experts' routing, so padding never changes real tokens. The auxiliary
  losses (e.g. load balancing of a mixture of experts) of every layer are summed into
  [`TransformerOutput.aux_loss`][implementations.transformer.TransformerOutput].

An attention-slot module may also leave a scalar tensor attribute ``aux_loss`` after its
forward (e.g. the compressive transformer's attention-reconstruction loss, which trains
its compression network); it is added to
[`TransformerOutput.aux_loss`][implementations.transformer.TransformerOutput] too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import zero_padding
from implementations._registry import apply, build, mechanism

__all__ = ["MLP", "Transformer", "TransformerOutput"]


@dataclass
class TransformerOutput:
    """What [`Transformer.forward`][implementations.transformer.Transformer.forward] returns.

    Attributes:
        y: The output ``[batch, n_out, dim]``; ``n_out == n`` unless a ``downsample``
            mechanism shortened the sequence.
        aux_loss: Float32 scalar tensor, the sum of the auxiliary losses of the ``ffn``
            layers and of attention layers exposing ``aux_loss`` (0 when none).
        memories: One entry per layer, the memory a ``memory`` mechanism returned (None
            for other layers); None when no layer keeps a memory. Pass it back as
            ``memories=`` with the next segment.
        mask: The key-padding mask ``[batch, n_out]`` of ``y`` (None when none was given).
    """

    y: Tensor
    aux_loss: Tensor
    memories: list[Any] | None = None
    mask: Tensor | None = None


class MLP(nn.Module):
    r"""The position-wise feed-forward network $W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2$.

    Follows the ``ffn`` contract: ``forward(x, mask=None) -> (y, aux_loss)`` with
    ``aux_loss = 0``; position-wise, so the mask changes nothing.

    Examples:
        >>> import torch
        >>> from implementations.transformer import MLP
        >>> y, aux_loss = MLP(16)(torch.randn(2, 5, 16))
        >>> y.shape, aux_loss.item()
        (torch.Size([2, 5, 16]), 0.0)
    """

    kind = "ffn"  # the contract the adapter calls it under

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[b, n, dim]`` -> ``(y [b, n, dim], 0)``; ``mask`` is accepted and unused."""
        return self.net(x), x.new_zeros(())


class Transformer(nn.Module):
    """A stack of pre-norm blocks (see the module docstring), encoder or causal decoder.

    Args:
        dim: Model width.
        depth: Number of blocks.
        heads: Attention heads per block.
        attention: Registered id of kind ``attention``, ``memory`` or ``downsample``.
        ffn: Registered id of kind ``ffn``, or None for the plain
            [`MLP`][implementations.transformer.MLP].
        causal: Build a decoder: every mechanism is built with ``causal=True``.
        attention_options: Keyword options for the attention mechanism (checked by
            [`implementations.build`][implementations._registry.build]).
        ffn_options: Keyword options for the ``ffn`` mechanism.
        ff_mult: Hidden width multiplier of the plain MLP.

    Examples:
        >>> from implementations.transformer import Transformer
        >>> import torch
        >>> model = Transformer(dim=32, depth=2, heads=4, attention="dense", causal=True)
        >>> out = model(torch.randn(2, 10, 32))
        >>> out.y.shape, out.aux_loss.item(), out.memories
        (torch.Size([2, 10, 32]), 0.0, None)
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        attention: str = "dense",
        ffn: str | None = None,
        causal: bool = False,
        attention_options: dict[str, Any] | None = None,
        ffn_options: dict[str, Any] | None = None,
        ff_mult: int = 4,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.attention_kind = mechanism(attention).kind
        if self.attention_kind == "ffn":
            raise ValueError(f"{attention!r} is an ffn mechanism; pass it as ffn=")
        if ffn is not None and mechanism(ffn).kind != "ffn":
            raise ValueError(f"ffn must be a mechanism of kind 'ffn', got {ffn!r}")
        if ffn is None and ffn_options:
            raise ValueError("ffn_options given without an ffn mechanism")

        self.attn_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.attns = nn.ModuleList(
            build(attention, dim=dim, heads=heads, causal=causal, **(attention_options or {}))
            for _ in range(depth)
        )
        self.ff_norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.ffns = nn.ModuleList(
            MLP(dim, ff_mult)
            if ffn is None
            else build(ffn, dim=dim, heads=heads, causal=causal, **(ffn_options or {}))
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memories: Sequence[Any] | None = None,
    ) -> TransformerOutput:
        """Run the stack.

        Args:
            x: ``[batch, n, dim]`` embeddings.
            mask: Bool key-padding mask ``[batch, n]``, True = real token (not
                supported with ``memory`` mechanisms).
            memories: What the previous call returned as ``memories`` (``memory`` kind).

        Returns:
            A [`TransformerOutput`][implementations.transformer.TransformerOutput].
        """
        kind = self.attention_kind
        if memories is not None and len(memories) != len(self.attns):
            raise ValueError(f"expected {len(self.attns)} memories, got {len(memories)}")

        aux_loss = x.new_zeros((), dtype=torch.float32)
        new_memories: list[Any] = []
        for i, (attn_norm, attn, ff_norm, ff) in enumerate(
            zip(self.attn_norms, self.attns, self.ff_norms, self.ffns, strict=True)
        ):
            memory = None if memories is None else memories[i]
            attended = apply(attn, attn_norm(x), mask, memory=memory)  # y: [b, n_out, dim]
            if kind == "memory":
                new_memories.append(attended.memory)
            elif kind == "downsample":
                x = self._pool_residual(attn, x, mask, attended.y.shape[1])
            x, mask = x + attended.y, attended.mask
            fed = apply(ff, ff_norm(x), mask)  # padding never reaches real tokens
            x = x + fed.y
            aux_loss = aux_loss + attended.aux_loss + fed.aux_loss

        return TransformerOutput(
            y=self.norm(x),
            aux_loss=aux_loss,
            memories=new_memories if kind == "memory" else None,
            mask=mask,
        )

    @staticmethod
    def _pool_residual(layer: nn.Module, x: Tensor, mask: Tensor | None, n_out: int) -> Tensor:
        """The residual stream shortened to ``n_out`` positions (its mask: the adapter's)."""
        if n_out == x.shape[1]:
            return x
        pool_residual = getattr(layer, "pool_residual", None)
        if pool_residual is not None:  # the paper's own pooling of the stream
            return pool_residual(x, mask)  # [b, n_out, dim]
        # Zero padded positions so their values cannot reach real pooled positions.
        pooled = F.adaptive_avg_pool1d(zero_padding(x, mask).transpose(1, 2), n_out)
        return pooled.transpose(1, 2)  # [b, n_out, dim]
