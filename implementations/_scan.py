r"""Shared pieces of the state-space and long-convolution mixers (S4, Mamba, Mamba-2, Hyena).

* [`causal_depthwise_conv`][implementations._scan.causal_depthwise_conv]: the short causal
  convolution that Mamba, Mamba-2 and Hyena run on their projections;
* [`fft_conv`][implementations._scan.fft_conv]: a long convolution by FFT in
  $O(n \log n)$, causal (lags $0 \dots n-1$) or two-sided (a second kernel for the future);
* [`selective_scan`][implementations._scan.selective_scan]: Mamba's diagonal, input-dependent
  recurrence $h_t = e^{\Delta_t A} h_{t-1} + \bar B_t x_t$, $y_t = C_t h_t$, by chunks.

The scan is exact (no approximation): inside a chunk of $c$ positions it runs a
Hillis-Steele parallel prefix scan, $\lceil \log_2 c \rceil$ vectorised steps that compose
the affine maps $h \mapsto a_t h + b_t$ (every factor $a_t = e^{\Delta_t A} \le 1$, so nothing
overflows); across chunks a Python loop carries the state. Only one chunk's states
``[b, c, d, N]`` are alive at a time without autograd, so the inference memory is
$O(n d + c d N)$, and the loop runs $n / c$ times, never over positions. Under autograd
every chunk's states are kept for the backward while they are small; past
``RECOMPUTE_ABOVE`` numbers each chunk is recomputed in the backward instead (activation
checkpointing per chunk), so training memory stays $O(n d + (n / c)\, d N)$.

Examples:
    >>> import torch
    >>> from implementations._scan import fft_conv
    >>> u, k = torch.randn(1, 2, 6), torch.randn(2, 6)
    >>> direct = torch.stack([sum(k[:, j] * u[..., t - j] for j in range(t + 1))
    ...                       for t in range(6)], -1)
    >>> torch.allclose(fft_conv(u, k), direct, atol=1e-5)
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["causal_depthwise_conv", "fft_conv", "selective_scan"]

# States (b * n * d * N numbers) above which the training scan recomputes its chunks in the
# backward: 2^26 floats is 256 MiB a tensor, passed from n = 8192 at dim 512 (d N = 16384).
RECOMPUTE_ABOVE = 2**26


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (for oracles); everything else computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def causal_depthwise_conv(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Causal depthwise convolution $y_{t,c} = b_c + \sum_{j=0}^{w-1} W_{c,j}\, x_{t-w+1+j,\,c}$.

    Position $t$ sees inputs $t-w+1 \dots t$ (zeros before the start), as
    ``nn.Conv1d(c, c, w, groups=c, padding=w - 1)`` cut to the first $n$ outputs.

    Args:
        x: ``[b, n, c]``.
        weight: ``[c, w]``; the last tap multiplies the current position.
        bias: ``[c]`` or None.

    Returns:
        ``[b, n, c]``.

    Examples:
        >>> import torch
        >>> from implementations._scan import causal_depthwise_conv
        >>> x = torch.arange(4.0).view(1, 4, 1)
        >>> causal_depthwise_conv(x, torch.tensor([[1.0, 10.0]])).flatten()
        tensor([ 0., 10., 21., 32.])
    """
    n, width = x.shape[1], weight.shape[-1]
    y = F.conv1d(
        x.transpose(1, 2), weight.unsqueeze(1), bias, padding=width - 1, groups=weight.shape[0]
    )  # [b, c, n + w - 1]
    return y[..., :n].transpose(1, 2)  # [b, n, c]


def fft_conv(u: Tensor, kernel: Tensor, future: Tensor | None = None) -> Tensor:
    r"""Long convolution by FFT: $y_t = \sum_{s \le t} k_{t-s} u_s\ [+ \sum_{s > t} f_{s-t-1} u_s]$.

    Both sequences are zero-padded to $2n$ so the circular convolution of the FFT is the
    linear one: $O(n \log n)$ per channel. With ``future``, the lags $-1 \dots -(n-1)$ hold
    the second kernel, at the far end of the same length-$2n$ kernel (a two-sided filter in
    one FFT product). Computed in float32 (float64 stays float64), returned in ``u``'s dtype.

    Args:
        u: ``[..., c, n]``.
        kernel: ``[c, n]``: $k_0 \dots k_{n-1}$, lags $0 \dots n-1$.
        future: ``[c, n]`` or None: $f_0 \dots f_{n-2}$ weigh lags $-1 \dots -(n-1)$
            (the last entry is unused).

    Returns:
        ``[..., c, n]``.

    Examples:
        >>> import torch
        >>> from implementations._scan import fft_conv
        >>> u = torch.tensor([[1.0, 0.0, 0.0]])
        >>> fft_conv(u, torch.tensor([[1.0, 2.0, 3.0]])).round(decimals=4)  # impulse response
        tensor([[1., 2., 3.]])
        >>> future = torch.tensor([[1.0, 2.0, 0.0]])  # lags -1, -2
        >>> fft_conv(u.flip(-1), torch.zeros(1, 3), future).round(decimals=4)
        tensor([[2., 1., 0.]])
    """
    n, dtype = u.shape[-1], u.dtype
    compute = _compute_dtype(dtype)
    k = kernel.to(compute)
    if future is not None:
        # Lag -j sits at index 2n - j of the circular kernel: [k_0..k_{n-1}, 0, f_{n-2}..f_0].
        tail = future.to(compute)[..., : n - 1].flip(-1)  # [c, n - 1]
        k = torch.cat([k, torch.zeros_like(k[..., :1]), tail], dim=-1)  # [c, 2n]
    k_f = torch.fft.rfft(k, n=2 * n)  # [c, n + 1]
    u_f = torch.fft.rfft(u.to(compute), n=2 * n)  # [..., c, n + 1]
    return torch.fft.irfft(u_f * k_f, n=2 * n)[..., :n].to(dtype)  # [..., c, n]


def _prefix_scan(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    r"""Compose the maps $h \mapsto a_t h + b_t$ along dim 1, by prefixes.

    Returns $(\prod_{s \le t} a_s,\ h_t)$ with $h_t$ the recurrence started from $h = 0$.

    Hillis-Steele: after the step with offset $o$, position $t$ holds the composition of
    the maps $t-2o+1 \dots t$; $\lceil \log_2 c \rceil$ steps cover the chunk.
    """
    offset = 1
    while offset < a.shape[1]:
        # The map ending `offset` earlier (identity a=1, b=0 before the start).
        a_prev = F.pad(a, (0, 0, 0, 0, offset, 0), value=1.0)[:, : a.shape[1]]
        b_prev = F.pad(b, (0, 0, 0, 0, offset, 0))[:, : b.shape[1]]
        b = b + a * b_prev  # apply the earlier map first, then this one
        a = a * a_prev
        offset *= 2
    return a, b


def selective_scan(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    state: Tensor | None = None,
    chunk_size: int = 2048,
) -> tuple[Tensor, Tensor]:
    r"""Mamba's selective SSM with zero-order-hold discretisation, by chunks.

    For every channel $d$ and state index $m$ (diagonal $A$, input-dependent $\Delta, B, C$):

    $$
    \bar A_t = e^{\Delta_t A}, \qquad
    \bar B_t = (\Delta_t A)^{-1}\big(e^{\Delta_t A} - 1\big)\,\Delta_t B_t
             = \frac{e^{\Delta_t A} - 1}{A}\, B_t, \qquad
    h_t = \bar A_t \odot h_{t-1} + \bar B_t\, x_t, \qquad y_t = C_t^\top h_t .
    $$

    A position with $\Delta_t = 0$ is the identity map ($\bar A = 1$, $\bar B = 0$): the
    layers use that to make padded tokens invisible.

    Args:
        x: ``[b, n, d]`` inputs.
        delta: ``[b, n, d]`` step sizes $\Delta \ge 0$.
        A: ``[d, N]``, negative real.
        B: ``[b, n, N]``.
        C: ``[b, n, N]``.
        state: ``[b, d, N]`` state before the first position (zeros if None).
        chunk_size: Positions per chunk.

    Returns:
        ``(y [b, n, d], final state [b, d, N])``, computed in float32 (float64 stays
        float64), ``y`` in ``x``'s dtype.

    Examples:
        >>> import torch
        >>> from implementations._scan import selective_scan
        >>> x, delta = torch.randn(1, 5, 2), torch.rand(1, 5, 2)
        >>> A, B, C = -torch.rand(2, 3) - 0.5, torch.randn(1, 5, 3), torch.randn(1, 5, 3)
        >>> h, ys = torch.zeros(1, 2, 3), []
        >>> for t in range(5):  # the recurrence, one position at a time
        ...     dA = delta[:, t, :, None] * A
        ...     h = dA.exp() * h + (dA.expm1() / A) * B[:, t, None, :] * x[:, t, :, None]
        ...     ys.append((h * C[:, t, None, :]).sum(-1))
        >>> y, last = selective_scan(x, delta, A, B, C, chunk_size=2)
        >>> torch.allclose(y, torch.stack(ys, 1), atol=1e-5), torch.allclose(last, h, atol=1e-5)
        (True, True)
    """
    batch, n, d = x.shape
    dtype = x.dtype
    compute = _compute_dtype(dtype)
    x, delta, A, B, C = (t.to(compute) for t in (x, delta, A, B, C))
    h = x.new_zeros(batch, d, A.shape[-1]) if state is None else state.to(compute)
    # Autograd keeps every chunk's states and prefix-scan intermediates, about a dozen
    # tensors of [b, n, d, N] in all: 6 GB a direction at n = 8192, dim 512. Above the
    # threshold each chunk is recomputed in the backward instead, as the paper's kernel does,
    # keeping only the [b, d, N] state between chunks.
    recompute = torch.is_grad_enabled() and batch * n * d * A.shape[-1] > RECOMPUTE_ABOVE
    outputs = []
    # Split once, not sliced per chunk: the backward of a slice writes into a zero-filled
    # gradient of the whole input, one per chunk, which made forward+backward quadratic in n.
    pieces = (t.split(chunk_size, dim=1) for t in (x, delta, B, C))  # each [b, c, ...]
    for x_c, delta_c, B_c, C_c in zip(*pieces, strict=True):
        if recompute:
            y_c, h = checkpoint(_scan_chunk, h, x_c, delta_c, A, B_c, C_c, use_reentrant=False)
        else:
            y_c, h = _scan_chunk(h, x_c, delta_c, A, B_c, C_c)
        outputs.append(y_c)
    return torch.cat(outputs, dim=1).to(dtype), h


def _scan_chunk(
    h: Tensor, x: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor
) -> tuple[Tensor, Tensor]:
    """One chunk of [`selective_scan`][implementations._scan.selective_scan] from state ``h``."""
    dA = delta[..., None] * A  # [b, c, d, N]
    a = dA.exp()  # \bar A_t
    # ZOH input matrix times x: (e^{dt A} - 1) / A * B_t x_t
    b = dA.expm1() / A * B[:, :, None, :] * x[..., None]  # [b, c, d, N]
    a_cum, b_cum = _prefix_scan(a, b)
    states = b_cum + a_cum * h[:, None]  # [b, c, d, N]: h_t for the chunk
    return torch.einsum("bcdm,bcm->bcd", states, C), states[:, -1]  # y_t = C_t h_t
