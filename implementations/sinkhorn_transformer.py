r"""Sparse Sinkhorn Attention: local attention over blocks re-ordered by a learned sort.

Paper: *Sparse Sinkhorn Attention*, Tay, Bahri, Yang, Metzler and Juan, ICML 2020
(arXiv:2002.11296).

The sequence is cut into $N_B$ blocks of $b$ tokens. Instead of attending only to its
own block, each block of queries also attends to the block that a learned, soft
permutation of the blocks places next to it: quasi-global attention at local cost.

**Sorting network.** Each block is summarised by sum-pooling its input tokens,
$X'_i = \sum_{t \in \text{block } i} x_t$, and a two-layer ReLU network (one output
row per head) scores every (block, block) pair:

$$
R = P(X') = \sigma\big(W_B\, \sigma(W_P X' + b_P) + b_B\big) \in \mathbb{R}^{N_B \times N_B},
\qquad \sigma = \mathrm{ReLU}.
$$

**Sinkhorn normalisation.** Alternately normalising rows and columns turns
$\exp(R / \tau)$ into a doubly stochastic matrix, a relaxed permutation (done in log
space, $k$ iterations, temperature $\tau$):

$$
S^0 = R / \tau, \qquad
S^{t} = \mathcal{F}_c\big(\mathcal{F}_r(S^{t-1})\big), \qquad
\mathcal{F}_r(X) = X - \log\!\big(\exp(X)\, \mathbf{1}\mathbf{1}^\top\big), \quad
\mathcal{F}_c(X) = X - \log\!\big(\mathbf{1}\mathbf{1}^\top \exp(X)\big),
$$

and $\mathbf{S} = \exp(S^k)$. The paper's Gumbel-Sinkhorn variant adds Gumbel noise
to $R$ during training (``gumbel_noise=True``; off by default, which keeps the soft sort
deterministic).

**Attention.** Block $i$'s sorted keys and values are the mixture
$\psi_S(K)_i = \sum_j \mathbf{S}_{ij} K_j$ (likewise $V$). Each query block attends to
the concatenation of its sorted block and its own (local) block, in one softmax:

$$
Y_i = \mathrm{softmax}\!\Big(\frac{Q_i\, [\psi_S(K)_i ; K_i]^\top}{\sqrt{d}}\Big)\,
      [\psi_S(V)_i ; V_i] .
$$

Scores are $n \times 2b$; the sorting itself costs $O(N_B^2)$ plus the mixture of
blocks. A padded key is zeroed before mixing and enters the softmax with weight
$\sum_j \mathbf{S}_{ij}\, \mathrm{real}_j$ (its share of real tokens).

**SortCut** (``sortcut_blocks`` $= n_c$, encoders only). After sorting, keep only the
first $n_c$ sorted blocks and let every query attend to them alone:
$Y = \mathrm{softmax}(Q\, \psi_S(K)_{[:n_c]}^\top / \sqrt{d})\, \psi_S(V)_{[:n_c]}$, a
dynamic truncation to $n_c b$ keys: $O(n\, n_c\, b)$.

**Causal Sinkhorn balancing** (``causal=True``). Block $i$ may only be sorted to
strictly earlier blocks $j < i$ (the local block, masked causally, covers its own
past), and the sorting network sees, for block $i$, the mean of all tokens up to the
block's first token. Plain masked balancing would still let later rows change earlier
ones through the column sums, so row $i$ of $\mathbf{S}$ is taken from the masked
Sinkhorn iterations run on rows $1..i$ alone (the matrix as known at block $i$), each
iteration ending with the rows so that row $i$ is a distribution over blocks $j < i$
([`causal_sinkhorn`][implementations.sinkhorn_transformer.causal_sinkhorn]). Every block's sort
depends on the past only, and the layer decodes autoregressively. This costs $O(N_B^3)$ for the
(small) sorting matrices. Block 0 has no past block and attends locally.

**Where the time goes** (``torch.profiler``, one thread, causal, forward+backward, n = 8192,
blocks of 64, dim 512, 8 heads: 1.48 s): the projections about 430 ms; the attention about
250 ms, with materialised scores (see
[`softmax_attention`][implementations._helpers.softmax_attention]): the log-share bias of the
sorted keys needs a gradient, which the fused CPU kernel cannot give; masking (``where``)
78 ms; the per-prefix causal balancing about 100 ms of ``exp``. Applying the bias as a mask
instead (exact for a causal sort, whose rows sum to 1 after the first) was tried and gained
under 5%: with that mask (causal rows in each block) the profile still showed the unfused
``bmm``/``where`` backward. This is why
causal Sinkhorn stays slower than the sinkhorn-transformer package (up to 1.8×
forward+backward at 8192) although the non-causal form is at par (0.74–1.02×).

Hyper-parameters: ``block_size`` ($b$), ``max_blocks`` (the sorting network's output
width: at most ``max_blocks * block_size`` tokens), ``sinkhorn_iters`` ($k$),
``temperature`` ($\tau$; 0.75 is the paper's best), ``sortcut_blocks`` ($n_c$, None
disables SortCut) and ``gumbel_noise``.

**Where the time goes**: with blocks of $\sqrt n$, the block attention is small; the causal
sorting dominated:
[`reference_causal_sinkhorn`][implementations.sinkhorn_transformer.reference_causal_sinkhorn] holds
$N_B$ copies of the $N_B \times N_B$ matrix ($O(N_B^3)$ memory, 1.7 GB at n = 16384 with 64-token
blocks). [`causal_sinkhorn`][implementations.sinkhorn_transformer.causal_sinkhorn] balances the rows
in groups on the leading sub-matrix they need: a third of the work and $O(N_B^2)$ memory per group.
The $N_B^3$ term is the algorithm's (each row runs its own Sinkhorn iterations over its prefix; no
work is shared between rows). The block softmax over ``[sorted block; local block]`` runs in the
fused kernel with $\log(\text{share})$ as additive bias
([`reference_attention`][implementations.sinkhorn_transformer.reference_attention]
materialises it). Shipped benchmark (CPU, two threads, float32, dim 512, 8 heads, blocks of
$\sqrt n$): at n = 8192, 0.21x exact attention forward and 0.17x forward+backward
(bidirectional); causal 0.46x and 0.53x.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    causal_mask,
    chunk,
    default_mask,
    masked_softmax,
    pad_to_multiple,
    softmax_attention,
    zero_padding,
)
from implementations._registry import Range, register

__all__ = [
    "SinkhornTransformer",
    "attention",
    "causal_sinkhorn",
    "reference_attention",
    "reference_causal_sinkhorn",
    "sinkhorn",
]


def sinkhorn(log_alpha: Tensor, iters: int) -> Tensor:
    r"""Sinkhorn normalisation of $\exp(\text{log\_alpha})$: rows, then columns, ``iters`` times.

    Args:
        log_alpha: ``[..., N, N]`` scores (already divided by the temperature).
        iters: Number of row + column normalisations.

    Returns:
        ``[..., N, N]``, columns summing to 1 and rows to 1 up to convergence.

    Examples:
        >>> import torch
        >>> from implementations.sinkhorn_transformer import sinkhorn
        >>> s = sinkhorn(torch.randn(3, 3), iters=50)
        >>> torch.allclose(s.sum(-1), torch.ones(3), atol=1e-4)
        True
    """
    x = log_alpha.float()
    for _ in range(iters):
        x = x - x.logsumexp(dim=-1, keepdim=True)  # F_r: rows sum to 1
        x = x - x.logsumexp(dim=-2, keepdim=True)  # F_c: columns sum to 1
    return x.exp()


def causal_sinkhorn(log_alpha: Tensor, iters: int, rows_per_step: int = 16) -> Tensor:
    r"""Causal Sinkhorn balancing: row $i$ only sorts blocks $j < i$ and only sees rows $\le i$.

    The strictly lower-triangular part of ``log_alpha`` (rows 1..N-1, columns 0..N-2) is
    a lower-triangular $(N-1) \times (N-1)$ matrix with a non-empty diagonal. For each
    row $p$ of it, masked Sinkhorn iterations run on its rows $\le p$ (rows after $p$
    are not yet known at block $p + 1$), and row $p$ of the result is kept. Columns
    that no row $\le p$ may use are normalised over all rows; they never reach row
    $p$.

    Each iteration normalises the columns, then the rows, so that every row is a
    distribution over the past blocks (a convex mixture of key blocks). A lower-
    triangular matrix cannot be doubly stochastic unless it is the identity, and the
    newest past block is claimed by no earlier row, so it keeps a large share.

    Cost. Row $p$ only depends on the leading $(p+1) \times (p+1)$ sub-matrix, so the
    rows are processed ``rows_per_step`` at a time on the leading sub-matrix that the
    last of them needs: $\sum_p p^2 \approx N^3 / 3$ work per iteration (a third of the
    vectorised
    [`reference_causal_sinkhorn`][implementations.sinkhorn_transformer.reference_causal_sinkhorn])
    and $O(\text{rows\_per\_step} \cdot N^2)$ memory instead of $O(N^3)$. The $N^3$ term itself is
    the algorithm's: every row has its own Sinkhorn potentials over its whole prefix, so no work is
    shared between rows.

    Args:
        log_alpha: ``[..., N, N]``.
        iters: Number of masked row + column normalisations.
        rows_per_step: Rows $p$ balanced together (memory ``rows_per_step * N^2``).

    Returns:
        ``[..., N, N]``, zero on and above the diagonal; rows sum to 1 except row 0,
        which is all zeros.

    Examples:
        >>> import torch
        >>> from implementations.sinkhorn_transformer import causal_sinkhorn
        >>> s = causal_sinkhorn(torch.randn(4, 4), iters=5)
        >>> bool((s.triu() == 0).all()), s.sum(-1).round(decimals=4).tolist()  # no past for 0
        (True, [0.0, 1.0, 1.0, 1.0])
    """
    n = log_alpha.shape[-1]
    size = n - 1
    device = log_alpha.device
    sub = log_alpha.float()[..., 1:, :-1]  # [..., size, size]
    idx = torch.arange(size, device=device)
    lower = idx[None, :] <= idx[:, None]  # [i, j]: block i + 1 may use block j
    sub = sub.masked_fill(~lower, -math.inf)
    if size == 0:  # a single block: no past to sort
        return torch.zeros_like(log_alpha, dtype=torch.float32)
    rows = []
    for start in range(0, size, rows_per_step):
        stop = min(start + rows_per_step, size)
        p = idx[start:stop]  # [P]: the rows balanced in this step
        # x[..., p, i, j]: the leading stop x stop sub-matrix as seen from row p.
        x = sub[..., None, :stop, :stop].expand(*sub.shape[:-2], stop - start, stop, stop)
        i = idx[:stop]
        known = i[None, :, None] <= p[:, None, None]  # [P, i, 1]: row i is known at p
        unused = i[None, None, :] > p[:, None, None]  # [P, 1, j]: no known row uses j
        counted = known | unused  # [P, i, j]: entries of the column sums
        for _ in range(iters):
            x = x - x.masked_fill(~counted, -math.inf).logsumexp(dim=-2, keepdim=True)
            x = x - x.logsumexp(dim=-1, keepdim=True)  # every row has its diagonal
        own = x[..., torch.arange(stop - start, device=device), p, :]  # [..., P, stop]
        rows.append(F.pad(own, (0, size - stop), value=-math.inf))  # [..., P, size]
    balanced = torch.cat(rows, dim=-2)  # [..., p, j] = x_p[p, j]
    return F.pad(balanced.exp(), (0, 1, 1, 0))  # [..., N, N]: back to block indices


def reference_causal_sinkhorn(log_alpha: Tensor, iters: int) -> Tensor:
    r"""The readable, fully vectorised form of
    [`causal_sinkhorn`][implementations.sinkhorn_transformer.causal_sinkhorn] (same result).

    Holds one copy of the ``(N-1) x (N-1)`` matrix per row $p$: $O(N^3)$ memory.

    Examples:
        >>> import torch
        >>> from implementations.sinkhorn_transformer import (
        ...     causal_sinkhorn,
        ...     reference_causal_sinkhorn,
        ... )
        >>> a = torch.randn(2, 6, 6)
        >>> torch.allclose(reference_causal_sinkhorn(a, 5), causal_sinkhorn(a, 5), atol=1e-6)
        True
    """
    n = log_alpha.shape[-1]
    size = n - 1
    device = log_alpha.device
    idx = torch.arange(size, device=device)
    lower = idx[None, :] <= idx[:, None]  # [i, j]: block i + 1 may use block j
    # x[..., p, i, j]: the sub-matrix as seen from row p (one copy per p).
    sub = log_alpha.float()[..., 1:, :-1]  # [..., size, size]
    x = sub[..., None, :, :].expand(*sub.shape[:-2], size, size, size)
    x = x.masked_fill(~lower, -math.inf)
    known = idx[None, :, None] <= idx[:, None, None]  # [p, i, 1]: row i is known at p
    unused = idx[None, None, :] > idx[:, None, None]  # [p, 1, j]: no known row uses j
    for _ in range(iters):
        cols = x.masked_fill(~(known | unused), -math.inf).logsumexp(dim=-2, keepdim=True)
        x = x - cols
        x = x - x.logsumexp(dim=-1, keepdim=True)  # every row has its diagonal
    rows = x.diagonal(dim1=-3, dim2=-2).transpose(-1, -2)  # [..., p, j] = x[..., p, p, j]
    return F.pad(rows.exp(), (0, 1, 1, 0))  # [..., N, N]: back to block indices


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    sort: Tensor,
    block_size: int,
    causal: bool = False,
    mask: Tensor | None = None,
    sortcut_blocks: int | None = None,
) -> Tensor:
    r"""Sinkhorn attention given the block sorting matrix (module docstring).

    The softmax over ``[sorted block; local block]`` runs in the fused kernel
    ([`softmax_attention`][implementations._helpers.softmax_attention]) with $\log(\text{share})$ as
    its additive bias;
    [`reference_attention`][implementations.sinkhorn_transformer.reference_attention] materialises
    the scores.

    Args:
        q: ``[b, h, n, d]`` with ``n`` a multiple of ``block_size``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        sort: ``[b, h, N_B, N_B]``, row ``i`` mixing the key blocks for query block ``i``.
        block_size: $b$.
        causal: Local block masked causally (``sort`` must be strictly lower-triangular).
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        sortcut_blocks: If set, every query attends to the first ``sortcut_blocks``
            sorted blocks only (SortCut).

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.sinkhorn_transformer import attention, sinkhorn
        >>> q = torch.randn(2, 4, 32, 8)
        >>> s = sinkhorn(torch.randn(2, 4, 4, 4), iters=5)
        >>> attention(q, q, q, s, block_size=8).shape
        torch.Size([2, 4, 32, 8])
    """
    b, h = q.shape[:2]
    q_blocks = chunk(q, block_size)  # [b, h, N_B, B, d]
    k_blocks = chunk(k, block_size)  # [b, h, N_B, B, d]
    v_blocks = chunk(v, block_size)  # [b, h, N_B, B, dv]
    real = None if mask is None else chunk(mask, block_size, dim=-1)[:, None]  # [b, 1, N_B, B]
    if real is not None:
        # Zero padded keys/values so their content cannot leak through the mixture.
        k_blocks = k_blocks.masked_fill(~real[..., None], 0)
        v_blocks = v_blocks.masked_fill(~real[..., None], 0)
    sort = sort.to(k.dtype)
    k_sorted = torch.einsum("bhij,bhjtd->bhitd", sort, k_blocks)  # psi_S(K): [b, h, N_B, B, d]
    v_sorted = torch.einsum("bhij,bhjtd->bhitd", sort, v_blocks)
    # Each sorted key's share of real tokens: its weight in the softmax (0 = masked).
    if real is None:
        share = sort.float().sum(-1, keepdim=True).expand(b, h, -1, block_size)  # [b, h, N_B, B]
    else:
        share = torch.einsum("bhij,bhjt->bhit", sort.float(), real.expand(b, h, -1, -1).float())
    log_share = share.clamp(min=1e-30).log()  # [b, h, N_B, B]

    if sortcut_blocks is not None:
        cut = min(sortcut_blocks, share.shape[2])
        keys = k_sorted[:, :, :cut].flatten(2, 3)  # [b, h, n_c * B, d]
        values = v_sorted[:, :, :cut].flatten(2, 3)
        cut_ok = (share[:, :, :cut] > 0).flatten(2, 3)[:, :, None, :]  # [b, h, 1, n_c * B]
        cut_bias = log_share[:, :, :cut].flatten(2, 3)[:, :, None, :]  # [b, h, 1, n_c * B]
        return softmax_attention(q, keys, values, cut_ok, bias=cut_bias)  # [b, h, n, dv]

    keys = torch.cat([k_sorted, k_blocks], dim=-2)  # [b, h, N_B, 2B, d]
    values = torch.cat([v_sorted, v_blocks], dim=-2)  # [b, h, N_B, 2B, dv]
    # log(share) scales a mixed key's exp-score by its real fraction; local keys get 0.
    bias = torch.cat([log_share, torch.zeros_like(log_share)], dim=-1)[..., None, :]
    # bias: [b, h, N_B, 1, 2B]
    allowed: Tensor | None = None
    # Meta tensors (FLOP counting) hold no values to test: take the general path.
    if real is not None or causal or share.is_meta or not bool((share > 0).all()):
        grid = (b, h, share.shape[2], block_size, block_size)  # [.., B (query), B (key)]
        local_ok = torch.ones((), dtype=torch.bool, device=q.device)
        if real is not None:
            local_ok = local_ok & real[..., None, :]  # [b, 1, N_B, 1, B]
        if causal:
            local_ok = local_ok & causal_mask(block_size, block_size, device=q.device)
        sorted_ok = (share > 0)[..., None, :]  # [b, h, N_B, 1, B]
        allowed = torch.cat([sorted_ok.expand(grid), local_ok.expand(grid)], dim=-1)
        # allowed: [b, h, N_B, B, 2B]
    out = softmax_attention(q_blocks, keys, values, allowed, bias=bias)  # [b, h, N_B, B, dv]
    return out.flatten(2, 3)  # [b, h, n, dv]


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    sort: Tensor,
    block_size: int,
    causal: bool = False,
    mask: Tensor | None = None,
    sortcut_blocks: int | None = None,
) -> Tensor:
    """The readable form of [`attention`][implementations.sinkhorn_transformer.attention]: scores
    and masks materialised (same result).

    Examples:
        >>> import torch
        >>> from implementations.sinkhorn_transformer import (
        ...     attention,
        ...     causal_sinkhorn,
        ...     reference_attention,
        ... )
        >>> q = torch.randn(2, 4, 32, 8)
        >>> s = causal_sinkhorn(torch.randn(2, 4, 4, 4), iters=5)
        >>> torch.allclose(reference_attention(q, q, q, s, block_size=8, causal=True),
        ...                attention(q, q, q, s, block_size=8, causal=True), atol=1e-6)
        True
    """
    b, h, n, d = q.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=q.device)
    real = chunk(mask, block_size, dim=-1)[:, None]  # [b, 1, N_B, B]
    # Zero padded keys/values so their content cannot leak through the mixture.
    k_blocks = chunk(k, block_size).masked_fill(~real[..., None], 0)  # [b, h, N_B, B, d]
    v_blocks = chunk(v, block_size).masked_fill(~real[..., None], 0)  # [b, h, N_B, B, dv]
    sort = sort.to(k.dtype)
    k_sorted = torch.einsum("bhij,bhjtd->bhitd", sort, k_blocks)  # psi_S(K): [b, h, N_B, B, d]
    v_sorted = torch.einsum("bhij,bhjtd->bhitd", sort, v_blocks)
    # Each sorted key's share of real tokens: its weight in the softmax (0 = masked).
    share = torch.einsum("bhij,bhjt->bhit", sort.float(), real.expand(b, h, -1, -1).float())

    if sortcut_blocks is not None:
        cut = min(sortcut_blocks, share.shape[2])
        keys = k_sorted[:, :, :cut].flatten(2, 3)  # [b, h, n_c * B, d]
        values = v_sorted[:, :, :cut].flatten(2, 3)
        share = share[:, :, :cut].flatten(2, 3)[:, :, None, :]  # [b, h, 1, n_c * B]
        scores = torch.einsum("bhid,bhjd->bhij", q, keys).float() / math.sqrt(d)
        allowed = share > 0
        scores = scores + share.clamp(min=1e-30).log()
        return torch.einsum("bhij,bhjd->bhid", masked_softmax(scores, allowed).to(v.dtype), values)

    q_blocks = chunk(q, block_size)  # [b, h, N_B, B, d]
    keys = torch.cat([k_sorted, k_blocks], dim=-2)  # [b, h, N_B, 2B, d]
    values = torch.cat([v_sorted, v_blocks], dim=-2)  # [b, h, N_B, 2B, dv]
    grid = (b, h, share.shape[2], block_size, block_size)  # [b, h, N_B, B (query), B (key)]
    sorted_ok = (share > 0)[..., None, :].expand(grid)
    local_ok = real[..., None, :].expand(grid)
    if causal:
        local_ok = local_ok & causal_mask(block_size, block_size, device=q.device)
    allowed = torch.cat([sorted_ok, local_ok], dim=-1)  # [b, h, N_B, B, 2B]
    # log(share) scales a mixed key's exp-score by its real fraction; local keys get 0.
    bias = torch.cat([share.clamp(min=1e-30).log(), torch.zeros_like(share)], dim=-1)
    scores = torch.einsum("bhnid,bhnjd->bhnij", q_blocks, keys).float() / math.sqrt(d)
    scores = scores + bias[..., None, :]  # [b, h, N_B, B, 2B]
    out = torch.einsum("bhnij,bhnjd->bhnid", masked_softmax(scores, allowed).to(v.dtype), values)
    return out.flatten(2, 3)  # [b, h, n, dv]


@register("sinkhorn-transformer", kind="attention", supports_causal=True)
class SinkhornTransformer(nn.Module):
    r"""Multi-head Sparse Sinkhorn Attention with a learned block sorting network.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads (each head has its own sorting matrix).
        causal: Causal Sinkhorn balancing and causal local blocks.
        block_size: $b$, tokens per block.
        max_blocks: Output width of the sorting network, the most blocks supported.
        sinkhorn_iters: $k$, Sinkhorn iterations.
        temperature: $\tau$.
        sortcut_blocks: $n_c$ for SortCut (non-causal only), or None.
        gumbel_noise: Add Gumbel noise to the sorting scores in training mode.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("sinkhorn-transformer", dim=32, heads=4,
        ...                               causal=True, block_size=8)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "temperature": (0.0, math.inf, "(]"),
        "sinkhorn_iters": (1, 10_000),
    }

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        block_size: int = 64,
        max_blocks: int = 64,
        sinkhorn_iters: int = 5,
        temperature: float = 0.75,
        sortcut_blocks: int | None = None,
        gumbel_noise: bool = False,
    ) -> None:
        super().__init__()
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be >= 1, got {max_blocks}")
        if sinkhorn_iters < 1:
            raise ValueError(f"sinkhorn_iters must be >= 1, got {sinkhorn_iters}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if sortcut_blocks is not None and (causal or sortcut_blocks < 1):
            raise ValueError(
                f"sortcut_blocks must be None or >= 1 and needs causal=False, got "
                f"{sortcut_blocks} with causal={causal}"
            )
        self.heads, self.causal = heads, causal
        self.block_size, self.max_blocks = block_size, max_blocks
        self.sinkhorn_iters, self.temperature = sinkhorn_iters, temperature
        self.sortcut_blocks, self.gumbel_noise = sortcut_blocks, gumbel_noise
        self.proj = HeadProjections(dim, heads)
        # P(X') = ReLU(W_B ReLU(W_P X' + b_P) + b_B): one row of N_B scores per head.
        self.sort_net = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, heads * max_blocks), nn.ReLU()
        )

    def block_summaries(self, x: Tensor, mask: Tensor | None, size: int) -> Tensor:
        """$X'$ ``[b, N_B, dim]``: block sums, or (causal) the mean up to each block's start."""
        x = zero_padding(x, mask).float()
        if not self.causal:
            return chunk(x, size).sum(dim=2)
        seen = x.cumsum(dim=1)[:, ::size]  # [b, N_B, dim]: tokens up to each first token
        if mask is None:  # every token is real: token t has t + 1 tokens up to it
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        count = mask.cumsum(dim=1)[:, ::size, None].clamp(min=1)
        return seen / count

    def sorting_matrix(self, summaries: Tensor) -> Tensor:
        r"""$\mathbf{S}$ ``[b, h, N_B, N_B]`` from the block summaries ``[b, N_B, dim]``."""
        n_blocks = summaries.shape[1]
        dtype = next(self.sort_net.parameters()).dtype
        scores = self.sort_net(summaries.to(dtype))  # [b, N_B, h * max]
        scores = scores.unflatten(-1, (self.heads, self.max_blocks)).transpose(1, 2)
        scores = scores[..., :n_blocks].float()  # [b, h, N_B, N_B]: R
        if self.gumbel_noise and self.training:
            uniform = torch.rand_like(scores).clamp(1e-9, 1 - 1e-9)
            scores = scores - (-uniform.log()).log()  # + Gumbel(0, 1) noise
        balance = causal_sinkhorn if self.causal else sinkhorn
        return balance(scores / self.temperature, self.sinkhorn_iters)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        n = x.shape[1]
        size = min(self.block_size, n)
        n_blocks = -(-n // size)
        if n_blocks > self.max_blocks:
            raise ValueError(
                f"{n} tokens need {n_blocks} blocks of {size}, more than max_blocks="
                f"{self.max_blocks}; raise max_blocks or block_size"
            )
        if mask is not None or n % size:  # None: no padding, nothing to mask
            mask = default_mask(mask, x)
            mask, _ = pad_to_multiple(mask, size, dim=-1, value=False)
        x, _ = pad_to_multiple(x, size)
        q, k, v = self.proj.qkv(x)  # [b, h, N, d]
        sort = self.sorting_matrix(self.block_summaries(x, mask, size))
        o = attention(q, k, v, sort, size, self.causal, mask, self.sortcut_blocks)
        return self.proj.out(o[:, :, :n])
