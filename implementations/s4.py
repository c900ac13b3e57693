r"""S4: a structured state-space model, run as a long convolution (training) or an RNN (decoding).

Paper: *Efficiently Modeling Long Sequences with Structured State Spaces*, Albert Gu,
Karan Goel and Christopher Ré, ICLR 2022 (arXiv:2111.00396).

Each of the $H$ = ``dim`` channels is a single-input single-output state-space model
$x'(t) = A x(t) + B u(t)$, $y(t) = C x(t) + D u(t)$ with state size $N$. Discretised with
step $\Delta$ it is a linear recurrence, and unrolled it is a convolution with the SSM
kernel:

$$
x_k = \bar A x_{k-1} + \bar B u_k, \quad y_k = C x_k + D u_k
\qquad\Longleftrightarrow\qquad
y = \bar K * u + D u, \quad
\bar K = \big(C \bar B,\ C \bar A \bar B,\ \dots,\ C \bar A^{L-1} \bar B\big).
$$

Training computes $\bar K$ once per forward and convolves by FFT in $O(n \log n)$
([`fft_conv`][implementations._scan.fft_conv]); decoding runs the recurrence
([`S4.step`][implementations.s4.S4.step]), $O(N)$ per token per channel.

**What this reference simplifies.** The paper's $A$ is HiPPO-LegS in *normal plus low-rank*
(NPLR) form $A = V \Lambda V^* - P Q^\top$, discretised with the bilinear transform, and
computes $\bar K$ through its truncated generating function at the roots of unity: a
Cauchy kernel plus a Woodbury correction for the low-rank term, then an inverse FFT. Here
$A$ is **diagonal**, $A = \Lambda$, the diagonal (normal) part of HiPPO-LegS's NPLR form
without the low-rank term (what the follow-up S4D calls S4D-LegS): its eigenvalues are
$-\tfrac12 + i\omega_n$, computed at initialisation from the skew-symmetric part of
HiPPO-LegS. The discretisation is zero-order hold,

$$
\bar\Lambda = e^{\Delta \Lambda}, \qquad \bar B = \Lambda^{-1}\big(e^{\Delta\Lambda} - I\big) B,
$$

and the kernel is a **Vandermonde** product instead of a Cauchy kernel:

$$
\bar K_\ell = 2\,\mathrm{Re}\sum_{n=0}^{N/2-1} C_n \bar B_n\, e^{\ell \Delta \Lambda_n},
$$

keeping one of each conjugate pair of modes ($N/2$ complex modes give a real kernel). It
costs $O(n N)$ multiply-adds per channel (the paper's Cauchy route $\tilde O(n + N)$). The
powers are not all taken by ``exp``: writing $\ell = iB + j$ with $B = \lceil\sqrt n\,\rceil$,

$$
e^{\ell \Delta\Lambda_n} = e^{iB\,\Delta\Lambda_n}\, e^{j \Delta\Lambda_n}, \qquad
\bar K_{iB + j} = 2\,\mathrm{Re} \sum_n \big(C_n \bar B_n e^{iB\,\Delta\Lambda_n}\big)\,
e^{j \Delta\Lambda_n},
$$

so the kernel is one batched matrix product of a ``[n/B, N/2]`` by a ``[N/2, B]`` matrix per
channel, and only $2\sqrt n$ complex exponentials per mode are evaluated instead of $n$. Where
the time goes: taking all $n$ powers by ``exp`` (blocks of 1024 positions) spent 59 % of an
S4 forward and backward in complex ``exp`` at $n = 8192$ (5.6 s of 9.6 s, dim 512, one
thread); the factorised form takes 0.8 s for the whole step. No ``[H, N, n]`` tensor is
stored.

$B$ starts at 1, $C$ complex normal, $\Delta$ log-uniform in ``[dt_min, dt_max]`` per channel
(our initialisation, as S4's code samples $\Delta$).

**Layer.** $y = W_O\, \mathrm{GELU}(\bar K * u + D u)$ with $u = x$: the SSM mixes along
the sequence per channel, the GELU and position-wise linear layer mix channels (the
paper's S4 layer). ``heads`` is accepted for the common interface and unused: S4 runs $H$
independent SSMs.

**Non-causal form** (``causal=False``): bidirectional, like the paper's code, which lays a
second kernel on the future lags: here a second SSM (its own parameters) gives a kernel
$\bar K'$ over the strictly future positions, $y_t = \sum_{s \le t} \bar K_{t-s} u_s + \sum_{s > t}
\bar K'_{s-t-1} u_s + D u_t$: one FFT product with a two-sided kernel.

**Padding.** Padded positions enter the convolution as zeros, so they cannot change real
outputs; they still occupy their time step (the kernel is time-invariant).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import zero_padding
from implementations._registry import Range, register
from implementations._scan import fft_conv

__all__ = ["S4", "DiagonalSSMKernel", "hippo_legs_diagonal"]


def hippo_legs_diagonal(state_size: int) -> Tensor:
    r"""The eigenvalues $-\tfrac12 + i\omega_n$ of HiPPO-LegS's normal part, one per conjugate pair.

    HiPPO-LegS, $A_{nk} = -\sqrt{(2n+1)(2k+1)}$ below the diagonal, $-(n+1)$ on it, plus
    $P P^\top$ with $P_n = \sqrt{n + 1/2}$ is $-\tfrac12 I$ plus a skew-symmetric matrix $J$;
    $iJ$ is Hermitian, so its (real) eigenvalues give the $\omega_n$.

    Returns:
        ``[state_size // 2]`` complex64, imaginary parts ascending and positive.

    Examples:
        >>> from implementations.s4 import hippo_legs_diagonal
        >>> lam = hippo_legs_diagonal(8)
        >>> lam.shape, bool((lam.real == -0.5).all()), bool((lam.imag > 0).all())
        (torch.Size([4]), True, True)
    """
    n = torch.arange(state_size, dtype=torch.float64)
    root = torch.sqrt(2 * n + 1)
    outer = root[:, None] * root[None, :] / 2  # [N, N]
    skew = torch.where(n[:, None] > n[None, :], -outer, outer).fill_diagonal_(0)
    omega = torch.linalg.eigvalsh(1j * skew.to(torch.complex128))  # ascending, in +/- pairs
    positive = omega[state_size - state_size // 2 :]  # [N/2]
    return torch.complex(torch.full_like(positive, -0.5), positive).to(torch.complex64)


class DiagonalSSMKernel(nn.Module):
    r"""$H$ diagonal SSMs (one per channel): their ZOH discretisation and convolution kernel.

    Args:
        channels: $H$.
        state_size: $N$ (real state size; $N/2$ complex modes are kept).
        dt_min: Smallest initial step $\Delta$.
        dt_max: Largest initial step $\Delta$.

    Examples:
        >>> import torch
        >>> from implementations.s4 import DiagonalSSMKernel
        >>> ssm = DiagonalSSMKernel(3, 8, 0.001, 0.1)
        >>> ssm.kernel(10).shape
        torch.Size([3, 10])
    """

    def __init__(self, channels: int, state_size: int, dt_min: float, dt_max: float) -> None:
        super().__init__()
        modes = max(state_size // 2, 1)
        lam = hippo_legs_diagonal(2 * modes)  # [N/2]
        # Re(Lambda) = -exp(.) stays negative (a stable system) under any update.
        self.log_neg_real = nn.Parameter(lam.real.neg().log().repeat(channels, 1))  # [H, N/2]
        self.imag = nn.Parameter(lam.imag.repeat(channels, 1))  # [H, N/2]
        self.B = nn.Parameter(torch.view_as_real(torch.ones(channels, modes, dtype=torch.cfloat)))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, modes, dtype=torch.cfloat)))
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)  # [H]

    def discrete(self) -> tuple[Tensor, Tensor, Tensor]:
        r"""$(\Delta\Lambda,\ \bar B,\ C)$, complex ``[H, N/2]`` each (computed in float32)."""
        real = -self.log_neg_real.float().exp()
        lam = torch.complex(real, self.imag.float())  # [H, N/2]
        dt_lam = self.log_dt.float().exp()[:, None] * lam  # Delta Lambda
        b = torch.view_as_complex(self.B.float().contiguous())
        c = torch.view_as_complex(self.C.float().contiguous())
        b_bar = dt_lam.expm1() / lam * b  # ZOH: Lambda^{-1} (e^{Delta Lambda} - 1) B
        return dt_lam, b_bar, c

    def kernel(self, length: int) -> Tensor:
        r"""The kernel $\bar K_\ell = 2\,\mathrm{Re} \sum_n C_n \bar B_n e^{\ell \Delta\Lambda_n}$.

        Positions $\ell = iB + j$ split the powers into $e^{iB\Delta\Lambda} e^{j\Delta\Lambda}$
        (see the module docstring): $B$ powers within a block, one per block across them.

        Returns:
            ``[H, length]``, float32.
        """
        dt_lam, b_bar, c = self.discrete()
        block = max(1, math.isqrt(length - 1) + 1)  # B = ceil(sqrt(n))
        starts = torch.arange(0, length, block, device=dt_lam.device, dtype=torch.float32)
        offsets = torch.arange(block, device=dt_lam.device, dtype=torch.float32)
        within = torch.exp(dt_lam[:, :, None] * offsets)  # [H, N/2, B]: e^{j dt Lambda}
        # C B e^{iB dt Lambda}: each block's start folded into the weights.
        across = (c * b_bar)[:, None, :] * torch.exp(dt_lam[:, None, :] * starts[:, None])
        # [H, n/B, N/2]
        # Re(a b) = Re a Re b - Im a Im b: two real products, no imaginary part computed.
        kernel = across.real @ within.real - across.imag @ within.imag  # [H, n/B, B]
        return 2 * kernel.flatten(1)[:, :length]  # [H, length]


@register("s4", kind="attention", supports_causal=True)
class S4(nn.Module):
    r"""An S4 layer: per-channel diagonal SSM convolution, GELU, position-wise output linear.

    Args:
        dim: Model width $H$ (one SSM per channel).
        heads: Unused (S4 has no heads); accepted for the common interface.
        causal: Causal convolution (decodes with ``step``); else bidirectional.
        d_state: State size $N$ per channel ($N/2$ complex modes).
        dt_min: Smallest initial discretisation step $\Delta$.
        dt_max: Largest initial discretisation step $\Delta$.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("s4", dim=16, heads=2, causal=True, d_state=8)
        >>> x = torch.randn(2, 9, 16)
        >>> y = layer(x)
        >>> y.shape
        torch.Size([2, 9, 16])
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
        d_state: int = 64,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        if dt_min > dt_max:
            raise ValueError(f"dt_min ({dt_min}) must not exceed dt_max ({dt_max})")
        self.causal = causal
        self.ssm = DiagonalSSMKernel(dim, d_state, dt_min, dt_max)
        # The reversed direction of the bidirectional form: its own SSM.
        self.ssm_backward = None if causal else DiagonalSSMKernel(dim, d_state, dt_min, dt_max)
        self.D = nn.Parameter(torch.randn(dim))  # skip connection D u
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        n = x.shape[1]
        u = zero_padding(x, mask).transpose(1, 2)  # [b, H, n]
        future = None if self.ssm_backward is None else self.ssm_backward.kernel(n)  # [H, n]
        y = fft_conv(u, self.ssm.kernel(n), future)  # [b, H, n]: K * u
        y = y + self.D.to(y.dtype)[:, None] * u  # + D u
        return self.to_out(F.gelu(y.transpose(1, 2)))  # [b, n, dim]

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """The zero state ``[batch, H, N/2]`` (complex; complex128 for float64)."""
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        modes = self.ssm.imag.shape[-1]
        return torch.zeros(batch, self.D.shape[0], modes, device=device, dtype=complex_dtype)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        r"""One token of the recurrence $x_k = \bar\Lambda x_{k-1} + \bar B u_k$,
        $y_k = 2\,\mathrm{Re}(C x_k) + D u_k$: ``x_t`` ``[b, dim]`` -> ``(y_t [b, dim], state)``."""
        if not self.causal:
            raise ValueError("step() is the causal (recurrent) form; build with causal=True")
        dt_lam, b_bar, c = (t.to(state.dtype) for t in self.ssm.discrete())  # [H, N/2]
        u = x_t.to(state.real.dtype)  # [b, H]
        state = dt_lam.exp() * state + b_bar * u[..., None]  # [b, H, N/2]
        y = 2 * (state * c).sum(-1).real + self.D.to(u.dtype) * u  # [b, H]
        return self.to_out(F.gelu(y.to(x_t.dtype))), state
