r"""Based: Taylor-feature linear attention for global recall plus exact sliding-window attention.

Paper: *Simple linear attention language models balance the recall-throughput tradeoff*,
Simran Arora, Sabri Eyuboglu, Michael Zhang, Aman Timalsina, Silas Alberti, Dylan Zinsley,
James Zou, Atri Rudra and Christopher Ré, ICML 2024 (arXiv:2402.18668).

A recurrent model's state size bounds how much of the context it can recall; attention's
KV-cache grows with the context. Based dials between the two with two cheap components:

**Linear attention with a 2nd-order Taylor feature map** over a small feature dimension
$d'$ (16 by default): $\exp(x) \approx 1 + x + x^2 / 2$, realised by

$$
\phi(q) = \Big[\,1,\; \frac{q}{\sqrt[4]{d'}},\; \frac{q \otimes q}{\sqrt{2}\,\sqrt{d'}}\,\Big]
\in \mathbb{R}^{1 + d' + d'^2},
\qquad
\phi(q)^\top \phi(k) = 1 + \frac{q^\top k}{\sqrt{d'}} + \frac{(q^\top k)^2}{2 d'} ,
$$

([`taylor_feature_map`][implementations.based.taylor_feature_map]), which is positive
($1 + x + x^2/2 > 0$ for every $x$), so the normalised linear attention

$$
y_i = \frac{\phi(q_i)^\top \sum_{j \le i} \phi(k_j) v_j^\top}
           {\phi(q_i)^\top \sum_{j \le i} \phi(k_j)}
$$

is a proper weighted average of values; the state is $(1 + d' + d'^2) \times d$ per head,
fixed in length. It is computed by chunked prefix sums
([`linear_attention`][implementations.linear_transformer.linear_attention]), and decoded
with a constant-size state.

**Exact softmax attention over a small sliding window** ($w = 64$ keys, the paper's default,
fitting GPU tensor-core tiles) gives the precise local shifts and comparisons that the
low-rank linear attention lacks
([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]); decoding keeps
the last $w$ keys and values.

In the paper the two are **separate layers** of a hybrid stack (with gated short
convolutions as well). This reference puts both in one mixer: two branches with their own
projections, run in parallel on the same input and summed,
$\mathrm{Based}(x) = \mathrm{LinAttn}_\phi(x)\, W_O^{\text{lin}} +
\mathrm{SWA}_w(x)\, W_O^{\text{win}}$,
so one registered layer has both the global (linear) and the local (exact) path.

**Non-causal form** (``causal=False``; the paper is a language model): linear attention
over all keys, and a symmetric window (keys $i - w + 1 \dots i + w - 1$).

Cost: $O(n\, d'^2 d)$ for the linear branch (plus $O(n c d'^2)$ inside the causal chunks)
and $O(n w d)$ for the window, memory $O(n (d'^2 + w))$.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections, sliding_window_blocks, softmax_attention
from implementations._registry import register
from implementations.linear_transformer import EPS, linear_attention

__all__ = ["Based", "BasedState", "taylor_feature_map"]

BasedState = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def taylor_feature_map(x: Tensor) -> Tensor:
    r"""$\phi(x) = [1, x / d'^{1/4}, (x \otimes x) / (\sqrt 2 \sqrt{d'})]$ over the last dim.

    Args:
        x: ``[..., d']``.

    Returns:
        ``[..., 1 + d' + d'^2]``, in float32 (float64 stays float64).

    Examples:
        >>> import torch
        >>> from implementations.based import taylor_feature_map
        >>> q, k = torch.randn(2, 16).unbind(0)
        >>> s = (q @ k) / 4  # q.k / sqrt(d'), d' = 16
        >>> phi = taylor_feature_map(torch.stack([q, k]))
        >>> torch.allclose(phi[0] @ phi[1], 1 + s + s**2 / 2, atol=1e-5)
        True
    """
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    d = x.shape[-1]
    squares = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2)  # [..., d'^2]: vec(x x^T)
    ones = torch.ones_like(x[..., :1])  # [..., 1]
    return torch.cat([ones, x / d**0.25, squares / (2**0.5 * d**0.5)], dim=-1)


@register("based", kind="attention", supports_causal=True)
class Based(nn.Module):
    r"""Taylor linear attention and sliding-window softmax attention, summed.

    Args:
        dim: Model width.
        heads: Number of heads (of both branches).
        causal: Autoregressive (the paper's language model); else global linear attention and
            a symmetric window.
        feature_dim: $d'$, the query/key width of the linear branch per head (paper: 16).
        window_size: $w$, keys seen by the window branch: $i - w + 1 \dots i$ (paper: 64).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("based", dim=32, heads=4, causal=True, window_size=4)
        >>> x = torch.randn(2, 11, 32)
        >>> y = layer(x)
        >>> y.shape
        torch.Size([2, 11, 32])
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(11):  # constant-size linear state plus a window cache
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5)
        True
    """

    def __init__(
        self,
        dim: int,
        heads: int = 16,
        causal: bool = False,
        *,
        feature_dim: int = 16,
        window_size: int = 64,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.causal = causal
        self.heads = heads
        self.window_size = window_size
        # The linear branch: narrow queries and keys (d' each), full-width values.
        self.linear = HeadProjections(dim, heads)
        self.linear.to_q = nn.Linear(dim, heads * feature_dim, bias=False)
        self.linear.to_k = nn.Linear(dim, heads * feature_dim, bias=False)
        self.window = HeadProjections(dim, heads)

    def _linear_branch(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Normalised Taylor linear attention: ``[b, n, dim]`` -> ``[b, h, n, d]``."""
        q, k, v = self.linear.qkv(x)  # [b, h, n, d'], [b, h, n, d'], [b, h, n, d]
        phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)  # [b, h, n, m]
        v = v.float()
        if mask is not None:
            keep = mask[:, None, :, None]  # [b, 1, n, 1]
            phi_k, v = phi_k.masked_fill(~keep, 0), v.masked_fill(~keep, 0)
        return linear_attention(phi_q, phi_k, v, causal=self.causal)

    def _window_branch(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Exact softmax attention over the window: ``[b, n, dim]`` -> ``[b, h, n, d]``."""
        q, k, v = self.window.qkv(x)  # [b, h, n, d] each
        before = self.window_size - 1
        after = 0 if self.causal else before
        key_mask = None if mask is None else mask[:, None, :]  # [b, 1, n]
        blocks = sliding_window_blocks(q, k, v, before, after, key_mask)
        o = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)  # [b, h, nb, c, d]
        return o.flatten(-3, -2)[..., : x.shape[1], :]  # [b, h, n, d]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        linear = self.linear.out(self._linear_branch(x, mask).to(x.dtype))
        return linear + self.window.out(self._window_branch(x, mask).to(x.dtype))

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> BasedState:
        """Zero linear state ``(S [b, h, m, d], z [b, h, m])`` and an empty window cache.

        The cache is ``(keys [b, h, w, d], values [b, h, w, d], filled [b, w])``, the
        newest key last.
        """
        device = self.window.to_out.weight.device if device is None else device
        dtype = self.window.to_out.weight.dtype if dtype is None else dtype
        h, d = self.heads, self.window.dim_head
        m = 1 + self.linear.to_q.out_features // h + (self.linear.to_q.out_features // h) ** 2
        s = torch.zeros(batch, h, m, d, device=device)
        z = torch.zeros(batch, h, m, device=device)
        keys = torch.zeros(batch, h, self.window_size, d, device=device, dtype=dtype)
        filled = torch.zeros(batch, self.window_size, dtype=torch.bool, device=device)
        return s, z, keys, keys.clone(), filled

    def step(self, x_t: Tensor, state: BasedState) -> tuple[Tensor, BasedState]:
        r"""Decode one position: update $(S, z)$, shift the window cache, attend both.

        Args:
            x_t: ``[b, dim]``.
            state: From ``init_state`` or the previous step.

        Returns:
            ``(y_t [b, dim], new state)``.
        """
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        s, z, keys, values, filled = state
        x = x_t.unsqueeze(1)  # [b, 1, dim]: a length-1 sequence
        q, k, v = self.linear.qkv(x)  # [b, h, 1, d'] ...
        phi_q, phi_k = taylor_feature_map(q[:, :, 0]), taylor_feature_map(k[:, :, 0])  # [b, h, m]
        s = s + phi_k.unsqueeze(-1) * v[:, :, 0].float().unsqueeze(-2)  # [b, h, m, d]
        z = z + phi_k
        num = torch.einsum("bhm,bhmd->bhd", phi_q, s)  # [b, h, d]
        den = (phi_q * z).sum(-1, keepdim=True)  # [b, h, 1]
        linear = (num / den.clamp_min(EPS)).unsqueeze(2)  # [b, h, 1, d]

        wq, wk, wv = self.window.qkv(x)  # [b, h, 1, d] each
        keys = torch.cat([keys[:, :, 1:], wk.to(keys.dtype)], dim=2)  # [b, h, w, d]
        values = torch.cat([values[:, :, 1:], wv.to(values.dtype)], dim=2)
        filled = torch.cat([filled[:, 1:], filled.new_ones(filled.shape[0], 1)], dim=1)
        window = softmax_attention(wq, keys, values, filled[:, None, None, :])  # [b, h, 1, d]

        y = self.linear.out(linear.to(x.dtype)) + self.window.out(window.to(x.dtype))
        return y[:, 0], (s, z, keys, values, filled)
