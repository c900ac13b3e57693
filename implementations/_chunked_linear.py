r"""Chunkwise-parallel linear recurrences with a matrix-valued state: gated and delta-rule.

Shared by the gated linear recurrences (Gated Linear Attention, RetNet) and the delta-rule
fast weight programmers (DeltaNet, Schlag et al.'s fast weight programmers). Each has a
recurrent form that carries a ``[dk, dv]`` state $S$ from step to step, and a
**chunkwise** form that trains in parallel: the sequence is cut into chunks of ``c``
positions; inside a chunk an explicit ``[c, c]`` (masked, quadratic) product, across chunks
the state, carried by a Python loop over the $n / c$ chunks (never over the $n$
positions). Time $O(n c d + n d^2)$, memory $O(n d + (n / c) d^2)$, and no ``[n, n]``
tensor.

**Gated (diagonal decay).** With per-step, per-key-channel gates
$\alpha_t \in (0, 1]^{d_k}$ ($\log \alpha_t$ is ``log_alpha``),

$$
S_t = \mathrm{diag}(\alpha_t)\, S_{t-1} + k_t v_t^\top, \qquad o_t = S_t^\top q_t,
\qquad\text{i.e.}\qquad
o_t = \sum_{j \le t} \Big(q_t \odot \prod_{s = j + 1}^{t} \alpha_s\Big)^{\!\top} k_j\, v_j .
$$

A scalar gate (RetNet's $\gamma$) is the case of equal channels. Inside a chunk the
factorised form $(q_i \odot e^{b_i})^\top (k_j \odot e^{-b_j})$ with $b$ the cumulative log
gate would overflow for strong gates, so a **second level of chunking** is used (as the
paper's "secondary-level chunking"): sub-chunks of ``s`` positions. Between sub-chunks the
factors are taken relative to the start of the query's sub-chunk, so every exponent is
$\le 0$; inside a sub-chunk the ``[s, s, dk]`` tensor of pairwise decays is formed
directly. See [`gated_chunkwise`][implementations._chunked_linear.gated_chunkwise].

**Delta rule.** With a per-step learning rate $\beta_t \in [0, 1]$,

$$
S_t = S_{t-1} + k_t\, u_t^\top, \qquad u_t = \beta_t \big(v_t - S_{t-1}^\top k_t\big),
\qquad o_t = S_t^\top q_t ,
$$

$S_t = (I - \beta_t k_t k_t^\top) S_{t-1} + \beta_t k_t v_t^\top$: a generalised Householder
transition. Yang et al. (2024) parallelise it over a chunk through the WY representation of
the product of Householder matrices: with $S_0$ the state at the chunk's start, the
"pseudo-values" $U = (u_t)$ solve the unit lower-triangular system

$$
\big(I + \mathrm{tril}(\mathrm{diag}(\beta) K K^\top, -1)\big)\, U
  = \mathrm{diag}(\beta)\,(V - K S_0),
$$

so with the UT transform $T = (I + \mathrm{tril}(\mathrm{diag}(\beta) K K^\top, -1))^{-1}
\mathrm{diag}(\beta)$, $W = T K$ and $\tilde U = T V$ (both computed for all chunks at once,
before the scan), $U = \tilde U - W S_0$, and

$$
O = Q S_0 + \big(Q K^\top \odot M\big)\, U, \qquad S_c = S_0 + K^\top U ,
$$

$M$ the causal mask (diagonal included). See
[`delta_chunkwise`][implementations._chunked_linear.delta_chunkwise].

**Non-causal forms** ([`bidirectional`][implementations._chunked_linear.bidirectional]):
the recurrence run forward (each position included) plus the recurrence run backward over
the reversed sequence, each position excluded there, so every key is counted once; for
gates, the weight between positions $i < j$ is $\prod_{s = i + 1}^{j} \alpha_s$ in both
directions (RetNet's $\gamma^{|i - j|}$ for a constant gate).

Everything runs in float32 (float64 stays float64, for tests) and returns the values'
dtype; no value-dependent shapes or branches, so the meta device (FLOP and memory
counting) works.

Examples:
    >>> import torch
    >>> from implementations._chunked_linear import gated_chunkwise, gated_recurrent
    >>> q, k, v = torch.randn(3, 2, 50, 4).unbind(0)
    >>> log_alpha = -torch.rand(2, 50, 4)
    >>> torch.allclose(gated_chunkwise(q, k, v, log_alpha, chunk_size=16),
    ...                gated_recurrent(q, k, v, log_alpha)[0], atol=1e-5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from implementations._helpers import chunk, pad_to_multiple

__all__ = [
    "bidirectional",
    "delta_chunkwise",
    "delta_recurrent",
    "delta_step",
    "gated_chunkwise",
    "gated_recurrent",
    "gated_step",
]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32, or float64 when given float64 (oracle tests)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def gated_step(
    q: Tensor, k: Tensor, v: Tensor, log_alpha: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    r"""One step: $S \leftarrow \mathrm{diag}(\alpha) S + k v^\top$, $o = S^\top q$.

    Args:
        q: ``[..., dk]``.
        k: ``[..., dk]``.
        v: ``[..., dv]``.
        log_alpha: ``[..., dk]`` (or broadcastable), $\log \alpha \le 0$.
        state: ``[..., dk, dv]``.

    Returns:
        ``(o [..., dv], new state)``.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import gated_step
        >>> o, s = gated_step(torch.ones(2), torch.ones(2), torch.ones(3), torch.zeros(2),
        ...                   torch.zeros(2, 3))
        >>> o
        tensor([2., 2., 2.])
    """
    state = log_alpha.exp().unsqueeze(-1) * state + k.unsqueeze(-1) * v.unsqueeze(-2)
    o = (q.unsqueeze(-1) * state).sum(-2)  # [..., dv]
    return o, state


def gated_recurrent(
    q: Tensor, k: Tensor, v: Tensor, log_alpha: Tensor, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The gated recurrence one position at a time (a loop over ``n``: for tests and decoding).

    Args:
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        log_alpha: ``[..., n, dk]``.
        state: ``[..., dk, dv]`` or None (zeros).

    Returns:
        ``(o [..., n, dv], final state)``.
    """
    if state is None:
        state = q.new_zeros(*q.shape[:-2], q.shape[-1], v.shape[-1])
    outputs = []
    for t in range(q.shape[-2]):
        o, state = gated_step(q[..., t, :], k[..., t, :], v[..., t, :], log_alpha[..., t, :], state)
        outputs.append(o)
    return torch.stack(outputs, dim=-2), state


def gated_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    log_alpha: Tensor,
    chunk_size: int = 64,
    sub_chunk: int = 16,
    include_current: bool = True,
) -> Tensor:
    r"""$o_t = \sum_{j \le t} (q_t \odot \prod_{s=j+1}^{t} \alpha_s)^\top k_j\, v_j$, by chunks.

    Two-level chunking (module docstring): chunks of ``chunk_size`` carry the state,
    sub-chunks of ``gcd(chunk_size, sub_chunk)`` bound every exponent by 0.

    Args:
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        log_alpha: ``[..., n, dk]``, $\log \alpha_t \le 0$ (broadcast a scalar gate).
        chunk_size: Positions per chunk (clipped to ``n``).
        sub_chunk: Positions per sub-chunk (made a divisor of the chunk).
        include_current: Sum over $j \le t$ (True) or $j < t$.

    Returns:
        ``[..., n, dv]`` in ``v``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import gated_chunkwise
        >>> q, k, v = torch.rand(3, 1, 6, 2).unbind(0)
        >>> no_decay = gated_chunkwise(q, k, v, torch.zeros(1, 6, 2), chunk_size=4)
        >>> torch.allclose(no_decay, (q @ k.transpose(-1, -2)).tril() @ v, atol=1e-6)
        True
    """
    n, dtype = q.shape[-2], v.dtype
    work = _compute_dtype(dtype)
    log_alpha = log_alpha.expand(*q.shape[:-1], q.shape[-1])
    c = max(1, min(chunk_size, n))
    s = math.gcd(c, sub_chunk)
    q, k, v, la = (pad_to_multiple(t.to(work), c)[0] for t in (q, k, v, log_alpha))
    q, k, v, la = chunk(q, c), chunk(k, c), chunk(v, c), chunk(la, c)  # [..., N, c, d]
    cum = la.cumsum(-2)  # [..., N, c, dk]: log decay from the chunk's start through i

    # Across chunks. Keys decayed to their chunk's end (exponents <= 0).
    to_end = (cum[..., -1:, :] - cum).exp()  # [..., N, c, dk]
    kv = (k * to_end).transpose(-1, -2) @ v  # [..., N, dk, dv]
    across = cum[..., -1, :].exp().unsqueeze(-1)  # [..., N, dk, 1]: a chunk's total decay
    # state_{c+1} = diag(a_c) state_c + kv_c, one fused op per chunk (the loop is over the
    # n / c chunks); unbinding once keeps the backward at one gradient buffer.
    starts, state = [], torch.zeros_like(kv[..., 0, :, :])
    for a_c, kv_c in zip(across.unbind(-3), kv.unbind(-3), strict=True):
        starts.append(state)
        state = torch.addcmul(kv_c, a_c, state)
    start = torch.stack(starts, dim=-3)  # [..., N, dk, dv]: state at each chunk's start
    inter = (q * cum.exp()) @ start  # [..., N, c, dv]

    # Inside a chunk, between sub-chunks: relative to the start of the query's sub-chunk.
    n_sub = c // s
    qs, ks, vs, cs = (t.unflatten(-2, (n_sub, s)) for t in (q, k, v, cum))  # [..., N, S, s, d]
    las = la.unflatten(-2, (n_sub, s))
    base = cs[..., 0, :] - las[..., 0, :]  # [..., N, S, dk]: cum just before sub-chunk I
    q_hat = qs * (cs - base.unsqueeze(-2)).exp()  # [..., N, S, s, dk], exponents <= 0
    pos = torch.arange(c, device=q.device)
    earlier = pos[None, :] < (torch.arange(n_sub, device=q.device) * s)[:, None]  # [S, c]
    expo = base.unsqueeze(-2) - cum.unsqueeze(-3)  # [..., N, S, c, dk]: b_I - cum_j
    expo = expo.masked_fill(~earlier[..., None], -math.inf)  # only keys before sub-chunk I
    k_hat = k.unsqueeze(-3) * expo.exp()  # [..., N, S, c, dk]
    scores = q_hat @ k_hat.transpose(-1, -2)  # [..., N, S, s, c]
    intra = scores.flatten(-3, -2) @ v  # [..., N, c, dv]

    # Inside a sub-chunk: the [s, s, dk] pairwise decays, exp(cum_i - cum_j), j <= i.
    i_s = torch.arange(s, device=q.device)
    keep = i_s[None, :] <= i_s[:, None] if include_current else i_s[None, :] < i_s[:, None]
    rel = cs.unsqueeze(-2) - cs.unsqueeze(-3)  # [..., N, S, s, s, dk]
    rel = rel.masked_fill(~keep[..., None], -math.inf).exp()
    local = torch.einsum("...id,...jd,...ijd->...ij", qs, ks, rel)  # [..., N, S, s, s]
    intra = intra + (local @ vs).flatten(-3, -2)  # [..., N, c, dv]

    out = (inter + intra).flatten(-3, -2)  # [..., n_padded, dv]
    return out[..., :n, :].to(dtype)


def delta_step(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, state: Tensor
) -> tuple[Tensor, Tensor]:
    r"""One delta-rule step: $S \leftarrow S + k\, \beta (v - S^\top k)^\top$, $o = S^\top q$.

    Args:
        q: ``[..., dk]``.
        k: ``[..., dk]``.
        v: ``[..., dv]``.
        beta: ``[...]``, the learning rate $\beta \in [0, 1]$.
        state: ``[..., dk, dv]``.

    Returns:
        ``(o [..., dv], new state)``.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import delta_step
        >>> k = torch.tensor([1.0, 0.0])
        >>> o, s = delta_step(k, k, torch.tensor([3.0]), torch.tensor(1.0), torch.ones(2, 1))
        >>> o, s.flatten()  # beta = 1 overwrites what key k retrieves with v
        (tensor([3.]), tensor([3., 1.]))
    """
    retrieved = (k.unsqueeze(-1) * state).sum(-2)  # [..., dv]: S^T k
    u = beta.unsqueeze(-1) * (v - retrieved)  # [..., dv]
    state = state + k.unsqueeze(-1) * u.unsqueeze(-2)
    return (q.unsqueeze(-1) * state).sum(-2), state


def delta_recurrent(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The delta rule one position at a time (a loop over ``n``: for tests and decoding).

    Args:
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        beta: ``[..., n]``.
        state: ``[..., dk, dv]`` or None (zeros).

    Returns:
        ``(o [..., n, dv], final state)``.
    """
    if state is None:
        state = q.new_zeros(*q.shape[:-2], q.shape[-1], v.shape[-1])
    outputs = []
    for t in range(q.shape[-2]):
        o, state = delta_step(q[..., t, :], k[..., t, :], v[..., t, :], beta[..., t], state)
        outputs.append(o)
    return torch.stack(outputs, dim=-2), state


def ut_transform(k: Tensor, v: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    r"""The WY factors of a chunk: $W = T K$, $\tilde U = T V$ with the UT transform $T$.

    $T = (I + \mathrm{tril}(\mathrm{diag}(\beta) K K^\top, -1))^{-1} \mathrm{diag}(\beta)$,
    applied by a unit lower-triangular solve (never inverted explicitly).

    Args:
        k: ``[..., c, dk]``.
        v: ``[..., c, dv]``.
        beta: ``[..., c]``.

    Returns:
        ``(W [..., c, dk], U~ [..., c, dv])``.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import ut_transform
        >>> k = torch.eye(3)  # orthogonal keys: the steps do not interact
        >>> w, u = ut_transform(k, torch.ones(3, 2), torch.full((3,), 0.5))
        >>> torch.equal(w, 0.5 * k), torch.equal(u, torch.full((3, 2), 0.5))
        (True, True)
    """
    c = k.shape[-2]
    kb = k * beta.unsqueeze(-1)  # [..., c, dk]: rows beta_i k_i
    lower = torch.ones(c, c, dtype=torch.bool, device=k.device).tril(-1)
    system = (kb @ k.transpose(-1, -2)).masked_fill(~lower, 0)  # [..., c, c]
    system = system + torch.eye(c, dtype=k.dtype, device=k.device)
    rhs = torch.cat([kb, v * beta.unsqueeze(-1)], dim=-1)  # [..., c, dk + dv]
    solved = torch.linalg.solve_triangular(system, rhs, upper=False, unitriangular=True)
    return solved[..., : k.shape[-1]], solved[..., k.shape[-1] :]


def delta_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    chunk_size: int = 64,
    include_current: bool = True,
) -> Tensor:
    r"""The delta rule by chunks through the WY representation (module docstring).

    Args:
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        beta: ``[..., n]``, $\beta_t \in [0, 1]$ (0 at padded positions: no write).
        chunk_size: Positions per chunk (clipped to ``n``).
        include_current: Output $S_t^\top q_t$ (True) or $S_{t-1}^\top q_t$.

    Returns:
        ``[..., n, dv]`` in ``v``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import delta_chunkwise, delta_recurrent
        >>> q, k, v = torch.randn(3, 2, 40, 4).unbind(0)
        >>> k = k / k.norm(dim=-1, keepdim=True)
        >>> beta = torch.rand(2, 40)
        >>> torch.allclose(delta_chunkwise(q, k, v, beta, chunk_size=16),
        ...                delta_recurrent(q, k, v, beta)[0], atol=1e-5)
        True
    """
    n, dtype = q.shape[-2], v.dtype
    work = _compute_dtype(dtype)
    c = max(1, min(chunk_size, n))
    q, k, v = (chunk(pad_to_multiple(t.to(work), c)[0], c) for t in (q, k, v))  # [..., N, c, d]
    beta = chunk(pad_to_multiple(beta.to(work), c, dim=-1)[0], c, dim=-1)  # [..., N, c]
    w, u_tilde = ut_transform(k, v, beta)  # [..., N, c, dk], [..., N, c, dv]
    i = torch.arange(c, device=q.device)
    within = i[None, :] <= i[:, None] if include_current else i[None, :] < i[:, None]
    scores = (q @ k.transpose(-1, -2)).masked_fill(~within, 0)  # [..., N, c, c]

    # Everything that does not depend on the chunk's start state S_0, for all chunks at once:
    # O = (Q - A W) S_0 + A U~, with A the masked scores.
    reads = q - scores @ w  # [..., N, c, dk]
    local = scores @ u_tilde  # [..., N, c, dv]

    # The scan over chunks: S_c = S_0 + K^T (U~ - W S_0). Written through the [dk, dk]
    # transition I - K^T W it costs dk^2 dv a chunk (and dk^2 c to form), against 2 c dk dv
    # here: 4x the work and a [N, dk, dk] tensor for the 256 DPFP features of fast weight
    # programmers (dk = 256, c = 64). Leading dimensions are flattened into B for bmm.
    k_t, w, u_tilde = (t.reshape(-1, *t.shape[-3:]) for t in (k.transpose(-1, -2), w, u_tilde))
    starts = []
    state = u_tilde.new_zeros(u_tilde.shape[0], k.shape[-1], u_tilde.shape[-1])  # [B, dk, dv]
    for k_c, w_c, u_c in zip(k_t.unbind(1), w.unbind(1), u_tilde.unbind(1), strict=True):
        starts.append(state)
        state = torch.baddbmm(state, k_c, u_c - w_c @ state)  # [B, dk, dv]
    start = torch.stack(starts, dim=1).reshape(*k.shape[:-2], *state.shape[-2:])  # [..., N, dk, dv]
    outputs = reads @ start + local  # [..., N, c, dv]
    out = outputs.flatten(-3, -2)  # [..., n_padded, dv]
    return out[..., :n, :].to(dtype)


def bidirectional(
    causal_form: Callable[..., Tensor],
    q: Tensor,
    k: Tensor,
    v: Tensor,
    gate: Tensor,
    *,
    gate_is_decay: bool,
    **options: object,
) -> Tensor:
    r"""A non-causal form: the recurrence forward (current included) plus backward (excluded).

    The backward pass runs ``causal_form`` over the reversed sequence. For a decay gate
    (``gate_is_decay``, ``[..., n, dk]`` log gates) it is shifted by one position so that the
    weight between $i < j$ is $\prod_{s=i+1}^{j} \alpha_s$ in both directions; a delta-rule
    ``beta`` ``[..., n]`` is reversed as it is.

    Args:
        causal_form: [`gated_chunkwise`][implementations._chunked_linear.gated_chunkwise] or
            [`delta_chunkwise`][implementations._chunked_linear.delta_chunkwise].
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        gate: ``log_alpha`` ``[..., n, dk]`` or ``beta`` ``[..., n]``.
        gate_is_decay: Whether ``gate`` is a log decay (else a delta-rule ``beta``).
        **options: Passed to ``causal_form`` (e.g. ``chunk_size``).

    Returns:
        ``[..., n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations._chunked_linear import bidirectional, gated_chunkwise
        >>> q, k, v = torch.rand(3, 1, 5, 2).unbind(0)
        >>> out = bidirectional(gated_chunkwise, q, k, v, torch.zeros(1, 5, 2),
        ...                     gate_is_decay=True)
        >>> torch.allclose(out, q @ k.transpose(-1, -2) @ v, atol=1e-6)  # no decay: all keys
        True
    """
    forward = causal_form(q, k, v, gate, include_current=True, **options)
    if gate_is_decay:
        # Reversed position r sees gates of original positions (i, j]: shift by one.
        reverse_gate = F.pad(gate.flip(-2)[..., :-1, :], (0, 0, 1, 0))  # [..., n, dk]
    else:
        reverse_gate = gate.flip(-1)  # [..., n]
    backward = causal_form(
        q.flip(-2), k.flip(-2), v.flip(-2), reverse_gate, include_current=False, **options
    )
    return forward + backward.flip(-2)
