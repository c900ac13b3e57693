r"""Linear attention: softmax replaced by a kernel, so attention is linear in length.

Paper: *Transformers are RNNs: Fast Autoregressive Transformers with Linear Attention*,
Angelos Katharopoulos, Apoorv Vyas, Nikolaos Pappas and François Fleuret, ICML 2020
(arXiv:2006.16236).

Softmax attention weighs value $V_j$ by $\mathrm{sim}(Q_i, K_j) = \exp(Q_i^\top K_j /
\sqrt{d})$. Any non-negative similarity gives an attention; choosing a kernel
$\mathrm{sim}(q, k) = \phi(q)^\top \phi(k)$ lets the sum over keys be factored out of the
query:

$$
V'_i = \frac{\sum_j \phi(Q_i)^\top \phi(K_j)\, V_j}{\sum_j \phi(Q_i)^\top \phi(K_j)}
     = \frac{\phi(Q_i)^\top \sum_j \phi(K_j) V_j^\top}{\phi(Q_i)^\top \sum_j \phi(K_j)} .
$$

$\sum_j \phi(K_j) V_j^\top$ is a $d \times d$ matrix computed once, so time and memory
are $O(n d^2)$ instead of $O(n^2 d)$. The paper's feature map is

$$
\phi(x) = \mathrm{elu}(x) + 1 ,
$$

positive (so the weights are a proper average) with non-vanishing gradients for
$x < 0$.

**Causal attention is a prefix sum**, and hence an RNN. With
$S_i = \sum_{j \le i} \phi(K_j) V_j^\top$ and $Z_i = \sum_{j \le i} \phi(K_j)$,

$$
V'_i = \frac{\phi(Q_i)^\top S_i}{\phi(Q_i)^\top Z_i}, \qquad
S_i = S_{i-1} + \phi(K_i) V_i^\top, \quad Z_i = Z_{i-1} + \phi(K_i),
$$

so a decoder carries only $(S, Z)$ from step to step: constant time and memory per
generated token ([`recurrent_step`][implementations.linear_transformer.recurrent_step],
[`LinearTransformer.step`][implementations.linear_transformer.LinearTransformer.step]). Training
computes the prefix sums in parallel, chunk by chunk
([`causal_linear_attention`][implementations._helpers.causal_linear_attention]), never an
$n \times n$ matrix.

[`linear_attention`][implementations.linear_transformer.linear_attention] (the normalised kernel
attention for any feature map) is reused by the random-feature mechanisms, Performer and RFA, which
differ only in $\phi$.

Hyper-parameters: none beyond ``dim``, ``heads`` and ``causal``; the feature map is
fixed to $\mathrm{elu}(x) + 1$ as in the paper.

**Where the time goes**: the causal path's chunked prefix states dominate memory; without autograd
the heads run one at a time ([`heads_in_turn`][implementations._helpers.heads_in_turn]), so the
inference peak at n = 16384 is 1.2x that of the fused exact kernel (2.6x causal before).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    causal_linear_attention,
    heads_in_turn,
    split_heads,
)
from implementations._registry import register

__all__ = ["LinearTransformer", "attention", "feature_map", "linear_attention", "recurrent_step"]

#: Floor on the normaliser $\phi(Q_i)^\top \sum_j \phi(K_j)$, as in the authors' code.
EPS = 1e-6


def feature_map(x: Tensor) -> Tensor:
    r"""$\phi(x) = \mathrm{elu}(x) + 1$, element-wise (positive).

    Examples:
        >>> import torch
        >>> from implementations.linear_transformer import feature_map
        >>> feature_map(torch.tensor([-1.0, 0.0, 2.0]))
        tensor([0.3679, 1.0000, 3.0000])
    """
    return F.elu(x) + 1


def linear_attention(
    phi_q: Tensor,
    phi_k: Tensor,
    v: Tensor,
    causal: bool = False,
    log_decay: Tensor | None = None,
    eps: float = EPS,
) -> Tensor:
    r"""Normalised kernel attention from feature maps, in time linear in ``n``.

    $$
    V'_i = \frac{\phi(Q_i)^\top \sum_j \phi(K_j) V_j^\top}{\phi(Q_i)^\top \sum_j \phi(K_j)}
    $$

    with $j \le i$ when ``causal`` (prefix sums, optionally decayed by ``log_decay``:
    key $j$ is weighted by $\prod_{t=j+1}^{i} e^{\text{log\_decay}_t}$ at query $i$).
    The normaliser is floored at ``eps``; it is computed in float32.

    Args:
        phi_q: Query features ``[b, h, n, m]``.
        phi_k: Key features ``[b, h, nk, m]`` (zero them at padded keys).
        v: Values ``[b, h, nk, dv]``.
        causal: Prefix sums (``nk == n``).
        log_decay: ``[b, h, n]`` per-step log decay $\le 0$ (causal only), or None.
        eps: Floor on the normaliser.

    Returns:
        ``[b, h, n, dv]`` in ``v``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations.linear_transformer import linear_attention
        >>> q, k, v = torch.rand(1, 2, 6, 4), torch.rand(1, 2, 6, 4), torch.randn(1, 2, 6, 3)
        >>> linear_attention(q, k, v, causal=True).shape
        torch.Size([1, 2, 6, 3])
    """
    dtype = v.dtype
    phi_q, phi_k, v = phi_q.float(), phi_k.float(), v.float()
    if causal:
        # One pass for numerator and normaliser: a column of ones appended to the values.
        ones = torch.ones_like(v[..., :1])  # [b, h, n, 1]
        out = causal_linear_attention(phi_q, phi_k, torch.cat([v, ones], dim=-1), log_decay)
        num, den = out[..., :-1], out[..., -1:]  # [b, h, n, dv], [b, h, n, 1]
    else:
        if log_decay is not None:
            raise ValueError("log_decay applies to causal attention only")
        kv = torch.einsum("bhjm,bhje->bhme", phi_k, v)  # [b, h, m, dv]: sum_j phi(K_j) V_j^T
        z = phi_k.sum(dim=-2)  # [b, h, m]: sum_j phi(K_j)
        num = phi_q @ kv  # [b, h, n, dv]
        den = phi_q @ z.unsqueeze(-1)  # [b, h, n, 1]
    return (num / den.clamp_min(eps)).to(dtype)


def attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False
) -> Tensor:
    r"""Linear attention with $\phi(x) = \mathrm{elu}(x) + 1$.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, nk, d]``.
        v: ``[b, h, nk, dv]``.
        mask: Key-padding mask ``[b, nk]``, True = real; padded keys get zero features.
        causal: Query $i$ sees keys $j \le i$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.linear_transformer import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    by_head = heads_in_turn(
        attention, {"q": (q, 1), "k": (k, 1), "v": (v, 1)}, mask=mask, causal=causal
    )
    if by_head is not None:  # inference: one head's features and prefix states at a time
        return by_head
    phi_q, phi_k = feature_map(q), feature_map(k)
    if mask is not None:
        keep = mask[:, None, :, None]  # [b, 1, nk, 1]
        phi_k = phi_k.masked_fill(~keep, 0)
        v = v.masked_fill(~keep, 0)
    return linear_attention(phi_q, phi_k, v, causal=causal)


def recurrent_step(
    q: Tensor, k: Tensor, v: Tensor, state: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    r"""One step of the RNN form: $S \leftarrow S + \phi(k) v^\top$, $Z \leftarrow Z + \phi(k)$.

    Args:
        q: This step's query ``[b, h, d]``.
        k: This step's key ``[b, h, d]``.
        v: This step's value ``[b, h, dv]``.
        state: ``(S [b, h, d, dv], Z [b, h, d])`` from the previous step, or None at the start.

    Returns:
        ``(out [b, h, dv], new state)``; $\mathrm{out} = \phi(q)^\top S / \phi(q)^\top Z$.

    Examples:
        >>> import torch
        >>> from implementations.linear_transformer import recurrent_step
        >>> q = torch.randn(1, 2, 4)
        >>> out, (s, z) = recurrent_step(q, q, q)
        >>> out.shape, s.shape, z.shape
        (torch.Size([1, 2, 4]), torch.Size([1, 2, 4, 4]), torch.Size([1, 2, 4]))
    """
    phi_q, phi_k = feature_map(q.float()), feature_map(k.float())
    if state is None:
        s = phi_k.new_zeros(*phi_k.shape, v.shape[-1])
        z = phi_k.new_zeros(phi_k.shape)
    else:
        s, z = state
    s = s + phi_k.unsqueeze(-1) * v.float().unsqueeze(-2)  # [b, h, d, dv]
    z = z + phi_k  # [b, h, d]
    num = torch.einsum("bhd,bhde->bhe", phi_q, s)  # [b, h, dv]
    den = (phi_q * z).sum(-1, keepdim=True)  # [b, h, 1]
    return (num / den.clamp_min(EPS)).to(v.dtype), (s, z)


@register("linear-transformer", kind="attention", supports_causal=True)
class LinearTransformer(nn.Module):
    r"""Multi-head linear attention with $\phi(x) = \mathrm{elu}(x) + 1$.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Prefix-sum (autoregressive) attention.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("linear-transformer", dim=32, heads=4, causal=True)
        >>> x = torch.randn(2, 11, 32)
        >>> y = layer(x)
        >>> y.shape
        torch.Size([2, 11, 32])
        >>> # Decoding one token at a time with the RNN form gives the same outputs.
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(11):
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5)
        True
    """

    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.proj = HeadProjections(dim, heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(q, k, v, mask=mask, causal=self.causal)  # [b, h, n, d]
        return self.proj.out(o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The empty state ``(S [b, h, d, d], Z [b, h, d])`` before the first token.

        The sums are kept in float32 whatever ``dtype`` is: they add up every past key,
        and in bfloat16 a long prefix would stop registering new ones.
        """
        del dtype  # the running sums are always float32, see above
        heads = self.proj.heads
        d = self.proj.to_q.out_features // heads
        s = torch.zeros(batch, heads, d, d, device=device)  # [b, h, d, dv]
        z = torch.zeros(batch, heads, d, device=device)  # [b, h, d]
        return s, z

    def step(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Decode one position: ``x`` ``[b, dim]`` -> ``(y [b, dim], state)`` (causal RNN form)."""
        if not self.causal:
            raise ValueError("step() is the causal (RNN) form; build with causal=True")
        heads = self.proj.heads
        q = split_heads(self.proj.to_q(x).unsqueeze(1), heads)[:, :, 0]  # [b, h, d]
        k = split_heads(self.proj.to_k(x).unsqueeze(1), heads)[:, :, 0]  # [b, h, d]
        v = split_heads(self.proj.to_v(x).unsqueeze(1), heads)[:, :, 0]  # [b, h, d]
        o, state = recurrent_step(q, k, v, state)  # [b, h, d]
        y = self.proj.out(o.unsqueeze(2))  # [b, 1, dim]: a length-1 sequence
        return y[:, 0], state
