r"""DeltaNet: linear attention with the delta rule, trained in parallel over the sequence.

Paper: *Parallelizing Linear Transformers with the Delta Rule over Sequence Length*, Songlin
Yang, Bailin Wang, Yu Zhang, Yikang Shen and Yoon Kim, NeurIPS 2024 (arXiv:2406.06484).

Linear attention only ever *adds* to its state, $S_t = S_{t-1} + v_t k_t^\top$, so keys that
are not orthogonal interfere and nothing is forgotten. The delta rule (Schlag et al., 2021)
first retrieves what the state holds for the key, $S_{t-1} k_t$, and writes back a
$\beta_t$-weighted correction towards the new value:

$$
S_t = S_{t-1} - \beta_t (S_{t-1} k_t - v_t) k_t^\top
    = S_{t-1}(I - \beta_t k_t k_t^\top) + \beta_t v_t k_t^\top, \qquad o_t = S_t q_t ,
$$

a generalised Householder transition (one step of online regression of values on keys).

**Chunkwise parallel form** (the paper's contribution;
[`delta_chunkwise`][implementations._chunked_linear.delta_chunkwise]). The product of the
chunk's Householder matrices has the compact **WY representation**
$\prod_t (I - \beta_t k_t k_t^\top) = I - \sum_t w_t k_t^\top$, and the state is
$S_t = S_0 + \sum_{i \le t} u_i k_i^\top$ with "pseudo-values" $u_i$. Both come from one unit
lower-triangular solve per chunk, the **UT transform**
$T = (I + \mathrm{tril}(\mathrm{diag}(\beta) K K^\top, -1))^{-1} \mathrm{diag}(\beta)$:
$W = T K$, $U = T V - W S_0^\top$. Then, for a chunk,

$$
O = Q S_0^\top + (Q K^\top \odot M)\, U, \qquad S_c^\top = S_0^\top + K^\top U ,
$$

$M$ causal; everything but the $O(d^2)$ state update runs in parallel over the chunk and all
$W, T V$ over all chunks at once. $O(n c d + n d^2)$ time, no $n \times n$ matrix and no
per-token state. **Recurrent form** (decoding): ``step`` applies the update once per token
([`delta_step`][implementations._chunked_linear.delta_step]).

As in the paper, queries and keys go through a SiLU and are then **L2-normalised** (so that
$\|k_t\| = 1$ and $I - \beta_t k_t k_t^\top$ has eigenvalues in $[0, 1]$: a stable
recurrence), values through a SiLU, $\beta_t = \sigma(x_t W_\beta)$ per head, and each head's
output is RMS-normalised before $W_O$. Not reproduced: the short depthwise convolutions the
paper places before the feature maps (a separate, local mixing component); queries are not
scaled by $d^{-1/2}$, a factor the output RMSNorm removes.

**Non-causal form** (``causal=False``; the paper is a decoder): the delta rule run forward
plus the delta rule run over the reversed sequence (the current token read only once)
([`bidirectional`][implementations._chunked_linear.bidirectional]).

Padded tokens get zero keys and values and $\beta = 0$: they leave the state unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._chunked_linear import bidirectional, delta_chunkwise, delta_step
from implementations._helpers import HeadProjections
from implementations._registry import register

__all__ = ["DeltaNet", "feature_map"]


def feature_map(x: Tensor) -> Tensor:
    r"""$\phi(x) = \mathrm{SiLU}(x) / \|\mathrm{SiLU}(x)\|_2$ over the last dimension.

    Examples:
        >>> import torch
        >>> from implementations.deltanet import feature_map
        >>> torch.allclose(feature_map(torch.randn(3, 5)).norm(dim=-1), torch.ones(3))
        True
    """
    return F.normalize(F.silu(x), dim=-1, eps=1e-6)


@register("deltanet", kind="attention", supports_causal=True)
class DeltaNet(nn.Module):
    r"""Multi-head DeltaNet (chunkwise WY training form, recurrent decoding).

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: The paper's decoder; else forward plus backward delta rule.
        chunk_size: Positions per chunk of the chunkwise form (paper's kernels: 64).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("deltanet", dim=32, heads=4, causal=True)
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

    def __init__(self, dim: int, heads: int = 8, causal: bool = False, *, chunk_size: int = 64):
        super().__init__()
        self.causal = causal
        self.chunk_size = chunk_size
        self.proj = HeadProjections(dim, heads)
        self.to_beta = nn.Linear(dim, heads, bias=False)
        self.norm = nn.RMSNorm(self.proj.dim_head, eps=1e-5)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""$\phi(q), \phi(k)$, SiLU values (``[b, h, n, d]`` each) and $\beta$ ``[b, h, n]``."""
        q, k, v = (t.float() for t in self.proj.qkv(x))  # [b, h, n, d] each
        beta = torch.sigmoid(self.to_beta(x).float()).transpose(1, 2)  # [b, h, n]
        return feature_map(q), feature_map(k), F.silu(v), beta

    def _output(self, x: Tensor, o: Tensor) -> Tensor:
        """RMSNorm per head, then $W_O$: ``o`` ``[b, h, n, d]`` -> ``[b, n, dim]``."""
        o = F.rms_norm(o, o.shape[-1:], self.norm.weight.float(), self.norm.eps)
        return self.proj.out(o.to(x.dtype))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v, beta = self._project(x)
        if mask is not None:
            keep = mask[:, None, :]  # [b, 1, n]
            k, v = k.masked_fill(~keep[..., None], 0), v.masked_fill(~keep[..., None], 0)
            beta = beta.masked_fill(~keep, 0)  # a padded token writes nothing
        if self.causal:
            o = delta_chunkwise(q, k, v, beta, chunk_size=self.chunk_size)  # [b, h, n, d]
        else:
            o = bidirectional(
                delta_chunkwise, q, k, v, beta, gate_is_decay=False, chunk_size=self.chunk_size
            )
        return self._output(x, o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """The state before the first token: ``[b, h, d, d]`` float32 zeros (keys x values)."""
        device = self.to_beta.weight.device if device is None else device
        d = self.proj.dim_head
        return torch.zeros(batch, self.proj.heads, d, d, device=device)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        r"""Decode one position: $S \leftarrow S (I - \beta k k^\top) + \beta v k^\top$.

        Args:
            x_t: ``[b, dim]``.
            state: ``[b, h, d, d]`` from ``init_state`` or the previous step.

        Returns:
            ``(y_t [b, dim], new state)``.
        """
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        x = x_t.unsqueeze(1)  # [b, 1, dim]: a length-1 sequence
        q, k, v, beta = self._project(x)
        o, state = delta_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0], state)
        return self._output(x, o.unsqueeze(2))[:, 0], state
