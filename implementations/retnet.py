r"""RetNet: multi-scale retention, a decayed linear attention with three equivalent forms.

Paper: *Retentive Network: A Successor to Transformer for Large Language Models*, Yutao Sun,
Li Dong, Shaohan Huang, Shuming Ma, Yuqing Xia, Jilong Xue, Jianyong Wang and Furu Wei,
2023 (arXiv:2307.08621).

Retention is linear attention without a softmax or normaliser, with a fixed exponential
decay $\gamma$ per head and a relative-position rotation $e^{i n \theta}$ of queries and
keys (the rotation of xPos without its length extrapolation scaling, i.e. a rotary
embedding). With $Q_n = (X W_Q)_n e^{i n \theta}$, $K_m = (X W_K)_m e^{-i m \theta}$
(real form: pairs of channels rotated by the angle $n \theta_j$,
$\theta_j = 10000^{-j / (d/2 - 1)}$ as in the authors' code) and $V = X W_V$, the three
forms compute the same thing:

* **parallel** (training):
  $\mathrm{Retention}(X) = (Q K^\top \odot D)\, V$,
  $D_{nm} = \gamma^{n - m}$ for $n \ge m$, else 0
  ([`parallel_retention`][implementations.retnet.parallel_retention]);
* **recurrent** (decoding): $S_n = \gamma S_{n-1} + K_n^\top V_n$,
  $\mathrm{Retention}(X_n) = Q_n S_n$
  ([`RetNet.step`][implementations.retnet.RetNet.step]);
* **chunkwise recurrent** (long sequences): inside a chunk of $B$ positions the parallel
  form, across chunks the state,
  $R_i = K_{[i]}^\top (V_{[i]} \odot \zeta) + \gamma^B R_{i-1}$,
  $\mathrm{Retention}(X_{[i]}) = (Q_{[i]} K_{[i]}^\top \odot D) V_{[i]} +
  (Q_{[i]} R_{i-1}) \odot \xi$ with $\zeta_j = \gamma^{B - j - 1}$, $\xi_j = \gamma^{j+1}$
  ([`chunkwise_retention`][implementations.retnet.chunkwise_retention], by the chunked
  prefix sum [`causal_linear_attention`][implementations._helpers.causal_linear_attention]).
  This is the form ``forward`` runs: $O(n B d + n d^2)$, no $n \times n$ matrix.

**Gated multi-scale retention.** Each head has its own decay,
$\gamma = 1 - 2^{-5 - \mathrm{arange}(0, h)}$, so heads see different time scales; keys
are scaled by $d^{-1/2}$. The heads' outputs are normalised separately (GroupNorm with one
group per head: their variances differ with $\gamma$), then gated by a swish:

$$
Y = \mathrm{GroupNorm}_h\big(\mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\big),
\qquad \mathrm{MSR}(X) = \big(\mathrm{swish}(X W_G) \odot Y\big)\, W_O .
$$

The value (and gate) width is ``value_factor`` times the model width (2 in the paper).
The paper's extra "retention score normalisations" (dividing $D$ and $Q K^\top \odot D$ by
row sums) rescale each head's output at each position by a positive factor, which the
GroupNorm removes (up to its $\epsilon$); they only guard half-precision ranges and are
omitted here.

**Non-causal form** (``causal=False``; the paper is a decoder): the symmetric decay
$D_{nm} = \gamma^{|n - m|}$, computed as the chunked recurrence forward plus the same
recurrence over the reversed sequence with the diagonal removed (no $n \times n$ matrix).

Padded keys (``mask``) get zero keys and values, so they write nothing into the state;
positions (the rotation angles, the decay) still count them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import causal_linear_attention, split_heads
from implementations._registry import register

__all__ = [
    "RetNet",
    "chunkwise_retention",
    "decay_rates",
    "parallel_retention",
    "recurrent_retention",
    "rotate",
]


def decay_rates(heads: int) -> Tensor:
    r"""The per-head decays $\gamma_h = 1 - 2^{-5 - h}$, ``[heads]`` (float64).

    Examples:
        >>> from implementations.retnet import decay_rates
        >>> decay_rates(3)
        tensor([0.9688, 0.9844, 0.9922], dtype=torch.float64)
    """
    return 1 - 2.0 ** (-5 - torch.arange(heads, dtype=torch.float64))


def rotation_angles(dim_head: int) -> Tensor:
    r"""$\theta_j = 10000^{-j / (d/2 - 1)}$ for the ``dim_head // 2`` channel pairs.

    Examples:
        >>> from implementations.retnet import rotation_angles
        >>> rotation_angles(6)
        tensor([1.0000e+00, 1.0000e-02, 1.0000e-04])
    """
    pairs = dim_head // 2
    return 1.0 / 10000 ** torch.linspace(0, 1, pairs) if pairs > 1 else torch.ones(pairs)


def rotate(x: Tensor, positions: Tensor, angles: Tensor) -> Tensor:
    r"""Rotate channel pairs $(x_{2j}, x_{2j+1})$ of ``x`` by $n \theta_j$ at position $n$.

    The real form of $x_n e^{i n \theta}$; an odd last channel is left as it is. Then
    $\mathrm{rotate}(q)_n \cdot \mathrm{rotate}(k)_m$ depends on positions only through
    $n - m$.

    Args:
        x: ``[..., n, d]``.
        positions: ``[n]`` positions (any real dtype).
        angles: ``[d // 2]``.

    Returns:
        ``[..., n, d]``, float32 (float64 stays float64).

    Examples:
        >>> import torch
        >>> from implementations.retnet import rotate
        >>> x = torch.tensor([[1.0, 0.0]])
        >>> rotate(x, torch.tensor([1.0]), torch.tensor([torch.pi / 2])).round(decimals=6).abs()
        tensor([[0., 1.]])
    """
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(work)
    pairs = angles.shape[0]
    phase = positions.to(work)[:, None] * angles.to(work)[None, :]  # [n, d // 2]
    cos, sin = phase.cos(), phase.sin()
    even, odd = x[..., 0 : 2 * pairs : 2], x[..., 1 : 2 * pairs : 2]  # [..., n, d // 2]
    turned = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return torch.cat([turned.flatten(-2), x[..., 2 * pairs :]], dim=-1)  # [..., n, d]


def parallel_retention(q: Tensor, k: Tensor, v: Tensor, gamma: Tensor, causal: bool) -> Tensor:
    r"""The parallel form $(Q K^\top \odot D) V$, $D_{nm} = \gamma^{n-m}$ ($n \ge m$).

    Builds the ``[n, n]`` matrix: the readable reference for the other two forms. Without
    ``causal``, $D_{nm} = \gamma^{|n - m|}$.

    Args:
        q: ``[b, h, n, d]`` (rotated).
        k: ``[b, h, n, d]`` (rotated and scaled).
        v: ``[b, h, n, dv]``.
        gamma: ``[h]`` decays.
        causal: Lower-triangular $D$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.retnet import parallel_retention
        >>> one = torch.ones(1, 1, 3, 1)
        >>> parallel_retention(one, one, one, torch.tensor([0.5]), causal=True).flatten()
        tensor([1.0000, 1.5000, 1.7500])
    """
    n = q.shape[-2]
    i = torch.arange(n, device=q.device)
    distance = (i[:, None] - i[None, :]).to(q.dtype)  # [n, n]: n - m
    decay = gamma.to(q.dtype)[:, None, None] ** distance.abs()  # [h, n, n]
    if causal:
        decay = decay.masked_fill(distance < 0, 0)
    return ((q @ k.transpose(-1, -2)) * decay) @ v  # [b, h, n, dv]


def recurrent_retention(q: Tensor, k: Tensor, v: Tensor, gamma: Tensor) -> Tensor:
    r"""The recurrent form $S_n = \gamma S_{n-1} + K_n^\top V_n$, $o_n = Q_n S_n$ (a loop).

    Args:
        q: ``[b, h, n, d]`` (rotated).
        k: ``[b, h, n, d]`` (rotated and scaled).
        v: ``[b, h, n, dv]``.
        gamma: ``[h]`` decays.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.retnet import recurrent_retention
        >>> one = torch.ones(1, 1, 3, 1)
        >>> recurrent_retention(one, one, one, torch.tensor([0.5])).flatten()
        tensor([1.0000, 1.5000, 1.7500])
    """
    state = q.new_zeros(*q.shape[:-2], q.shape[-1], v.shape[-1])  # [b, h, d, dv]
    g = gamma.to(q.dtype)[:, None, None]  # [h, 1, 1]
    outputs = []
    for t in range(q.shape[-2]):
        state = g * state + k[..., t, :, None] * v[..., t, None, :]
        outputs.append((q[..., t, :, None] * state).sum(-2))  # [b, h, dv]
    return torch.stack(outputs, dim=-2)


def chunkwise_retention(
    q: Tensor, k: Tensor, v: Tensor, gamma: Tensor, causal: bool, chunk_size: int = 64
) -> Tensor:
    r"""The chunkwise recurrent form: parallel inside chunks, recurrent across them.

    Non-causal: forward plus backward recurrence minus the diagonal counted twice,
    $\sum_m \gamma^{|n - m|} (Q_n \cdot K_m) V_m$.

    Args:
        q: ``[b, h, n, d]`` (rotated).
        k: ``[b, h, n, d]`` (rotated and scaled).
        v: ``[b, h, n, dv]``.
        gamma: ``[h]`` decays.
        causal: Lower-triangular decay (else symmetric).
        chunk_size: Positions per chunk.

    Returns:
        ``[b, h, n, dv]`` (float32 arithmetic).

    Examples:
        >>> import torch
        >>> from implementations.retnet import chunkwise_retention, parallel_retention
        >>> q, k, v = torch.randn(3, 1, 2, 9, 4).unbind(0)
        >>> g = torch.tensor([0.9, 0.5])
        >>> torch.allclose(chunkwise_retention(q, k, v, g, False, chunk_size=4),
        ...                parallel_retention(q, k, v, g, False), atol=1e-5)
        True
    """
    log_decay = gamma.log().float()[:, None].expand(q.shape[1], q.shape[2])  # [h, n]
    log_decay = log_decay.expand(*q.shape[:-1])  # [b, h, n]
    forward = causal_linear_attention(q, k, v, log_decay, chunk_size)
    if causal:
        return forward
    backward = causal_linear_attention(q.flip(-2), k.flip(-2), v.flip(-2), log_decay, chunk_size)
    diagonal = (q * k).sum(-1, keepdim=True) * v  # [b, h, n, dv]: the m = n term, seen twice
    return forward + backward.flip(-2) - diagonal.to(forward.dtype)


@register("retnet", kind="attention", supports_causal=True)
class RetNet(nn.Module):
    r"""Gated multi-scale retention (chunkwise recurrent training form, recurrent decoding).

    Args:
        dim: Model width.
        heads: Number of heads (each with its own decay $\gamma$).
        causal: The paper's decoder form; else the symmetric decay $\gamma^{|n-m|}$.
        value_factor: Value and gate width as a multiple of ``dim`` (paper: 2).
        chunk_size: Positions per chunk of the chunkwise form.
        rotation: Rotate queries and keys by $e^{i n \theta}$ (the paper's relative
            position); False keeps the decay as the only positional signal.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("retnet", dim=32, heads=4, causal=True)
        >>> x = torch.randn(2, 11, 32)
        >>> y = layer(x)
        >>> y.shape
        torch.Size([2, 11, 32])
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(11):  # the recurrent form, one token at a time
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5)
        True
    """

    gamma: Tensor  # [h] buffer
    angles: Tensor  # [d // 2] buffer

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        value_factor: int = 2,
        chunk_size: int = 64,
        rotation: bool = True,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.causal = causal
        self.heads = heads
        self.chunk_size = chunk_size
        self.rotation = rotation
        self.dim_head = dim // heads
        value_dim = value_factor * dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, value_dim, bias=False)
        self.to_g = nn.Linear(dim, value_dim, bias=False)
        self.to_out = nn.Linear(value_dim, dim, bias=False)
        self.norm = nn.GroupNorm(heads, value_dim)
        self.register_buffer("gamma", decay_rates(heads).float())
        self.register_buffer("angles", rotation_angles(self.dim_head))

    def _qkv(self, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rotated queries, rotated scaled keys, values: ``[b, h, n, d]``, float32."""
        q = split_heads(self.to_q(x), self.heads).float()  # [b, h, n, d]
        k = split_heads(self.to_k(x), self.heads).float() * self.dim_head**-0.5
        v = split_heads(self.to_v(x), self.heads).float()  # [b, h, n, dv]
        if self.rotation:
            q, k = rotate(q, positions, self.angles), rotate(k, positions, self.angles)
        return q, k, v

    def _output(self, x: Tensor, o: Tensor) -> Tensor:
        """GroupNorm per head, swish gate, $W_O$: ``o`` ``[b, h, n, dv]`` -> ``[b, n, dim]``."""
        b, h, n, dv = o.shape
        o = o.permute(0, 2, 1, 3).reshape(b * n, h * dv)  # [b n, h dv]: heads are the groups
        y = F.group_norm(o, h, self.norm.weight.float(), self.norm.bias.float(), self.norm.eps)
        y = y.reshape(b, n, h * dv).to(x.dtype)  # [b, n, h dv]
        return self.to_out(F.silu(self.to_g(x)) * y)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        positions = torch.arange(x.shape[1], device=x.device)
        q, k, v = self._qkv(x, positions)  # [b, h, n, d], [b, h, n, d], [b, h, n, dv]
        if mask is not None:
            keep = mask[:, None, :, None]  # [b, 1, n, 1]
            k, v = k.masked_fill(~keep, 0), v.masked_fill(~keep, 0)
        o = chunkwise_retention(q, k, v, self.gamma, self.causal, self.chunk_size)
        return self._output(x, o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The state before the first token: ``(S [b, h, d, dv]`` float32 zeros, position 0)."""
        device = self.gamma.device if device is None else device
        dv = self.to_v.out_features // self.heads
        state = torch.zeros(batch, self.heads, self.dim_head, dv, device=device)
        return state, torch.zeros((), dtype=torch.long, device=device)

    def step(
        self, x_t: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        r"""Decode one position (the recurrent form): $S \leftarrow \gamma S + K_n^\top V_n$.

        Args:
            x_t: ``[b, dim]``.
            state: From [`init_state`][implementations.retnet.RetNet.init_state] or the
                previous step.

        Returns:
            ``(y_t [b, dim], new state)``.
        """
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        s, position = state
        x = x_t.unsqueeze(1)  # [b, 1, dim]: a length-1 sequence
        q, k, v = self._qkv(x, position.reshape(1))  # [b, h, 1, d] ...
        s = self.gamma[:, None, None] * s + k[:, :, 0, :, None] * v[:, :, 0, None, :]
        o = (q[:, :, 0, :, None] * s).sum(-2)  # [b, h, dv]
        return self._output(x, o.unsqueeze(2))[:, 0], (s, position + 1)
