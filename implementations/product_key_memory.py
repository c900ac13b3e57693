r"""Product-key memory: a huge key-value memory layer searched in $O(\sqrt{N})$.

Paper: *Large Memory Layers with Product Keys*, Guillaume Lample, Alexandre
Sablayrolles, Marc'Aurelio Ranzato, Ludovic Denoyer and Hervé Jégou, 2019 (NeurIPS;
arXiv:1907.05242).

The layer replaces a feed-forward sub-layer. A query network maps each token to a
query $q(x) \in \mathbb{R}^{d_q}$ (a linear map followed by batch normalisation, which
the paper finds raises key usage). The memory holds $N = |\mathcal{C}|^2$ keys and
values; the keys are never stored: each is the concatenation of two *sub-keys*,
$k_{ij} = [c_i; c'_j]$, from two sets $\mathcal{C}, \mathcal{C}'$ of $\sqrt{N}$ sub-keys
of size $d_q / 2$. With the query split in halves $q = [q_1; q_2]$,

$$
\langle q, k_{ij} \rangle = \langle q_1, c_i \rangle + \langle q_2, c'_j \rangle ,
$$

so the $k$ best keys of all $N$ are among the $k \times k$ pairs of the $k$ best
sub-keys of each half:

$$
\mathcal{I}_1 = \mathcal{T}_k(\langle q_1, c_i \rangle), \quad
\mathcal{I}_2 = \mathcal{T}_k(\langle q_2, c'_j \rangle), \quad
\mathcal{K} = \mathcal{T}_k\big(\langle q_1, c_i \rangle + \langle q_2, c'_j \rangle
: (i, j) \in \mathcal{I}_1 \times \mathcal{I}_2\big)
$$

($\mathcal{T}_k$: the top-$k$ indices). The search costs
$O((\sqrt{N} + k^2)\, d_q)$ instead of $O(N d_q)$. The output is the softmax-weighted
sum of the selected values, read with a sparse gather (an ``nn.EmbeddingBag``):

$$
w = \mathrm{softmax}\big((\langle q, k_{ij} \rangle)_{(i,j) \in \mathcal{K}}\big), \qquad
m(x) = \sum_{(i,j) \in \mathcal{K}} w_{ij}\, v_{ij} .
$$

Multi-head memory: $H$ heads have their own query networks and sub-keys and share
the values; their outputs are summed. The auxiliary loss is 0.

Hyper-parameters (the paper's defaults):

* ``heads``: the constructor's ``heads`` is $H$, the number of memory heads (paper: 4).
* ``n_keys`` ($|\mathcal{C}| = \sqrt{N}$, 512, so $N = 262{,}144$ memory slots).
* ``k_dim`` ($d_q$, 512): query / key width, split in two halves of 256.
* ``topk`` ($k$, 32): keys read per head.
* ``query_batchnorm`` (True): batch normalisation on the query. In training mode its
  batch statistics couple the tokens of a batch (as in the paper); in eval mode it uses
  running statistics and every token is read independently. Pass False for strictly
  per-token queries in training too.

The values receive dense gradients here (the paper updates them sparsely with a
separate optimizer).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from implementations._registry import Range, register

__all__ = ["ProductKeyMemory", "product_key_topk"]


def product_key_topk(q: Tensor, sub_keys: Tensor, topk: int) -> tuple[Tensor, Tensor]:
    r"""The ``topk`` best keys of the product set $\mathcal{C} \times \mathcal{C}'$.

    Args:
        q: Queries ``[..., h, d_q]``.
        sub_keys: ``[h, 2, n_keys, d_q / 2]``, the two sub-key sets of every head.
        topk: $k$, at most ``n_keys``.

    Returns:
        ``(scores, index)``, both ``[..., h, topk]``, best first; ``index = i * n_keys + j``
        addresses the key $[c_i; c'_j]$.

    Examples:
        >>> import torch
        >>> from implementations.product_key_memory import product_key_topk
        >>> q, keys = torch.randn(5, 2, 8), torch.randn(2, 2, 16, 4)
        >>> scores, index = product_key_topk(q, keys, topk=3)
        >>> scores.shape, int(index.max()) < 16 * 16
        (torch.Size([5, 2, 3]), True)
    """
    n_keys = sub_keys.shape[-2]
    halves = rearrange(q, "... h (c d) -> ... h c d", c=2)  # [..., h, 2, d_q/2]
    # Sub-key scores [..., h, 2, n_keys], in (at least) float32: the top-k is a discrete
    # choice among near-ties, which bfloat16 rounding would reshuffle.
    dtype = torch.promote_types(q.dtype, torch.float32)
    sub_scores = torch.einsum("...hcd,hckd->...hck", halves.to(dtype), sub_keys.to(dtype))
    best, best_index = sub_scores.topk(topk, dim=-1)  # [..., h, 2, k]
    # Scores and indices of the k x k candidate pairs (i, j).
    pair_scores = best[..., 0, :, None] + best[..., 1, None, :]  # [..., h, k, k]
    pair_index = best_index[..., 0, :, None] * n_keys + best_index[..., 1, None, :]
    scores, pos = pair_scores.flatten(-2).topk(topk, dim=-1)  # [..., h, k]
    return scores, pair_index.flatten(-2).gather(-1, pos)  # the k x k pairs: [..., h, k*k]


@register("product-key-memory", kind="ffn", supports_causal=True)
class ProductKeyMemory(nn.Module):
    r"""Product-key memory layer (multi-head), used in place of a feed-forward layer.

    Args:
        dim: Model width (the width of the values).
        heads: Memory heads $H$.
        causal: Accepted; the memory is read per token (but see ``query_batchnorm``).
        n_keys: Sub-keys per half, $\sqrt{N}$.
        k_dim: Query width $d_q$ (even).
        topk: Keys read per head, $k$.
        query_batchnorm: Batch-normalise the queries.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "product-key-memory", dim=32, heads=4, n_keys=16, k_dim=32, topk=8
        ... )
        >>> y, aux_loss = layer(torch.randn(2, 10, 32))
        >>> y.shape, aux_loss.item()
        (torch.Size([2, 10, 32]), 0.0)
    """

    # Checked by implementations.build: n_keys**2 memory slots, so at most 2**24.
    option_ranges: ClassVar[dict[str, Range]] = {"n_keys": (1, 2**12)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        n_keys: int = 512,
        k_dim: int = 512,
        topk: int = 32,
        query_batchnorm: bool = True,
    ) -> None:
        super().__init__()
        if k_dim <= 0 or k_dim % 2:
            raise ValueError(f"k_dim must be a positive even number, got {k_dim}")
        if not 0 < topk <= n_keys:
            raise ValueError(f"topk must be in [1, n_keys={n_keys}], got {topk}")
        self.heads = heads
        self.n_keys = n_keys
        self.k_dim = k_dim
        self.topk = topk
        self.query = nn.Linear(dim, heads * k_dim)  # one query network per head
        self.query_norm = nn.BatchNorm1d(heads * k_dim) if query_batchnorm else nn.Identity()
        half = k_dim // 2
        self.sub_keys = nn.Parameter(torch.empty(heads, 2, n_keys, half))  # C, C' per head
        nn.init.uniform_(self.sub_keys, -1 / math.sqrt(half), 1 / math.sqrt(half))
        self.values = nn.EmbeddingBag(n_keys**2, dim, mode="sum")  # shared by the heads
        nn.init.normal_(self.values.weight, std=dim**-0.5)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[b, n, dim]`` -> ``(m(x) [b, n, dim], 0)``.

        The memory is read per token; ``mask`` (bool ``[b, n]``, True = real) only keeps
        padded tokens out of the batch statistics of ``query_batchnorm`` in training.
        """
        b, n, d = x.shape
        q = self.query(x.reshape(b * n, d))  # [T, H * d_q]
        real = None if mask is None or not self.training else mask.reshape(b * n, 1)
        if real is None or bool(real.all()):
            q = self.query_norm(q)
        else:  # statistics of the real tokens; padded rows keep their raw queries
            q = q.masked_scatter(real, self.query_norm(q[real[:, 0]]))
        q = q.view(b * n, self.heads, self.k_dim)  # [T, H, d_q]
        scores, index = product_key_topk(q, self.sub_keys, self.topk)  # [T, H, k]
        weights = scores.float().softmax(-1).to(x.dtype)  # [T, H, k], per head
        # One bag per token ([T, H * k]): its k values of every head, weighted and summed.
        m = self.values(
            index.reshape(b * n, -1), per_sample_weights=weights.reshape(b * n, -1)
        )  # [T, dim]
        return m.view(b, n, d), x.new_zeros((), dtype=torch.float32)  # [b, n, dim]
