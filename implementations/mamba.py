r"""Mamba: a selective state-space model, with input-dependent $\Delta$, $B$ and $C$.

Paper: *Mamba: Linear-Time Sequence Modeling with Selective State Spaces*, Albert Gu and
Tri Dao, 2023 (arXiv:2312.00752).

S4's SSM is time-invariant, so it can be a convolution but cannot choose what to remember.
Mamba makes the step size and the input and output matrices functions of the token
(*selection*), per channel $d$ with a diagonal state $A \in \mathbb{R}^{N}$ (S4D-real
initialisation $A_m = -(m+1)$):

$$
\Delta_t = \mathrm{softplus}\big(W_\Delta (W_r x_t) + b_\Delta\big), \quad
B_t = W_B x_t, \quad C_t = W_C x_t,
$$

discretised by zero-order hold as in the paper,

$$
\bar A_t = e^{\Delta_t A}, \qquad \bar B_t = (\Delta_t A)^{-1}(e^{\Delta_t A} - I)\,\Delta_t B_t,
\qquad h_t = \bar A_t h_{t-1} + \bar B_t x_t, \qquad y_t = C_t^\top h_t + D x_t .
$$

(The official CUDA kernel simplifies $\bar B_t$ to $\Delta_t B_t$; this reference keeps the
exact ZOH formula.) The system is no longer a convolution; it is a linear recurrence with
time-varying diagonal coefficients, computed in parallel by a scan. The paper's kernel fuses
the scan into on-chip memory; here [`selective_scan`][implementations._scan.selective_scan]
runs a Hillis-Steele prefix scan inside chunks of 16 positions and carries the state across
chunks: $O(n d N \log c)$ work, and without autograd only one chunk's states ``[b, c, d, N]``
at a time. Under autograd the chunks' states are kept for the backward up to $2^{26}$ numbers
($n = 4096$ at width 512); longer inputs recompute each chunk in the backward, as the paper's
kernel recomputes its states.

**Where the time goes**: every step of the scan is an elementwise product or sum over the
states ``[b, c, d, N]`` (``d`` = 1024 channels of 16 states at width 512), so the run is
bound by memory traffic, $\log_2 c$ passes per chunk. Chunks of 2048 made eleven passes
(and slicing the inputs per chunk made the backward quadratic): at $n = 2048$ (dim 512, one
thread) the causal forward took 4.6 s and forward+backward 20.7 s. Chunks of 16 make four
passes for a Python loop of $n / 16$ steps: 0.37 s and 1.4 s at 2048, 1.5 s and 6.1 s at
8192, where exact attention's fused kernel takes 1.1 s and 3.9 s. The remaining gap is the
state tensor itself, $d N = 16384$ numbers per token written and read a few times, which the
paper's kernel keeps in on-chip memory and this reference cannot. The same tensor bounds
training memory: the backward kept every chunk's states and scan intermediates, about a
dozen times $n d N$ floats per direction, and the bidirectional layer's forward+backward at
$n = 8192$ (dim 512) did not fit in this machine's 24 GB; it now recomputes the chunks there,
one more forward pass of the scan in exchange for memory linear in $n$ at fixed $d N$
(3.2 GB peak for the causal forward+backward at 8192, 8.1 s on one thread). In the shipped
benchmark (two threads) that leaves Mamba 1.31x exact attention forward and 2.25x
forward+backward at 8192, causal (bidirectional: 1.78x and 3.01x), and 0.82x forward at
16384: the layer does 0.18x exact attention's FLOPs at 8192 but at 33 GFLOP/s, against the
fused kernel's 242, because every one of them is an elementwise pass over the state tensor.
A fused scan kernel, not another algorithm, is what the remaining gap needs.

[`Mamba.step`][implementations.mamba.Mamba.step] is the recurrence for decoding, $O(d N)$ per
token.

**Which parts of the Mamba block are in the layer.** The whole mixer of the paper's block
(the paper's block diagram) except the surrounding normalisation and residual, which the Transformer
slot provides: an input projection to $2 \cdot$ ``expand`` $\cdot$ ``dim`` channels split into
the SSM branch $x$ and the gate $z$; a short causal depthwise convolution (width
``d_conv``) and SiLU on $x$; the selective SSM; the gate $y \odot \mathrm{SiLU}(z)$; the
output projection. ``heads`` is accepted for the common interface and unused (Mamba's SSM
is per channel).

**Non-causal form** (``causal=False``): bidirectional, as bidirectional Mamba variants do:
the same input projection and gate, and a second convolution + selective SSM (its own
parameters) run over the reversed sequence; the two directions are summed before the gate.

**Padding.** Padded tokens get $\Delta_t = 0$ (so $\bar A_t = 1$, $\bar B_t = 0$: the state
passes through them unchanged) and zero input to the convolution.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import zero_padding
from implementations._registry import Range, register
from implementations._scan import causal_depthwise_conv, selective_scan

__all__ = ["Mamba", "SelectiveSSM"]

# Positions per chunk of the parallel scan: a loop over n / 16 chunks, each scanned in
# log2(16) = 4 vectorised steps (the fastest here; see the module docstring).
SCAN_CHUNK = 16

MambaState = tuple[Tensor, Tensor]  # (last d_conv - 1 conv inputs [b, w-1, d_inner], h [b, d, N])


class SelectiveSSM(nn.Module):
    r"""One direction of Mamba's mixer: causal conv, SiLU, selective SSM, $+ D x$.

    Args:
        d_inner: Channels $d$ of the SSM branch.
        d_state: State size $N$ per channel.
        d_conv: Width of the causal depthwise convolution.
        dt_rank: Rank $r$ of the $\Delta$ projection.
        dt_min: Smallest initial $\Delta$.
        dt_max: Largest initial $\Delta$.

    Examples:
        >>> import torch
        >>> from implementations.mamba import SelectiveSSM
        >>> ssm = SelectiveSSM(8, d_state=4, d_conv=3, dt_rank=2, dt_min=0.001, dt_max=0.1)
        >>> ssm(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self, d_inner: int, d_state: int, d_conv: int, dt_rank: int, dt_min: float, dt_max: float
    ) -> None:
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.conv_weight = nn.Parameter(torch.empty(d_inner, d_conv).uniform_(-1, 1) / d_conv**0.5)
        self.conv_bias = nn.Parameter(torch.zeros(d_inner))
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)  # -> dt, B, C
        self.dt_proj = nn.Linear(dt_rank, d_inner)
        nn.init.uniform_(self.dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
        # Bias so that softplus(bias) is log-uniform in [dt_min, dt_max] (the paper's init).
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)))
        dt = (dt * dt_min).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^{-1}(dt)
        # S4D-real: A_m = -(m + 1), stored as log(-A) so that A stays negative.
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(a.log())  # [d, N]
        self.D = nn.Parameter(torch.ones(d_inner))

    def selection(self, x: Tensor, real: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        r"""$(\Delta, B, C)$ from the convolved input ``[b, n, d]``; $\Delta = 0$ where padded."""
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # [b, n, d]
        if real is not None:
            delta = delta.masked_fill(~real[..., None], 0)  # identity step at padded tokens
        return delta, B, C  # [b, n, d], [b, n, N], [b, n, N]

    @property
    def A(self) -> Tensor:
        """``[d, N]``, negative."""
        return -self.A_log.float().exp()

    def forward(self, x: Tensor, real: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, d]`` (padded positions already zero) -> ``[b, n, d]``."""
        x = F.silu(causal_depthwise_conv(x, self.conv_weight, self.conv_bias))  # [b, n, d]
        delta, B, C = self.selection(x, real)
        y, _ = selective_scan(x, delta, self.A, B, C, chunk_size=SCAN_CHUNK)  # [b, n, d]
        return y + self.D.to(y.dtype) * x

    def step(self, x_t: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """One token ``x_t`` ``[b, d]`` of the recurrence -> ``(y_t [b, d], state)``."""
        window, h = state
        inputs = torch.cat([window, x_t[:, None]], dim=1)  # [b, w, d]
        x = F.silu((inputs * self.conv_weight.T).sum(1) + self.conv_bias)  # [b, d]
        delta, B, C = self.selection(x[:, None], None)  # [b, 1, .]
        dA = delta[:, 0, :, None].to(h.dtype) * self.A.to(h.dtype)  # [b, d, N]
        b_bar = dA.expm1() / self.A.to(h.dtype) * B.to(h.dtype)  # ZOH \bar B_t, [b, d, N]
        h = dA.exp() * h + b_bar * x[..., None].to(h.dtype)  # h_t = \bar A h_{t-1} + \bar B x_t
        y = (h * C.to(h.dtype)).sum(-1).to(x.dtype) + self.D * x  # [b, d]
        return y, (inputs[:, 1:], h)


@register("mamba", kind="attention", supports_causal=True)
class Mamba(nn.Module):
    r"""Mamba's mixer: projection, causal conv, selective SSM, SiLU gate, projection.

    Args:
        dim: Model width.
        heads: Unused (the SSM is per channel); accepted for the common interface.
        causal: Causal scan (decodes with ``step``); else bidirectional.
        d_state: State size $N$ per channel.
        d_conv: Width of the short causal convolution.
        expand: Inner width $d$ = ``expand * dim``.
        dt_rank: Rank of the $\Delta$ projection; None is the paper's ``ceil(dim / 16)``.
        dt_min: Smallest initial $\Delta$.
        dt_max: Largest initial $\Delta$.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("mamba", dim=16, heads=2, causal=True)
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
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        if dt_min > dt_max:
            raise ValueError(f"dt_min ({dt_min}) must not exceed dt_max ({dt_max})")
        self.causal = causal
        self.d_inner = expand * dim
        rank = math.ceil(dim / 16) if dt_rank is None else dt_rank
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=False)  # -> x, z
        args = (self.d_inner, d_state, d_conv, rank, dt_min, dt_max)
        self.forward_ssm = SelectiveSSM(*args)
        self.backward_ssm = None if causal else SelectiveSSM(*args)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        u, z = self.in_proj(x).chunk(2, dim=-1)  # [b, n, d] each
        u = zero_padding(u, mask)  # padded tokens never reach the convolution
        y = self.forward_ssm(u, mask)  # [b, n, d]
        if self.backward_ssm is not None:
            back_mask = None if mask is None else mask.flip(1)
            y = y + self.backward_ssm(u.flip(1), back_mask).flip(1)
        return self.out_proj(y * F.silu(z))

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> MambaState:
        """Zero conv window ``[b, d_conv - 1, d]`` and SSM state ``[b, d, N]`` (float32+)."""
        ssm = self.forward_ssm
        dtype = dtype or torch.float32
        window = torch.zeros(
            batch, ssm.conv_weight.shape[1] - 1, self.d_inner, device=device, dtype=dtype
        )
        state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        h = torch.zeros(batch, self.d_inner, ssm.d_state, device=device, dtype=state_dtype)
        return window, h

    def step(self, x_t: Tensor, state: MambaState) -> tuple[Tensor, MambaState]:
        """Decode one position: ``x_t`` ``[b, dim]`` -> ``(y_t [b, dim], state)``."""
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        u, z = self.in_proj(x_t).chunk(2, dim=-1)  # [b, d] each
        y, state = self.forward_ssm.step(u, state)
        return self.out_proj(y * F.silu(z)), state
