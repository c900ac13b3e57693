r"""Gated Linear Attention (GLA): linear attention with data-dependent diagonal forget gates.

Paper: *Gated Linear Attention Transformers with Hardware-Efficient Training*, Songlin Yang,
Bailin Wang, Yikang Shen, Rameswar Panda and Yoon Kim, ICML 2024 (arXiv:2312.06635).

Linear attention is an RNN with a matrix-valued state, $S_t = S_{t-1} + k_t^\top v_t$. GLA
lets every token decide how much of each key channel of the state to keep:

$$
S_t = (\alpha_t^\top \mathbf{1})\odot S_{t-1} + k_t^\top v_t, \qquad o_t = q_t S_t,
\qquad
\alpha_t = \sigma\big(x_t W_\alpha^1 W_\alpha^2 + b_\alpha\big)^{1/\tau} \in (0, 1)^{d_k},
$$

a low-rank (rank 16) projection and a temperature $\tau = 16$ that keeps the gates near 1
(slow forgetting) at initialisation. Unrolled, $o_t = \sum_{j \le t} (q_t \odot
\prod_{s=j+1}^{t} \alpha_s)^\top k_j\, v_j$: a decayed linear attention whose decay depends
on the data (RetNet's is a constant).

**Chunkwise form** (training,
[`gated_chunkwise`][implementations._chunked_linear.gated_chunkwise]): chunks of
``chunk_size`` positions carry the state; inside a chunk the paper's **secondary-level
chunking** is used: between sub-chunks of ``sub_chunk`` positions the decays are factored
relative to the query's sub-chunk start (every exponent $\le 0$, no overflow), inside a
sub-chunk the ``[s, s, d_k]`` pairwise decays are formed explicitly (the paper's log-space
step). $O(n (c + s) d + n d^2)$ time, no $n \times n$ matrix. **Recurrent form**
(decoding): ``step`` updates $S$ once per token
([`gated_step`][implementations._chunked_linear.gated_step]).

The layer (the paper's GLA block, the token mixer): $d_k = d / 2$ in total (``expand_k``),
$d_v = d$, keys scaled by $d_k^{-1/2}$ per head, and an output gate

$$
r_t = \mathrm{Swish}(x_t W_r + b_r), \qquad
y_t = \big(r_t \odot \mathrm{LN}(o_t)\big)\, W_O ,
$$

with $\mathrm{LN}$ a LayerNorm per head (no affine parameters, as in the authors' code).

**Non-causal form** (``causal=False``; the paper is a decoder): the recurrence forward plus
the recurrence over the reversed sequence (current token excluded), the weight between
positions $i < j$ being $\prod_{s=i+1}^{j} \alpha_s$ in both directions
([`bidirectional`][implementations._chunked_linear.bidirectional]).

Padded tokens get zero keys and values and gates $\alpha = 1$ (no decay), so they change
nothing for real tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._chunked_linear import bidirectional, gated_chunkwise, gated_step
from implementations._helpers import merge_heads, split_heads
from implementations._registry import register

__all__ = ["GatedLinearAttention"]


@register("gated-linear-attention", kind="attention", supports_causal=True)
class GatedLinearAttention(nn.Module):
    r"""Multi-head gated linear attention (chunkwise training form, recurrent decoding).

    Args:
        dim: Model width.
        heads: Number of heads (paper: 4).
        causal: The paper's decoder; else forward plus backward recurrence.
        expand_k: Total key width as a fraction of ``dim`` (paper: 0.5).
        gate_rank: Rank of the gate projection $W_\alpha^1 W_\alpha^2$ (paper: 16).
        gate_temperature: $\tau$ in $\alpha = \sigma(\cdot)^{1/\tau}$ (paper: 16).
        chunk_size: Positions per chunk of the chunkwise form.
        sub_chunk: Positions per secondary-level sub-chunk.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("gated-linear-attention", dim=32, heads=4, causal=True)
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

    option_ranges: ClassVar[dict[str, Any]] = {"expand_k": (0.0, 1.0, "(]")}

    def __init__(
        self,
        dim: int,
        heads: int = 4,
        causal: bool = False,
        *,
        expand_k: float = 0.5,
        gate_rank: int = 16,
        gate_temperature: int = 16,
        chunk_size: int = 64,
        sub_chunk: int = 16,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.causal = causal
        self.heads = heads
        self.temperature = gate_temperature
        self.chunk_size = chunk_size
        self.sub_chunk = sub_chunk
        self.dim_key = max(1, int(dim * expand_k) // heads)
        key_dim = heads * self.dim_key
        self.to_q = nn.Linear(dim, key_dim, bias=False)
        self.to_k = nn.Linear(dim, key_dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_gate = nn.Sequential(
            nn.Linear(dim, gate_rank, bias=False), nn.Linear(gate_rank, key_dim)
        )
        self.to_r = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""``q, k [b, h, n, dk]``, ``v [b, h, n, dv]`` and $\log \alpha$ ``[b, h, n, dk]``."""
        q = split_heads(self.to_q(x), self.heads).float()  # [b, h, n, dk]
        k = split_heads(self.to_k(x), self.heads).float() * self.dim_key**-0.5
        v = split_heads(self.to_v(x), self.heads).float()  # [b, h, n, dv]
        # log alpha = log(sigmoid(.)^(1/tau)) = logsigmoid(.) / tau, in (-inf, 0).
        log_alpha = F.logsigmoid(split_heads(self.to_gate(x), self.heads).float())
        return q, k, v, log_alpha / self.temperature

    def _output(self, x: Tensor, o: Tensor) -> Tensor:
        r"""$(\mathrm{Swish}(x W_r + b_r) \odot \mathrm{LN}(o)) W_O$, ``o`` ``[b, h, n, dv]``."""
        o = F.layer_norm(o, o.shape[-1:])  # [b, h, n, dv]: per head, no affine
        return self.to_out(F.silu(self.to_r(x)) * merge_heads(o).to(x.dtype))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v, log_alpha = self._project(x)
        if mask is not None:
            keep = mask[:, None, :, None]  # [b, 1, n, 1]
            k, v = k.masked_fill(~keep, 0), v.masked_fill(~keep, 0)
            log_alpha = log_alpha.masked_fill(~keep, 0)  # a padded token forgets nothing
        chunk, sub = self.chunk_size, self.sub_chunk
        if self.causal:
            o = gated_chunkwise(
                q, k, v, log_alpha, chunk_size=chunk, sub_chunk=sub
            )  # [b, h, n, dv]
        else:
            o = bidirectional(
                gated_chunkwise,
                q,
                k,
                v,
                log_alpha,
                gate_is_decay=True,
                chunk_size=chunk,
                sub_chunk=sub,
            )
        return self._output(x, o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """The state before the first token: ``S`` ``[b, h, dk, dv]``, float32 zeros."""
        device = self.to_q.weight.device if device is None else device
        dv = self.to_v.out_features // self.heads
        return torch.zeros(batch, self.heads, self.dim_key, dv, device=device)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        r"""Decode one position: $S \leftarrow (\alpha_t^\top \mathbf 1) \odot S + k_t^\top v_t$.

        Args:
            x_t: ``[b, dim]``.
            state: ``[b, h, dk, dv]`` from ``init_state`` or the previous step.

        Returns:
            ``(y_t [b, dim], new state)``.
        """
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        x = x_t.unsqueeze(1)  # [b, 1, dim]: a length-1 sequence
        q, k, v, log_alpha = (t[:, :, 0] for t in self._project(x))  # [b, h, d] each
        o, state = gated_step(q, k, v, log_alpha, state)  # [b, h, dv]
        return self._output(x, o.unsqueeze(2))[:, 0], state
