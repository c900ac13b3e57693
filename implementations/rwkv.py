r"""RWKV-4 time mixing: a linear recurrence with per-channel time decay, trained in parallel.

Paper: *RWKV: Reinventing RNNs for the Transformer Era*, Bo Peng, Eric Alcaide, Quentin
Anthony et al., Findings of EMNLP 2023 (arXiv:2305.13048).

RWKV replaces attention by the **WKV** operator, an attention-like weighted average whose
weights decay with distance by a learned per-channel rate $w \ge 0$ (no query: the weight
of token $s$ for token $t$ depends only on $k_s$ and $t - s$), with a separate bonus $u$
for the current token:

$$
\mathrm{wkv}_t = \frac{\sum_{s=1}^{t-1} e^{-(t-1-s) w + k_s} v_s + e^{u + k_t} v_t}
                      {\sum_{s=1}^{t-1} e^{-(t-1-s) w + k_s} + e^{u + k_t}},
\qquad o_t = W_o\big(\sigma(r_t) \odot \mathrm{wkv}_t\big),
$$

all channel-wise. The receptance $r$, key $k$ and value $v$ are projections of a **token
shift**, an interpolation with the previous token, $x'_t = \mu \odot x_t + (1 - \mu) \odot
x_{t-1}$ (one $\mu$ each for $r$, $k$, $v$). As an RNN the sums are a state
$(a_t, b_t)$ updated by $a_t = e^{-w} a_{t-1} + e^{k_t} v_t$, $b_t = e^{-w} b_{t-1} + e^{k_t}$.

**Numerical stability.** $e^{k}$ overflows; like the paper's code, the state is kept as
$(a, b)$ scaled by $e^{-p}$ with $p$ the running largest exponent, so every exponential has a
non-positive argument ([`RWKV.step`][implementations.rwkv.RWKV.step]).

**Parallel (training) form** ([`wkv`][implementations.rwkv.wkv]): chunks of 16 positions.
Inside a chunk the ``[c, c]`` matrix of exponents $k_s - (t-1-s) w$ is formed, its row
maximum (together with the carried state's exponent) subtracted before exponentiating; across
chunks the scaled state $(a, b, p)$ is carried. $O(n c d)$ work, no loop over positions.

**Where the time goes**: the intra-chunk tensor ``[b, c, c, d]`` is exponentiated and reduced
elementwise (the decay is per channel, so no matrix product absorbs it), so the work grows
with $c$, while the loop that carries the state runs $n / c$ steps. With chunks of 256 the
exponentials dominated: a forward at $n = 1024$ (dim 512, one thread) took 2.8 s, and 8192
was predicted at 70 s a pass. Chunks of 16 balance the two: at $n = 8192$ the causal forward
takes 0.67 s and forward+backward 1.9 s (exact attention: 1.1 s and 3.9 s); 32 took 1.7 s
and 4.1 s, 8 was slower at $n = 2048$ than 16.

Initialisation follows the paper's code for a layer in the middle of the stack
(decay speeds $-5 + 8 (h / (d-1))^{1.35}$, $u = \log 0.3$ plus a zigzag, $\mu$ ramps).
The layer is RWKV-4's time-mixing block; its channel-mixing block is a feed-forward layer
and is not part of this mixer. ``heads`` is accepted for the common interface and unused
(RWKV-4's WKV is per channel).

**Non-causal form** (``causal=False``): bidirectional WKV, as bidirectional RWKV variants use:
the past sum and the same decayed sum over the future ($e^{-(s-1-t)w + k_s}$ for $s > t$)
share one normaliser, $\mathrm{wkv}_t = (\text{past} + e^{u + k_t} v_t + \text{future}) /
(\text{same with } v = 1)$; the token shift still looks at the previous token.

**Padding.** Padded tokens are zeroed before the token shift and their keys set to a huge
negative number, so their weights are exactly 0; the decay still advances over them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import chunk, pad_to_multiple, zero_padding
from implementations._registry import register

__all__ = ["RWKV", "wkv", "wkv_past"]

# Positions per chunk of the parallel WKV (16: the fastest here; see the module docstring).
WKV_CHUNK = 16
# The exponent of "no term": finite, so that differences of such exponents stay finite.
_NEG = -1e30
# The paper's code starts the running maximum p at -1e38.
_START = -1e38

RWKVState = tuple[Tensor, Tensor, Tensor, Tensor]  # (previous token [b, dim], a, b, p)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def wkv_past(
    w: Tensor, k: Tensor, v: Tensor, chunk_size: int = WKV_CHUNK
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The decayed sums over strictly earlier tokens, in scaled form, by chunks.

    For every position $t$: $\sum_{s < t} e^{k_s - (t-1-s) w} v_s = \mathrm{num}_t\, e^{m_t}$
    and $\sum_{s < t} e^{k_s - (t-1-s) w} = \mathrm{den}_t\, e^{m_t}$. Each chunk's keys are
    summarised (decayed to the chunk's end, in units of their largest exponent); a loop over
    the $n / c$ chunks carries the scaled state $(a, b, p)$ of the recurrence; inside a
    chunk the exponent matrix $k_s - (t-1-s) w$ is formed and its row maximum taken out
    before exponentiating, and the carried state joins under the common maximum $m_t$. So
    no exponential has a positive argument.

    Args:
        w: ``[d]`` decay rates $w \ge 0$.
        k: ``[b, n, d]`` keys (exponents).
        v: ``[b, n, d]`` values.
        chunk_size: Positions per chunk.

    Returns:
        ``(num, den, m)``, ``[b, n, d]`` each, in float32 (float64 stays float64).

    Examples:
        >>> import torch
        >>> from implementations.rwkv import wkv_past
        >>> w, k, v = torch.rand(2), torch.randn(1, 6, 2), torch.randn(1, 6, 2)
        >>> num, den, m = wkv_past(w, k, v, chunk_size=4)
        >>> t = 5  # the sum over s < 5, directly
        >>> e = torch.stack([(k[0, s] - (t - 1 - s) * w).exp() for s in range(t)])
        >>> torch.allclose(num[0, t] * m[0, t].exp(), (e * v[0, :t]).sum(0), atol=1e-5)
        True
    """
    batch, n, d = k.shape
    compute = _compute_dtype(k.dtype)
    w, k, v = w.to(compute), k.to(compute), v.to(compute)
    c = max(1, min(chunk_size, n))
    # Appended positions hold no key (weight 0) and come after every real one.
    k = chunk(pad_to_multiple(k, c, value=_NEG)[0], c)  # [b, nc, c, d]
    v = chunk(pad_to_multiple(v, c)[0], c)  # [b, nc, c, d]
    pos = torch.arange(c, device=k.device, dtype=compute)
    lag = pos[:, None] - 1 - pos[None, :]  # [c(t), c(s)]: t - 1 - s, >= 0 when s < t
    # Decay from key s to query t inside a chunk; +inf removes s >= t.
    decay = torch.where(lag[..., None] >= 0, lag[..., None] * w, math.inf)  # [t, s, d]

    # Each chunk's own keys, decayed to its last position: a summary (A, B) in units of e^P.
    to_end = k - (c - 1 - pos)[:, None] * w  # [b, nc, s, d]
    P = to_end.amax(dim=2).detach()  # [b, nc, d]
    e_end = torch.exp(to_end - P[:, :, None])  # [b, nc, s, d], entries <= 1
    A, B = (e_end * v).sum(2), e_end.sum(2)  # [b, nc, d]

    # Carry the scaled state (a, b, p) across chunks (n / c steps), from the empty state.
    a = b = k.new_zeros(batch, d)
    p = torch.full_like(a, _START)
    starts = []
    for A_c, B_c, P_c in zip(A.unbind(1), B.unbind(1), P.unbind(1), strict=True):
        starts.append((a, b, p))
        carried = p - c * w  # the state decayed over the whole chunk
        p_new = torch.maximum(carried, P_c)
        old, new = torch.exp(carried - p_new), torch.exp(P_c - p_new)
        a, b, p = old * a + new * A_c, old * b + new * B_c, p_new
    a0, b0, p0 = (torch.stack(t, dim=1) for t in zip(*starts, strict=True))  # [b, nc, d]

    # Inside each chunk: the [c, c] exponents k_s - (t-1-s) w, one chunk at a time.
    intra_num, intra_den, intra_max = [], [], []
    for k_c, v_c in zip(k.unbind(1), v.unbind(1), strict=True):  # [b, c, d]
        exponents = k_c[:, None] - decay  # [b, t, s, d]
        m = exponents.amax(dim=2).detach()  # [b, t, d]; -inf at t = 0
        m = m.clamp(min=_START)  # finite, so that m - m = 0
        weights = torch.exp(exponents - m[:, :, None])  # entries <= 1
        intra_num.append(torch.einsum("btsd,bsd->btd", weights, v_c))
        intra_den.append(weights.sum(2))
        intra_max.append(m)
    num_in, den_in, m_in = (torch.stack(t, dim=1) for t in (intra_num, intra_den, intra_max))

    # Add the carried state, decayed t steps into the chunk; one common scale e^m.
    carry = p0[:, :, None] - pos[:, None] * w  # [b, nc, t, d]
    m = torch.maximum(carry, m_in)
    old, new = torch.exp(carry - m), torch.exp(m_in - m)
    num = old * a0[:, :, None] + new * num_in  # [b, nc, c, d]
    den = old * b0[:, :, None] + new * den_in
    flat = [t.flatten(1, 2)[:, :n] for t in (num, den, m)]  # [b, n, d]
    return flat[0], flat[1], flat[2]


def wkv(
    w: Tensor, u: Tensor, k: Tensor, v: Tensor, causal: bool = True, chunk_size: int = WKV_CHUNK
) -> Tensor:
    r"""The WKV operator, causal (the paper's) or bidirectional.

    Args:
        w: ``[d]`` decay rates $w \ge 0$.
        u: ``[d]`` current-token bonus.
        k: ``[b, n, d]``.
        v: ``[b, n, d]``.
        causal: Only earlier tokens (and the current one); else also later ones.
        chunk_size: Positions per chunk.

    Returns:
        ``[b, n, d]`` in ``v``'s dtype (computed in float32; float64 stays float64).

    Examples:
        >>> import torch
        >>> from implementations.rwkv import wkv
        >>> w, u, k, v = torch.rand(3), torch.randn(3), torch.randn(2, 9, 3), torch.randn(2, 9, 3)
        >>> out = wkv(w, u, k, v)
        >>> t = 4  # the definition at one position
        >>> e = torch.stack([(k[:, s] - (t - 1 - s) * w).exp() for s in range(t)], 1)
        >>> bonus = (u + k[:, t]).exp()
        >>> direct = ((e * v[:, :t]).sum(1) + bonus * v[:, t]) / (e.sum(1) + bonus)
        >>> torch.allclose(out[:, t], direct, atol=1e-5)
        True
    """
    dtype = v.dtype
    compute = _compute_dtype(dtype)
    k, v, u = k.to(compute), v.to(compute), u.to(compute)
    parts = [wkv_past(w, k, v, chunk_size=chunk_size)]
    if not causal:  # the same sums over later tokens: the past of the reversed sequence
        num, den, m = wkv_past(w, k.flip(1), v.flip(1), chunk_size=chunk_size)
        parts.append((num.flip(1), den.flip(1), m.flip(1)))
    bonus = u + k  # [b, n, d]
    top = bonus
    for _, _, m in parts:
        top = torch.maximum(top, m)
    top = top.detach()  # [b, n, d]: the largest exponent, cancels in the ratio
    e_bonus = torch.exp(bonus - top)
    numerator, denominator = e_bonus * v, e_bonus
    for num, den, m in parts:
        scale = torch.exp(m - top)
        numerator = numerator + num * scale
        denominator = denominator + den * scale
    return (numerator / denominator).to(dtype)


@register("rwkv", kind="attention", supports_causal=True)
class RWKV(nn.Module):
    r"""RWKV-4 time mixing: token shift, $r, k, v$ projections, WKV, receptance gate.

    Args:
        dim: Model width (also the WKV width).
        heads: Unused (RWKV-4's WKV is per channel); accepted for the common interface.
        causal: The paper's causal WKV (decodes with ``step``); else bidirectional.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("rwkv", dim=16, heads=2, causal=True)
        >>> x = torch.randn(2, 9, 16)
        >>> y = layer(x)
        >>> state = layer.init_state(2)
        >>> steps = []
        >>> for t in range(9):
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, 1), y, atol=1e-5)
        True
    """

    def __init__(self, dim: int, heads: int = 8, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        # The paper's code initialises by depth; these are its values at mid-stack.
        ratio_0_to_1, ratio_1_to_almost0 = 0.5, 0.5
        h = torch.arange(dim, dtype=torch.float32)
        speed = -5 + 8 * (h / max(dim - 1, 1)) ** (0.7 + 1.3 * ratio_0_to_1)
        self.time_decay = nn.Parameter(speed)  # w = exp(time_decay)
        zigzag = ((h + 1) % 3 - 1) * 0.5
        self.time_first = nn.Parameter(torch.full((dim,), math.log(0.3)) + zigzag)  # u
        ramp = h / dim
        self.time_mix_k = nn.Parameter(ramp**ratio_1_to_almost0)
        self.time_mix_v = nn.Parameter(ramp**ratio_1_to_almost0 + 0.3 * ratio_0_to_1)
        self.time_mix_r = nn.Parameter(ramp ** (0.5 * ratio_1_to_almost0))
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.receptance = nn.Linear(dim, dim, bias=False)
        self.output = nn.Linear(dim, dim, bias=False)

    def _rkv(self, x: Tensor, previous: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Token shift then projections: $\sigma(r)$, $k$, $v$."""
        mixed = [
            x * mu + previous * (1 - mu)
            for mu in (self.time_mix_r, self.time_mix_k, self.time_mix_v)
        ]
        return torch.sigmoid(self.receptance(mixed[0])), self.key(mixed[1]), self.value(mixed[2])

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        x = zero_padding(x, mask)
        previous = F.pad(x, (0, 0, 1, -1))  # [b, n, dim]: x_{t-1}, zeros before the start
        r, k, v = self._rkv(x, previous)
        k = k.float() if k.dtype != torch.float64 else k
        if mask is not None:
            k = k.masked_fill(~mask[..., None], _NEG)  # weight exactly 0 for padded tokens
        y = wkv(self.time_decay.exp(), self.time_first, k, v, causal=self.causal)
        return self.output(r * y)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> RWKVState:
        """Previous token (zeros) ``[b, dim]`` and the empty WKV state ``(a, b, p)``."""
        dim = self.time_decay.shape[0]
        dtype = dtype or torch.float32
        compute = _compute_dtype(dtype)
        zeros = torch.zeros(batch, dim, device=device, dtype=compute)
        previous = torch.zeros(batch, dim, device=device, dtype=dtype)
        return previous, zeros, zeros.clone(), torch.full_like(zeros, _START)

    def step(self, x_t: Tensor, state: RWKVState) -> tuple[Tensor, RWKVState]:
        r"""Decode one position with the paper's stable recurrence (running maximum $p$).

        $q = \max(p, u + k)$:
        $\mathrm{wkv} = (e^{p-q} a + e^{u+k-q} v) / (e^{p-q} b + e^{u+k-q})$; then
        $p' = \max(p - w, k)$, $a' = e^{p-w-p'} a + e^{k-p'} v$,
        $b' = e^{p-w-p'} b + e^{k-p'}$.
        """
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        previous, a, b, p = state
        r, k, v = self._rkv(x_t, previous)
        k, v = k.to(a.dtype), v.to(a.dtype)
        w, u = self.time_decay.to(a.dtype).exp(), self.time_first.to(a.dtype)
        q = torch.maximum(p, u + k)
        e1, e2 = torch.exp(p - q), torch.exp(u + k - q)
        y = (e1 * a + e2 * v) / (e1 * b + e2)
        p_new = torch.maximum(p - w, k)
        e1, e2 = torch.exp(p - w - p_new), torch.exp(k - p_new)
        a, b = e1 * a + e2 * v, e1 * b + e2
        return self.output(r * y.to(r.dtype)), (x_t, a, b, p_new)
