r"""Reformer: locality-sensitive-hashing (LSH) attention with shared queries and keys.

Paper: *Reformer: The Efficient Transformer*, Kitaev, Kaiser and Levskaya, ICLR 2020
(arXiv:2001.04451).

The softmax is dominated by its largest terms, so each query only needs the keys
closest to it. Reformer finds them by hashing.

**Shared-QK.** Queries and keys come from one projection; keys are the unit-normalised
queries, $k_j = q_j / \lVert q_j \rVert$, so similar tokens hash to the same bucket as
both query and key.

**Angular LSH.** With a random rotation $R \in \mathbb{R}^{d_k \times b/2}$ (a fresh
Gaussian matrix per head and hashing round, drawn from torch's RNG at every forward as
in the paper), a vector is hashed to one of $b$ buckets by the signed axis it is closest
to after rotation:

$$
h(x) = \arg\max\big([\,xR \,;\, -xR\,]\big) .
$$

**Sort and chunk.** Tokens are sorted by (bucket, position) and cut into chunks of
$m$ consecutive sorted tokens (``bucket_size``). As in the paper (Section 2,
$m = 2l / n_{buckets}$ for length $l$) and the authors' configurations, the number of
buckets defaults to $2n / m$, so a bucket holds $m / 2$ tokens on average and a chunk
about two buckets. A query attends to the keys of its own bucket within its
chunk and the previous one, so the score tensor is $n \times 2m$, never $n \times n$:

$$
\mathcal{P}_i = \{\, j : h(q_i) = h(k_j),\;
    \lfloor s_j / m \rfloor \in \{\lfloor s_i / m \rfloor - 1, \lfloor s_i / m \rfloor\} \,\},
$$

where $s_i$ is the sorted index of token $i$. A token never attends to itself (with
shared QK, $q_i \cdot k_i$ would dominate) unless it has no other target.

**Multi-round hashing.** Similar items can still fall into different buckets, so
``n_hashes`` independent hashes $h^{(1)}, \dots, h^{(r)}$ are used. Each round $r$
gives an output $o_i^{(r)}$ and the log-normaliser $z_i^{(r)} =
\log \sum_{j \in \mathcal{P}_i^{(r)}} \exp(q_i \cdot k_j / \sqrt{d})$; the rounds are
combined as one softmax over their union:

$$
o_i = \sum_r \frac{\exp(z_i^{(r)})}{\sum_{r'} \exp(z_i^{(r')})}\, o_i^{(r)} .
$$

(A key found in several rounds is counted once per round; the paper's optional
de-duplication is not applied.)

**Causal masking.** Keys after the query's position are masked. Fixed chunk boundaries
in sorted order would depend on how many *future* tokens hash into earlier buckets, so
with ``causal=True`` a query instead sees the keys of its bucket among the $m$ sorted
positions before it (a sliding window in sorted order, inside the same
$2m$-key neighbourhood). Within one bucket the sorted order is the positional order,
so that window holds the $m$ most recent earlier tokens of the bucket: it depends on
the past only, and the layer decodes autoregressively.

Hyper-parameters: ``bucket_size`` ($m$, the paper recommends 64), ``n_hashes`` (rounds;
the paper finds 8 close to full attention and 4 a good trade-off), ``n_buckets``
(default $2n / m$ rounded up to an even number, at least 2; 1 puts every token in one
bucket). Cost: $O(r\, n\, m)$ time and memory per head, plus the sort.

**Where the time goes**: the time is spread over memory-bound passes on the ``[b, h, r, n, 2m]``
scores and masks, the sorting gathers and the look-around copies (n = 8192, causal,
before: gathers 15 %, score products 15 %, look-around 11 %, the exponential 9 %, mask
logic about 15 %). [`attention`][implementations.reformer.attention] combines the rounds from
unnormalised sums (one exponential per score instead of a log-sum-exp, a second exponential and a
re-masking), builds the "not itself" / causal-window masks from fixed ``[m, 2m]`` patterns of sorted
indices, skips the all-True padding mask, normalises and scales once per position
before the row-copying gathers: 1.6x faster than the per-round form
([`reference_attention`][implementations.reformer.reference_attention], the previous code) forward
and forward+backward. The fused kernels cannot be used: combining the rounds needs each round's
normaliser $z^{(r)}$ with its gradient, which the public kernel does not return. Measured (CPU,
two threads, float32, dim 512, 8 heads, 64 buckets of 64, 4 rounds; the shipped benchmark)
against exact attention: bidirectional 0.63x forward and 0.41x forward+backward at
n = 8192; causal 0.98x and 0.78x, and 0.68x forward at 16384. A causal forward at 8192
(``torch.profiler``, one thread, 1.15 s) spends 0.23 s in the sorting gathers, 0.23 s in the
two score products, 0.16 s concatenating each chunk with the one before it, 0.07 s in the
exponential and 0.15 s in the projections: 0.15x exact attention's FLOPs, against a fused
causal kernel at 240 GFLOP/s that also skips the upper half of the pairs, while this layer
scores all $2m$ keys of a chunk and its predecessor per query and round. So the causal
forward only just beats exact attention at 8192 (1.33x at 4096): a fused LSH kernel, not a
change of this algorithm, is what would widen the gap.

Without autograd the scores are masked, shifted and exponentiated in place: one
``[b, h, r, n, 2m]`` tensor instead of three took the forward's peak from 464 to 400 MiB at
n = 4096, 0.96x reformer-pytorch's (was 1.11x). Under autograd the same steps run out of
place: in place on the einsum's output, a view, they made the backward copy the tensor back
(forward+backward 0.42x exact attention at 8192 became 0.51x).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    chunk,
    default_mask,
    gather_positions,
    look_around,
    merge_heads,
    pad_to_multiple,
    split_heads,
)
from implementations._registry import register

__all__ = ["Reformer", "attention", "hash_buckets", "reference_attention"]


def hash_buckets(x: Tensor, rotations: Tensor) -> Tensor:
    r"""Angular LSH $h(x) = \arg\max [xR; -xR]$ for every round.

    Args:
        x: ``[b, h, n, d]``.
        rotations: ``[h, d, rounds, n_buckets // 2]`` random Gaussian matrices; a last
            dimension of 0 means a single bucket.

    Returns:
        ``[b, h, rounds, n]`` bucket ids in ``[0, n_buckets)``.

    Examples:
        >>> import torch
        >>> from implementations.reformer import hash_buckets
        >>> x = torch.randn(2, 3, 5, 4)
        >>> b = hash_buckets(x, torch.randn(3, 4, 2, 4))  # 2 rounds, 8 buckets
        >>> b.shape, bool((b >= 0).all() and (b < 8).all())
        (torch.Size([2, 3, 2, 5]), True)
    """
    heads, _, rounds, half = rotations.shape
    if half == 0:
        return x.new_zeros(x.shape[0], heads, rounds, x.shape[2], dtype=torch.long)
    rotated = torch.einsum("bhnd,hdrk->bhrnk", x.float(), rotations.float())  # [b, h, r, n, b/2]
    return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)


def _rotations(qk: Tensor, n_buckets: int, n_hashes: int, rotations: Tensor | None) -> Tensor:
    """Check ``n_buckets`` and ``rotations``; draw ``[h, d, n_hashes, n_buckets // 2]`` if None.

    Examples:
        >>> import torch
        >>> from implementations.reformer import _rotations
        >>> _rotations(torch.zeros(2, 3, 5, 4), n_buckets=8, n_hashes=2, rotations=None).shape
        torch.Size([3, 4, 2, 4])
    """
    _, h, _, d = qk.shape
    if n_buckets != 1 and (n_buckets < 2 or n_buckets % 2):
        raise ValueError(f"n_buckets must be 1 or an even number >= 2, got {n_buckets}")
    if rotations is None:
        rotations = torch.randn(h, d, n_hashes, n_buckets // 2, device=qk.device)
    if rotations.shape[-1] != n_buckets // 2:
        raise ValueError(f"rotations must end in n_buckets // 2 = {n_buckets // 2} columns")
    return rotations


def _sort_by_bucket(
    qk: Tensor, rotations: Tensor, n_buckets: int, mask: Tensor | None
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """Hash every round and sort the positions by (bucket, position).

    Padding (``mask`` False) goes to an extra last bucket ``n_buckets``, so it never
    shifts real tokens' chunks.

    Args:
        qk: ``[b, h, N, d]`` (``N`` padded to a multiple of the chunk length).
        rotations: ``[h, d, rounds, n_buckets // 2]``.
        n_buckets: Buckets per round.
        mask: Bool ``[b, N]``, True = real token, or None (all real).

    Returns:
        ``(buckets, real, order, undo)``, each ``[b, h, r, N]``: the bucket ids, ``mask``
        expanded (None without one), ``order[s]`` the position of sorted index ``s``, and
        ``undo`` the sorted index of each position.

    Examples:
        >>> import torch
        >>> from implementations.reformer import _sort_by_bucket
        >>> qk = torch.randn(1, 2, 6, 4)
        >>> buckets, real, order, undo = _sort_by_bucket(qk, torch.randn(2, 4, 3, 2), 4, None)
        >>> bool((buckets.gather(-1, order).diff(dim=-1) >= 0).all()), real
        (True, None)
    """
    length = qk.shape[-2]
    positions = torch.arange(length, device=qk.device)
    buckets = hash_buckets(qk, rotations)  # [b, h, r, N]
    real = None
    if mask is not None:
        real = mask[:, None, None, :].expand_as(buckets)  # [b, h, r, N]
        buckets = buckets.masked_fill(~real, n_buckets)
    # Sort by (bucket, position); `order[s]` is the position of sorted index s.
    order = (buckets * length + positions).argsort(dim=-1)  # [b, h, r, N]
    undo = order.argsort(dim=-1)  # sorted index of each position
    return buckets, real, order, undo


def _look_back(t: Tensor, m: int, value: float = 0) -> Tensor:
    """Chunks of ``m`` sorted rows, each with the previous chunk: ``[.., N, e] -> [.., C, 2m, e]``.

    Metadata gets a trailing axis first so that it is treated like ``[.., m, 1]`` rows;
    the first chunk's missing predecessor is filled with ``value``.

    Examples:
        >>> import torch
        >>> from implementations.reformer import _look_back
        >>> _look_back(torch.arange(4.0)[:, None], 2, value=-1)[..., 0]
        tensor([[-1., -1.,  0.,  1.],
                [ 0.,  1.,  2.,  3.]])
    """
    return look_around(chunk(t, m), before=1, value=value)  # [.., C, 2m, e]


def _sorted_chunks(
    q_sorted: Tensor, k_sorted: Tensor, v_sorted: Tensor, bucket_sorted: Tensor, m: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Chunk the sorted queries; give each chunk its own and the previous chunk's keys.

    Args:
        q_sorted: ``[b, h, r, N, d]``.
        k_sorted: ``[b, h, r, N, d]``.
        v_sorted: ``[b, h, r, N, dv]``.
        bucket_sorted: ``[b, h, r, N]``.
        m: Chunk length.

    Returns:
        ``(q_c, k_c, v_c, q_bucket, k_bucket)``: ``[b, h, r, C, m, d]``,
        ``[b, h, r, C, 2m, d]``, ``[b, h, r, C, 2m, dv]``, ``[b, h, r, C, m, 1]`` and
        ``[b, h, r, C, 1, 2m]`` (compare the buckets to get ``[.., C, m, 2m]``).

    Examples:
        >>> import torch
        >>> from implementations.reformer import _sorted_chunks
        >>> x, ids = torch.randn(1, 2, 3, 8, 4), torch.zeros(1, 2, 3, 8, dtype=torch.long)
        >>> [tuple(t.shape) for t in _sorted_chunks(x, x, x, ids, 4)][::2]
        [(1, 2, 3, 2, 4, 4), (1, 2, 3, 2, 8, 4), (1, 2, 3, 2, 1, 8)]
    """
    q_c = chunk(q_sorted, m)  # [b, h, r, C, m, d]
    k_c, v_c = _look_back(k_sorted, m), _look_back(v_sorted, m)  # [b, h, r, C, 2m, d]
    q_bucket = chunk(bucket_sorted, m, dim=-1)[..., :, None]  # [b, h, r, C, m, 1]
    k_bucket = _look_back(bucket_sorted[..., None], m)[..., None, :, 0]  # [b, h, r, C, 1, 2m]
    return q_c, k_c, v_c, q_bucket, k_bucket


def _lonely(allowed: Tensor, order: Tensor, undo: Tensor) -> Tensor:
    """Which sorted queries have no allowed key in any round: ``[b, h, r, C, m]``, sorted order.

    Args:
        allowed: Bool ``[b, h, r, C, m, 2m]``.
        order: ``[b, h, r, N]``, the position of each sorted index.
        undo: ``[b, h, r, N]``, the sorted index of each position.

    Examples:
        >>> import torch
        >>> from implementations.reformer import _lonely
        >>> allowed = torch.zeros(1, 1, 1, 2, 2, 4, dtype=torch.bool)
        >>> allowed[..., 0, 0, 3] = True  # sorted index 0 has a key
        >>> order = torch.arange(4).view(1, 1, 1, 4)
        >>> _lonely(allowed, order, order).flatten()
        tensor([False,  True,  True,  True])
    """
    m = allowed.shape[-2]
    has_other = allowed.any(dim=-1).flatten(-2, -1)  # [b, h, r, N] in sorted order
    lonely = ~has_other.gather(-1, undo).any(dim=2, keepdim=True)  # [b, h, 1, N]
    return chunk(lonely.expand_as(order).gather(-1, order), m, dim=-1)  # [b, h, r, C, m]


def attention(
    qk: Tensor,
    v: Tensor,
    n_buckets: int,
    bucket_size: int,
    n_hashes: int = 1,
    causal: bool = False,
    mask: Tensor | None = None,
    rotations: Tensor | None = None,
) -> Tensor:
    r"""Multi-round LSH attention with shared queries and keys (module docstring).

    The rounds are combined without per-round normalisers: with $c_i$ the largest
    score of query $i$ over all rounds,

    $$
    o_i = \sum_r \frac{e^{z_i^{(r)}}}{\sum_{r'} e^{z_i^{(r')}}}\, o_i^{(r)}
        = \frac{\sum_r \sum_{j \in \mathcal{P}_i^{(r)}} e^{s_{ij} - c_i}\, v_j}
               {\sum_r \sum_{j \in \mathcal{P}_i^{(r)}} e^{s_{ij} - c_i}},
    $$

    one exponential per score instead of a log-sum-exp, a softmax and a second
    exponential. [`reference_attention`][implementations.reformer.reference_attention] is the
    per-round form.

    Args:
        qk: Shared queries/keys ``[b, h, n, d]`` (keys are normalised here).
        v: Values ``[b, h, n, dv]``.
        n_buckets: Buckets per round: 1, or an even number.
        bucket_size: Chunk length $m$ (clipped to ``n``).
        n_hashes: Hashing rounds (when ``rotations`` is None).
        causal: Mask keys after the query (with the sorted sliding window).
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        rotations: ``[h, d, rounds, n_buckets // 2]``; drawn from torch's RNG if None.

    Returns:
        ``[b, h, n, dv]`` in ``v``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations.reformer import attention
        >>> qk, v = torch.randn(2, 4, 50, 8), torch.randn(2, 4, 50, 8)
        >>> attention(qk, v, n_buckets=4, bucket_size=16, n_hashes=2, causal=True).shape
        torch.Size([2, 4, 50, 8])
    """
    b, _, n, d = qk.shape
    rotations = _rotations(qk, n_buckets, n_hashes, rotations)
    m = min(bucket_size, n)
    if mask is None and n % m:
        mask = torch.ones(b, n, dtype=torch.bool, device=qk.device)  # the alignment padding
    qk, _ = pad_to_multiple(qk, m)
    v, _ = pad_to_multiple(v, m)
    if mask is not None:
        mask, _ = pad_to_multiple(mask, m, dim=-1, value=False)
    buckets, real, order, undo = _sort_by_bucket(qk, rotations, n_buckets, mask)

    # Scale and normalise once per position, then gather for every round: queries carry
    # the 1 / sqrt(d) of the scores, keys are k_j = q_j / |q_j|.
    qk32 = qk.float()
    q_sorted = gather_positions((qk32 / math.sqrt(d))[:, :, None], order)  # [b, h, r, N, d]
    k_sorted = gather_positions(F.normalize(qk32, dim=-1)[:, :, None], order)
    v_sorted = gather_positions(v[:, :, None], order).float()  # [b, h, r, N, dv]
    bucket_sorted = buckets.gather(-1, order)  # [b, h, r, N]

    # Chunks of m sorted tokens; each sees its own chunk and the previous one (2m keys).
    q_c, k_c, v_c, q_bucket, k_bucket = _sorted_chunks(
        q_sorted, k_sorted, v_sorted, bucket_sorted, m
    )
    # Window column j of chunk C holds sorted index (C - 1) m + j, query row i sorted index
    # C m + i, so "not itself" and the causal window are fixed [m, 2m] patterns: within
    # a bucket the sorted order is the positional order.
    row = torch.arange(m, device=qk.device)[:, None]
    col = torch.arange(2 * m, device=qk.device)[None, :]
    # Causal: sorted index in [C m + i - m, C m + i), the m latest earlier bucket-mates;
    # otherwise any column but the query itself.
    pattern = (col >= row) & (col < m + row) if causal else col != m + row  # [m, 2m]
    # The first chunk's window starts with m missing keys.
    missing = torch.zeros(qk.shape[-2] // m, 1, 2 * m, dtype=torch.bool, device=qk.device)
    missing[0, :, :m] = True
    allowed = (k_bucket == q_bucket) & (pattern & ~missing)  # [b, h, r, C, m, 2m]
    if real is not None:
        k_real = look_around(chunk(real.gather(-1, order), m, dim=-1), before=1, value=False)
        allowed = allowed & k_real[..., None, :]  # [b, h, r, C, 1, 2m]

    # Self-attention only for a token with no other target in any round.
    lonely_sorted = _lonely(allowed, order, undo)  # [b, h, r, C, m]
    # The query itself sits in window column m + i: the diagonal at offset m.
    allowed.diagonal(offset=m, dim1=-2, dim2=-1).logical_or_(lonely_sorted)

    scores = torch.einsum("...id,...jd->...ij", q_c, k_c)  # s_ij: [b, h, r, C, m, 2m]
    # Without autograd, in place from here to the exponential: each copy of this, the
    # largest tensor, was 14% of the forward's peak. Under autograd, out of place: in-place
    # ops on the einsum's output (a view) make the backward copy it back at every step.
    in_place = not (torch.is_grad_enabled() and scores.requires_grad)
    fill = scores.masked_fill_ if in_place else scores.masked_fill
    scores = fill(~allowed, -math.inf)
    # c_i: the query's largest score over all rounds (finite: a lonely query sees itself).
    top = scores.detach().amax(dim=-1).flatten(-2, -1)  # [b, h, r, N] in sorted order
    top = top.gather(-1, undo).amax(dim=2, keepdim=True)  # [b, h, 1, N] in positional order
    top_sorted = chunk(top.expand_as(order).gather(-1, order), m, dim=-1)  # [.., C, m]
    shift = top_sorted[..., None]
    # e^{s_ij - c_i}, 0 where masked
    weights = scores.sub_(shift).exp_() if in_place else (scores - shift).exp()
    numerator = torch.einsum("...ij,...jd->...id", weights, v_c)  # [b, h, r, C, m, dv]
    denominator = weights.sum(dim=-1)  # [b, h, r, C, m]

    # Back to positional order; sum numerators and denominators over the rounds.
    numerator = gather_positions(numerator.flatten(-3, -2), undo).sum(dim=2)  # [b, h, N, dv]
    denominator = denominator.flatten(-2, -1).gather(-1, undo).sum(dim=2)  # [b, h, N]
    out = numerator / denominator[..., None]
    return out[:, :, :n].to(v.dtype)


def reference_attention(
    qk: Tensor,
    v: Tensor,
    n_buckets: int,
    bucket_size: int,
    n_hashes: int = 1,
    causal: bool = False,
    mask: Tensor | None = None,
    rotations: Tensor | None = None,
) -> Tensor:
    """The readable form of [`attention`][implementations.reformer.attention]: per-round softmax and
    log-normaliser $z^{(r)}$.

    Same arguments and result (up to float32 round-off) as
    [`attention`][implementations.reformer.attention].

    Examples:
        >>> import torch
        >>> from implementations.reformer import attention, reference_attention
        >>> qk, v = torch.randn(2, 4, 50, 8), torch.randn(2, 4, 50, 8)
        >>> rot = torch.randn(4, 8, 2, 2)
        >>> # The fast form sums unnormalised exponentials over rounds; where a round scores
        >>> # far below the best one its terms are tiny, and the forms agree to ~1e-4.
        >>> torch.allclose(reference_attention(qk, v, 4, 16, causal=True, rotations=rot),
        ...                attention(qk, v, 4, 16, causal=True, rotations=rot), atol=1e-3)
        True
    """
    b, _, n, d = qk.shape
    rotations = _rotations(qk, n_buckets, n_hashes, rotations)
    m = min(bucket_size, n)
    mask = torch.ones(b, n, dtype=torch.bool, device=qk.device) if mask is None else mask
    qk, _ = pad_to_multiple(qk, m)
    v, _ = pad_to_multiple(v, m)
    mask, _ = pad_to_multiple(mask, m, dim=-1, value=False)
    positions = torch.arange(qk.shape[-2], device=qk.device)
    buckets, real, order, undo = _sort_by_bucket(qk, rotations, n_buckets, mask)
    assert real is not None  # a mask was given

    q_sorted = gather_positions(qk[:, :, None], order).float()  # [b, h, r, N, d]
    v_sorted = gather_positions(v[:, :, None], order).float()  # [b, h, r, N, dv]
    k_sorted = F.normalize(q_sorted, dim=-1)  # k_j = q_j / |q_j|
    bucket_sorted = buckets.gather(-1, order)  # [b, h, r, N]
    real_sorted = real.gather(-1, order)  # [b, h, r, N]

    # Chunks of m sorted tokens; each sees its own chunk and the previous one (2m keys).
    q_c, k_c, v_c, q_bucket, k_bucket = _sorted_chunks(
        q_sorted, k_sorted, v_sorted, bucket_sorted, m
    )
    q_pos = chunk(order, m, dim=-1)[..., :, None]  # [b, h, r, C, m, 1]
    # Missing keys before the first chunk get position -1: never "self", never real.
    k_pos = _look_back(order[..., None], m, value=-1)[..., None, :, 0]  # [b, h, r, C, 1, 2m]
    k_real = look_around(chunk(real_sorted, m, dim=-1), before=1, value=False)
    k_real = k_real[..., None, :]  # [b, h, r, C, 1, 2m]

    allowed = k_real & (k_bucket == q_bucket) & (k_pos != q_pos)  # [b, h, r, C, m, 2m]
    if causal:
        q_idx = chunk(positions, m, dim=-1)[:, :, None]  # [C, m, 1] sorted indices
        k_idx = look_around(chunk(positions[:, None], m), before=1)[:, None, :, 0]  # [C, 1, 2m]
        # Same bucket + sorted index at most m back: the m latest earlier bucket-mates.
        allowed = allowed & (k_pos <= q_pos) & (q_idx - k_idx <= m)

    # Self-attention only for a token with no other target in any round.
    lonely_sorted = _lonely(allowed, order, undo)  # [b, h, r, C, m]
    allowed = allowed | ((k_pos == q_pos) & lonely_sorted[..., None])

    scores = torch.einsum("...id,...jd->...ij", q_c, k_c) / math.sqrt(d)  # [.., C, m, 2m]
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    # z^(r) = log sum_j exp(score) per round, and that round's softmax output.
    lse = scores.logsumexp(dim=-1, keepdim=True)  # [b, h, r, C, m, 1]
    probs = (scores - lse).exp().masked_fill(~allowed, 0)
    out = torch.einsum("...ij,...jd->...id", probs, v_c)  # [b, h, r, C, m, dv]
    # A round where the query found no key must get no weight.
    lse = lse.masked_fill(~allowed.any(dim=-1, keepdim=True), -math.inf)

    # Back to positional order, then combine the rounds by their normalisers.
    out = gather_positions(out.flatten(-3, -2), undo)  # [b, h, r, N, dv]
    lse = lse.flatten(-3, -1).gather(-1, undo)  # [b, h, r, N]
    weights = lse.softmax(dim=2)  # [b, h, r, N]
    out = (weights[..., None] * out).sum(dim=2)  # [b, h, N, dv]
    return out[:, :, :n].to(v.dtype)


@register("reformer", kind="attention", supports_causal=True)
class Reformer(nn.Module):
    """Multi-head LSH attention (shared-QK, multi-round) as in the Reformer.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads $h$.
        causal: Mask the future (the paper's language and image models).
        bucket_size: Chunk length $m$; twice the average bucket size by default.
        n_hashes: Number of hashing rounds.
        n_buckets: Buckets per round; None for the paper's $2n / m$ (made even, at
            least 2), so that $m = 2n / n_{buckets}$.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("reformer", dim=32, heads=4, causal=True,
        ...                               bucket_size=8, n_hashes=2)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        bucket_size: int = 64,
        n_hashes: int = 4,
        n_buckets: int | None = None,
    ) -> None:
        super().__init__()
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be >= 1, got {bucket_size}")
        if n_hashes < 1:
            raise ValueError(f"n_hashes must be >= 1, got {n_hashes}")
        if n_buckets is not None and n_buckets != 1 and (n_buckets < 2 or n_buckets % 2):
            raise ValueError(f"n_buckets must be None, 1 or an even number, got {n_buckets}")
        self.heads, self.causal = heads, causal
        self.bucket_size, self.n_hashes, self.n_buckets = bucket_size, n_hashes, n_buckets
        # One projection for queries and keys (shared-QK), one for values.
        self.to_qk = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def buckets_for(self, n: int) -> int:
        r"""Buckets per round for length ``n``: the option, or $2n / m$ made even (>= 2).

        The paper's chunk length is $m = 2n / n_{buckets}$: a chunk holds two buckets'
        worth of tokens on average.

        Examples:
            >>> import implementations
            >>> layer = implementations.build("reformer", dim=8, heads=1, bucket_size=64)
            >>> layer.buckets_for(4096), 2 * 4096 // layer.buckets_for(4096)
            (128, 64)
        """
        if self.n_buckets is not None:
            return self.n_buckets
        buckets = -(-2 * n // min(self.bucket_size, n))  # ceil(2n / m)
        return max(2, buckets + buckets % 2)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        if mask is not None:
            mask = default_mask(mask, x)  # validates it; None means no padding
        qk = split_heads(self.to_qk(x), self.heads)  # [b, h, n, d]
        v = split_heads(self.to_v(x), self.heads)  # [b, h, n, d]
        o = attention(
            qk,
            v,
            n_buckets=self.buckets_for(x.shape[1]),
            bucket_size=self.bucket_size,
            n_hashes=self.n_hashes,
            causal=self.causal,
            mask=mask,
        )
        return self.to_out(merge_heads(o))
