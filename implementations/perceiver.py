r"""Perceiver: a small learned latent array cross-attends to the (long) input.

Paper: *Perceiver: General Perception with Iterative Attention*, Andrew Jaegle, Felix
Gimeno, Andrew Brock, Andrew Zisserman, Oriol Vinyals and João Carreira, ICML 2021
(arXiv:2103.03206).

Self-attention over an input $X \in \mathbb{R}^{M \times C}$ costs $O(M^2)$. The
Perceiver instead keeps a **latent array** $Z \in \mathbb{R}^{N \times D}$ of learned
vectors, $N \ll M$ (the paper: $N = 512$), and alternates two kinds of block:

* a **cross-attend**: queries from the latents, keys and values from the input,
  $O(NM)$: linear in the input length (single-headed in the paper);

$$
Z \leftarrow Z + \mathrm{softmax}\!\left(\frac{\hat Z W_Q (\hat X W_K)^\top}{\sqrt{d}}\right)
\hat X W_V W_O,
\quad \hat Z = \mathrm{LN}(Z),\; \hat X = \mathrm{LN}(X),
\qquad Z \leftarrow Z + \mathrm{MLP}(\mathrm{LN}(Z)),
$$

* a **latent Transformer**: ordinary pre-norm self-attention blocks (GPT-2 style) on
  $Z$ alone, $O(N^2)$ each, independent of $M$, so depth no longer multiplies the
  input length.

The paper repeats "cross-attend, then a latent Transformer of several blocks" (8 times
for ImageNet, 6 latent blocks each), sharing the weights of every cross-attend but the
first and of every latent Transformer, so the model reads as an RNN unrolled in depth
that re-queries the input.

The output is the final latent array: $N$ = ``num_latents`` positions whatever the
input length ([`Perceiver.output_length`][implementations.perceiver.Perceiver.output_length]), all
of them real ([`Perceiver.output_mask`][implementations.perceiver.Perceiver.output_mask]). Padded
input tokens are excluded as keys of every cross-attention. The latents summarise the whole input,
so there is no causal variant (that is the later Perceiver AR). Input position encodings (the
paper's Fourier features) belong to the input embedding and are outside this module.

Hyper-parameters:

* ``num_latents``: $N$, the latent array's length (paper: 512).
* ``num_blocks``: cross-attend + latent-Transformer repeats (paper: 8 on ImageNet; 1
  here by default, as in the Perceiver IO encoder, to keep the reference cheap).
* ``self_attends_per_block``: latent self-attention blocks per repeat (paper: 6); they
  use ``heads`` heads (paper: 8).
* ``cross_heads``: heads of the cross-attention (paper: 1).
* ``widening_factor``: MLP hidden width over ``dim`` (the authors' released code: 1).

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, 512 latents, dim 512:
0.39 s): the cross-attention of the latents over the input 0.12 s (fused) and its key and value
projections 0.12 s; the latent Transformer's blocks on the ``[512, 512]`` latents 0.14 s
(projections, attention, feed-forward). Only the cross-attention grows with $n$. Shipped
benchmark (two threads): 0.21x exact attention forward and 0.20x forward+backward at 8192;
0.64x perceiver-pytorch's forward time.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections, default_mask
from implementations._registry import Range, register
from implementations.dense import attention as dense_attention

__all__ = ["CrossAttend", "LatentSelfAttend", "Perceiver"]


def _mlp(dim: int, widening_factor: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, widening_factor * dim),
        nn.GELU(),
        nn.Linear(widening_factor * dim, dim),
    )


class CrossAttend(nn.Module):
    r"""The cross-attend block: latents query the input, then an MLP (both residual).

    $Z \leftarrow Z + \mathrm{Attn}(\mathrm{LN}(Z), \mathrm{LN}(X))$, then
    $Z \leftarrow Z + \mathrm{MLP}(\mathrm{LN}(Z))$.

    Args:
        dim: Width of latents and inputs.
        heads: Cross-attention heads.
        widening_factor: MLP hidden width over ``dim``.
    """

    def __init__(self, dim: int, heads: int, widening_factor: int) -> None:
        super().__init__()
        self.latent_norm = nn.LayerNorm(dim)
        self.input_norm = nn.LayerNorm(dim)
        self.proj = HeadProjections(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, widening_factor)

    def forward(self, z: Tensor, x: Tensor, mask: Tensor) -> Tensor:
        """``z`` ``[b, N, dim]`` latents, ``x`` ``[b, M, dim]`` inputs, ``mask`` ``[b, M]``."""
        # q [b, h, N, d] from the latents; k, v [b, h, M, d] from the input.
        q, k, v = self.proj.qkv(self.latent_norm(z), self.input_norm(x))
        z = z + self.proj.out(dense_attention(q, k, v, mask=mask))  # [b, N, dim]
        return z + self.mlp(self.mlp_norm(z))


class LatentSelfAttend(nn.Module):
    r"""A pre-norm Transformer block on the latents: self-attention, then MLP.

    Args:
        dim: Latent width.
        heads: Self-attention heads.
        widening_factor: MLP hidden width over ``dim``.
    """

    def __init__(self, dim: int, heads: int, widening_factor: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.proj = HeadProjections(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, widening_factor)

    def forward(self, z: Tensor) -> Tensor:
        """``z`` ``[b, N, dim]`` -> ``[b, N, dim]``."""
        q, k, v = self.proj.qkv(self.attn_norm(z))  # [b, h, N, d] each
        z = z + self.proj.out(dense_attention(q, k, v))
        return z + self.mlp(self.mlp_norm(z))


@register("perceiver", kind="downsample", supports_causal=False)
class Perceiver(nn.Module):
    r"""A learned latent array that cross-attends to the input, then self-attends.

    Args:
        dim: Model width (inputs and latents, $C = D$).
        heads: Heads of the latent self-attention.
        causal: Must be False.
        num_latents: $N$, the output length.
        num_blocks: Repeats of (cross-attend, latent Transformer); weights shared
            between every repeat but the first cross-attend.
        self_attends_per_block: Latent self-attention blocks per repeat (0 for none).
        cross_heads: Heads of the cross-attention.
        widening_factor: MLP hidden width over ``dim``.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("perceiver", dim=32, heads=4, num_latents=16)
        >>> x = torch.randn(2, 100, 32)
        >>> layer(x).shape, layer.output_length(100)
        (torch.Size([2, 16, 32]), 16)
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "num_blocks": (1, 1024),
        "self_attends_per_block": (0, 1024),
    }

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        num_latents: int = 512,
        num_blocks: int = 1,
        self_attends_per_block: int = 6,
        cross_heads: int = 1,
        widening_factor: int = 1,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("perceiver does not support causal=True")
        for name, value, least in (
            ("num_latents", num_latents, 1),
            ("num_blocks", num_blocks, 1),
            ("self_attends_per_block", self_attends_per_block, 0),
            ("widening_factor", widening_factor, 1),
        ):
            if value < least:
                raise ValueError(f"{name} must be >= {least}, got {value}")
        if cross_heads < 1 or dim % cross_heads:
            raise ValueError(f"cross_heads must divide dim ({dim}), got {cross_heads}")
        self.num_latents = num_latents
        self.num_blocks = num_blocks
        # The paper initialises the latent array from a truncated normal (std 0.02,
        # truncated to [-2, 2]).
        self.latents = nn.Parameter(nn.init.trunc_normal_(torch.empty(num_latents, dim), std=0.02))
        # The first cross-attend has its own weights; later repeats share a second one.
        self.cross_attends = nn.ModuleList(
            CrossAttend(dim, cross_heads, widening_factor) for _ in range(min(num_blocks, 2))
        )
        # One latent Transformer, shared by every repeat.
        self.self_attends = nn.ModuleList(
            LatentSelfAttend(dim, heads, widening_factor) for _ in range(self_attends_per_block)
        )

    def output_length(self, n: int) -> int:
        """Always ``num_latents``, whatever the input length ``n``."""
        return self.num_latents

    def output_mask(self, mask: Tensor) -> Tensor:
        """Every latent is real: all True ``[b, num_latents]``."""
        return torch.ones(mask.shape[0], self.num_latents, dtype=torch.bool, device=mask.device)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, M, dim]``, ``mask`` bool ``[b, M]`` -> latents ``[b, num_latents, dim]``."""
        mask = default_mask(mask, x)
        z = self.latents.to(x.dtype).expand(x.shape[0], -1, -1)  # [b, N, dim]
        for block in range(self.num_blocks):
            z = self.cross_attends[min(block, 1)](z, x, mask)
            for layer in self.self_attends:
                z = layer(z)
        return z
