r"""Mamba-2: the state-space dual (SSD) layer, an SSM that is also masked linear attention.

Paper: *Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality*, Tri Dao and Albert Gu, ICML 2024 (arXiv:2405.21060).

Mamba-2 restricts Mamba's diagonal $A$ to a **scalar times the identity** per head,
$\bar A_t = a_t = e^{\Delta_t A_h}$. Then the SSM over a head's $P$ channels,

$$
h_t = a_t\, h_{t-1} + B_t\, (\Delta_t x_t)^\top \in \mathbb{R}^{N \times P}, \qquad
y_t = h_t^\top C_t + D x_t ,
$$

unrolls to a masked attention-like product with a **1-semiseparable** mask,

$$
y = \big(L \circ C B^\top\big)(\Delta \odot x) + D x, \qquad
L_{ts} = \prod_{r = s+1}^{t} a_r = e^{\sum_{r=s+1}^{t} \Delta_r A_h} \ (s \le t),\quad 0 \ (s > t):
$$

$C$, $B$ and $\Delta x$ play the roles of queries, keys and values
([`ssd_quadratic`][implementations.mamba_2.ssd_quadratic], $O(n^2)$). The SSD algorithm
([`ssd_chunked`][implementations.mamba_2.ssd_chunked]) splits the sequence into chunks of
length $Q$: inside a chunk the quadratic masked form (matrix products), across chunks the
recurrence on the $N \times P$ states, passed chunk to chunk:
$O(n Q (N + P))$ work per head, linear in $n$. It is exactly the decayed causal linear
attention of [`causal_linear_attention`][implementations._helpers.causal_linear_attention]
with $q = C$, $k = B$, $v = \Delta x$ and $\log$-decay $\Delta_t A_h$, which this module
reuses. [`ssd_recurrent`][implementations.mamba_2.ssd_recurrent] is the linear recurrence
(the decoding form, [`Mamba2.step`][implementations.mamba_2.Mamba2.step]).

**The layer** is the Mamba-2 block's mixer (normalisation and residual come from the
Transformer slot): one input projection to $z$, $x$, $B$, $C$ (one group, shared by the heads)
and $\Delta$ (one per head); a short causal depthwise convolution and SiLU on $(x, B, C)$;
$\Delta = \mathrm{softplus}(\cdot + b_\Delta)$; SSD with $A_h = -e^{\log a_h}$; $+ D x$; the
gated RMSNorm $\mathrm{RMSNorm}(y \odot \mathrm{SiLU}(z))$; the output projection. ``heads``
is the number of SSD heads, each of width $P$ = ``expand * dim / heads`` (the official module
fixes $P = 64$ instead; its other defaults, $N = 128$ and $Q = 256$, are kept). As in Mamba-2,
$\bar B_t = \Delta_t B_t$ (Euler for $B$, ZOH for $A$).

**Non-causal form** (``causal=False``): bidirectional: a second convolution and SSD with their
own parameters run over the reversed sequence, summed with the forward SSD before the gate.

**Padding.** Padded tokens get $\Delta_t = 0$ ($a_t = 1$, no input: the state passes through
unchanged) and zero input to the convolution.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from implementations._helpers import causal_linear_attention, zero_padding
from implementations._registry import Range, register
from implementations._scan import causal_depthwise_conv

__all__ = ["Mamba2", "ssd_chunked", "ssd_quadratic", "ssd_recurrent"]

Mamba2State = tuple[Tensor, Tensor]  # (conv window [b, w-1, c], SSM state [b, H, N, P])


def ssd_chunked(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int = 256
) -> Tensor:
    r"""The SSD algorithm: quadratic inside chunks, state passing across chunks.

    Args:
        x: ``[b, H, n, P]``.
        dt: ``[b, H, n]``, $\Delta \ge 0$.
        A: ``[H]``, negative.
        B: ``[b, n, N]`` (shared by the heads).
        C: ``[b, n, N]``.
        chunk_size: $Q$.

    Returns:
        ``[b, H, n, P]`` (without the $D x$ skip), in ``x``'s dtype, computed in float32.

    Examples:
        >>> import torch
        >>> from implementations.mamba_2 import ssd_chunked, ssd_quadratic
        >>> x, dt = torch.randn(1, 2, 7, 3), torch.rand(1, 2, 7)
        >>> A, B, C = -torch.rand(2), torch.randn(1, 7, 4), torch.randn(1, 7, 4)
        >>> torch.allclose(ssd_chunked(x, dt, A, B, C, chunk_size=3),
        ...                ssd_quadratic(x, dt, A, B, C), atol=1e-5)
        True
    """
    log_decay = dt * A[:, None]  # [b, H, n]: log a_t = Delta_t A_h
    v = x * dt[..., None]  # [b, H, n, P]: Delta_t x_t
    return causal_linear_attention(C[:, None], B[:, None], v, log_decay, chunk_size)


def ssd_quadratic(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    r"""The masked-attention form $y = (L \circ C B^\top)(\Delta \odot x)$, $O(n^2)$ (for tests).

    $L_{ts} = \exp(\mathrm{cs}_t - \mathrm{cs}_s)$ for $s \le t$, with $\mathrm{cs}$ the
    cumulative sum of $\Delta A$ (the 1-semiseparable mask). Same arguments as
    [`ssd_chunked`][implementations.mamba_2.ssd_chunked]; computed in ``x``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations.mamba_2 import ssd_quadratic
        >>> ssd_quadratic(torch.ones(1, 1, 3, 1), torch.ones(1, 1, 3), torch.zeros(1),
        ...               torch.ones(1, 3, 1), torch.ones(1, 3, 1)).flatten()
        tensor([1., 2., 3.])
    """
    n = x.shape[-2]
    cs = (dt * A[:, None]).cumsum(-1)  # [b, H, n]
    lower = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
    segsum = (cs[..., :, None] - cs[..., None, :]).masked_fill(~lower, -math.inf)  # [b, H, n, n]
    scores = (C @ B.transpose(-1, -2))[:, None] * segsum.exp()  # [b, H, n, n]: L o C B^T
    return scores @ (x * dt[..., None])  # [b, H, n, P]


def ssd_recurrent(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""The linear recurrence $h_t = a_t h_{t-1} + B_t (\Delta_t x_t)^\top$, $y_t = h_t^\top C_t$.

    One position at a time (the decoding form); same arguments as
    [`ssd_chunked`][implementations.mamba_2.ssd_chunked] plus the state ``[b, H, N, P]``.

    Returns:
        ``(y [b, H, n, P], state [b, H, N, P])``, computed in ``x``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations.mamba_2 import ssd_quadratic, ssd_recurrent
        >>> x, dt = torch.randn(1, 2, 5, 3), torch.rand(1, 2, 5)
        >>> A, B, C = -torch.rand(2), torch.randn(1, 5, 4), torch.randn(1, 5, 4)
        >>> y, _ = ssd_recurrent(x, dt, A, B, C)
        >>> torch.allclose(y, ssd_quadratic(x, dt, A, B, C), atol=1e-5)
        True
    """
    b, heads, n, p = x.shape
    h = x.new_zeros(b, heads, B.shape[-1], p) if state is None else state
    outputs = []
    for t in range(n):
        a = torch.exp(dt[..., t] * A)[..., None, None]  # [b, H, 1, 1]
        u = x[:, :, t] * dt[..., t, None]  # [b, H, P]
        h = a * h + B[:, None, t, :, None] * u[:, :, None, :]  # [b, H, N, P]
        outputs.append((h * C[:, None, t, :, None]).sum(-2))  # [b, H, P]
    return torch.stack(outputs, dim=2), h


class SSDDirection(nn.Module):
    r"""One direction of the mixer: conv + SiLU on $(x, B, C)$, $\Delta$, SSD, $+ D x$.

    Args:
        d_inner: Width of $x$ ($H \cdot P$).
        heads: $H$.
        d_state: $N$.
        d_conv: Convolution width.
        chunk_size: SSD chunk length $Q$.
        dt_min: Smallest initial $\Delta$.
        dt_max: Largest initial $\Delta$.

    Examples:
        >>> import torch
        >>> from implementations.mamba_2 import SSDDirection
        >>> ssd = SSDDirection(8, 2, d_state=4, d_conv=3, chunk_size=4, dt_min=0.01, dt_max=0.1)
        >>> ssd(torch.randn(2, 5, 8 + 2 * 4), torch.randn(2, 5, 2)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        d_inner: int,
        heads: int,
        d_state: int,
        d_conv: int,
        chunk_size: int,
        dt_min: float,
        dt_max: float,
    ) -> None:
        super().__init__()
        self.d_inner, self.heads, self.d_state, self.chunk_size = (
            d_inner,
            heads,
            d_state,
            chunk_size,
        )
        channels = d_inner + 2 * d_state  # x, B, C
        self.conv_weight = nn.Parameter(torch.empty(channels, d_conv).uniform_(-1, 1) / d_conv**0.5)
        self.conv_bias = nn.Parameter(torch.zeros(channels))
        dt = torch.exp(torch.rand(heads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^{-1}(dt)
        self.A_log = nn.Parameter(torch.empty(heads).uniform_(1, 16).log())  # A_h in [-16, -1]
        self.D = nn.Parameter(torch.ones(heads))

    def split(self, xbc: Tensor, dt_raw: Tensor, real: Tensor | None) -> tuple[Tensor, ...]:
        r"""$(x\ [b, H, n, P],\ \Delta\ [b, H, n],\ B,\ C\ [b, n, N])$ from the convolved inputs."""
        x, B, C = xbc.split([self.d_inner, self.d_state, self.d_state], dim=-1)
        x = rearrange(x, "b n (h p) -> b h n p", h=self.heads)  # [b, H, n, P]
        dt = F.softplus(dt_raw + self.dt_bias).transpose(1, 2)  # [b, H, n]
        if real is not None:
            dt = dt.masked_fill(~real[:, None, :], 0)  # identity step at padded tokens
        return x, dt, B, C

    @property
    def A(self) -> Tensor:
        """``[H]``, negative."""
        return -self.A_log.float().exp()

    def forward(self, xbc: Tensor, dt_raw: Tensor, real: Tensor | None = None) -> Tensor:
        """``xbc`` ``[b, n, d + 2N]``, ``dt_raw`` ``[b, n, H]`` -> ``y`` ``[b, n, d]``."""
        xbc = F.silu(causal_depthwise_conv(xbc, self.conv_weight, self.conv_bias))
        x, dt, B, C = self.split(xbc, dt_raw, real)
        y = ssd_chunked(x, dt, self.A, B, C, self.chunk_size)  # [b, H, n, P]
        y = y + self.D.to(y.dtype)[:, None, None] * x
        return rearrange(y, "b h n p -> b n (h p)")

    def step(self, xbc_t: Tensor, dt_t: Tensor, state: Mamba2State) -> tuple[Tensor, Mamba2State]:
        """One token: ``xbc_t`` ``[b, d + 2N]``, ``dt_t`` ``[b, H]`` -> ``(y_t [b, d], state)``."""
        window, h = state
        inputs = torch.cat([window, xbc_t[:, None]], dim=1)  # [b, w, d + 2N]
        xbc = F.silu((inputs * self.conv_weight.T).sum(1) + self.conv_bias)  # [b, d + 2N]
        x, dt, B, C = self.split(xbc[:, None], dt_t[:, None], None)
        x_h, dt_h, a_h, b_h, c_h = (t.to(h.dtype) for t in (x, dt, self.A, B, C))
        y, h = ssd_recurrent(x_h, dt_h, a_h, b_h, c_h, state=h)  # [b, H, 1, P]
        y = y.to(x.dtype) + self.D[:, None, None] * x
        return rearrange(y, "b h n p -> b (n h p)"), (inputs[:, 1:], h)


@register("mamba-2", kind="attention", supports_causal=True)
class Mamba2(nn.Module):
    r"""Mamba-2's mixer: projection, conv, SSD, gated RMSNorm, projection.

    Args:
        dim: Model width.
        heads: Number of SSD heads $H$ (head width $P$ = ``expand * dim / heads``).
        causal: Causal SSD (decodes with ``step``); else bidirectional.
        d_state: State size $N$ (one group of $B$, $C$ shared by the heads).
        d_conv: Width of the short causal convolution.
        expand: Inner width = ``expand * dim``.
        chunk_size: SSD chunk length $Q$.
        dt_min: Smallest initial $\Delta$.
        dt_max: Largest initial $\Delta$.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("mamba-2", dim=16, heads=2, causal=True, d_state=8,
        ...                               chunk_size=4)
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

    option_ranges: ClassVar[dict[str, Range]] = {
        "dt_min": (0.0, 1.0, "(]"),
        "dt_max": (0.0, 1.0, "(]"),
    }

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        d_state: int = 128,
        d_conv: int = 4,
        expand: int = 2,
        chunk_size: int = 256,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        if (expand * dim) % heads:
            raise ValueError(f"expand * dim ({expand * dim}) must be a multiple of heads ({heads})")
        if dt_min > dt_max:
            raise ValueError(f"dt_min ({dt_min}) must not exceed dt_max ({dt_max})")
        self.causal = causal
        self.d_inner, self.heads, self.d_state = expand * dim, heads, d_state
        # -> z, (x, B, C), dt
        self.in_proj = nn.Linear(dim, 2 * self.d_inner + 2 * d_state + heads, bias=False)
        args = (self.d_inner, heads, d_state, d_conv, chunk_size, dt_min, dt_max)
        self.forward_ssd = SSDDirection(*args)
        self.backward_ssd = None if causal else SSDDirection(*args)
        self.norm = nn.RMSNorm(self.d_inner, eps=1e-5)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``z``, ``xbc``, ``dt_raw`` from ``x`` ``[..., dim]``."""
        return self.in_proj(x).split(
            [self.d_inner, self.d_inner + 2 * self.d_state, self.heads], dim=-1
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        z, xbc, dt_raw = self._project(x)  # [b, n, d], [b, n, d + 2N], [b, n, H]
        xbc = zero_padding(xbc, mask)  # padded tokens never reach the convolution
        y = self.forward_ssd(xbc, dt_raw, mask)  # [b, n, d]
        if self.backward_ssd is not None:
            back_mask = None if mask is None else mask.flip(1)
            y = y + self.backward_ssd(xbc.flip(1), dt_raw.flip(1), back_mask).flip(1)
        return self.out_proj(self.norm(y * F.silu(z)))

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Mamba2State:
        """Zero conv window ``[b, d_conv - 1, d + 2N]`` and SSD state ``[b, H, N, P]``."""
        dtype = dtype or torch.float32
        width = self.forward_ssd.conv_weight.shape
        window = torch.zeros(batch, width[1] - 1, width[0], device=device, dtype=dtype)
        state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        p = self.d_inner // self.heads
        h = torch.zeros(batch, self.heads, self.d_state, p, device=device, dtype=state_dtype)
        return window, h

    def step(self, x_t: Tensor, state: Mamba2State) -> tuple[Tensor, Mamba2State]:
        """Decode one position: ``x_t`` ``[b, dim]`` -> ``(y_t [b, dim], state)``."""
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        z, xbc, dt_raw = self._project(x_t)
        y, state = self.forward_ssd.step(xbc, dt_raw, state)  # [b, d]
        return self.out_proj(self.norm(y * F.silu(z))), state
