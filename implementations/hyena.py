r"""Hyena: gated long convolutions with implicitly parametrised filters, in $O(n \log n)$.

Paper: *Hyena Hierarchy: Towards Larger Convolutional Language Models*, Michael Poli,
Stefano Massaroli, Eric Nguyen, Daniel Y. Fu, Tri Dao, Stephen Baccus, Yoshua Bengio,
Stefano Ermon and Christopher Ré, ICML 2023 (arXiv:2302.10866).

The Hyena operator of order $N$ projects the input into $N + 1$ sequences
$(x^1, \dots, x^N, v)$ (a linear projection followed by a short depthwise convolution), then
alternates **long convolutions** and **element-wise gating** (the paper's Hyena recurrence):

$$
z^1 = v, \qquad z^{i+1}_t = x^i_t \odot \big(h^i * z^i + D^i z^i\big)_t \quad (i = 1 \dots N),
\qquad y = W_O\, z^{N+1}
$$

(the $D^i z^i$ skip is the filter's bias, as in the paper's code). Each long filter $h^i$ is
as long as the sequence, but **implicit**: a small FFN evaluated on positional features of
the lag $t$, multiplied by an exponentially decaying window that lets channels prefer short
or long memory,

$$
h_t = \mathrm{FFN}\big(\mathrm{PE}(t)\big) \odot e^{-\alpha\, |t| / L}, \qquad
\mathrm{PE}(t) = \big(t / L,\ \cos(2\pi f_k t / L),\ -\sin(2\pi f_k t / L)\big)_k ,
$$

with $\sin$ activations, $L$ = ``l_max`` and per-channel rates $\alpha$ spread between the
paper code's fast and slow decays; so the parameter count does not grow with the length.
The convolutions run by FFT ([`fft_conv`][implementations._scan.fft_conv]), $O(n \log n)$
per channel, and the data-controlled gates make the whole operator an implicit,
input-dependent ``[n, n]`` matrix that is never formed. ``heads`` is accepted for the
common interface and unused (this is the single-head operator). Positions beyond
``l_max`` extrapolate the features ($t / L > 1$).

**Causal** (``causal=True``) is the paper's operator: filters at lags $0 \dots n-1$ and a
causal short convolution. Hyena has no constant-size recurrent state in the paper (its
filters are not a state-space model), so there is no ``step``: decoding recomputes the
convolutions. **Non-causal** (``causal=False``): the same implicit FFN is also evaluated at
negative lags ($\mathrm{PE}(t)$ with $t < 0$, window $e^{-\alpha|t|/L}$), so each long filter
covers both directions, $\sum_{s} h_{t-s} z_s$ over all $s$; the short convolution stays causal.

**Padding.** Padded positions of every projection are zeroed before and after the short
convolution, so they contribute nothing to the long convolutions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from implementations._helpers import zero_padding
from implementations._registry import register
from implementations._scan import causal_depthwise_conv, fft_conv

__all__ = ["Hyena", "ImplicitFilter"]

# The window's decay rates, as in the paper's code: a filter decays to `_TARGET` of its
# value after a fraction between `_FAST` and `_SLOW` of l_max.
_TARGET, _FAST, _SLOW = 1e-2, 0.3, 1.5


class ImplicitFilter(nn.Module):
    r"""Long filters $h_t = \mathrm{FFN}(\mathrm{PE}(t)) \odot e^{-\alpha |t| / L}$.

    Args:
        channels: Number of filter channels.
        width: Hidden width $F$ of the FFN.
        emb_dim: Positional features (odd: $t$ plus a cosine and a sine per band).
        l_max: Length $L$ that normalises positions.

    Examples:
        >>> import torch
        >>> from implementations.hyena import ImplicitFilter
        >>> filt = ImplicitFilter(4, width=16, emb_dim=3, l_max=64)
        >>> filt(torch.arange(10.0)).shape  # [channels, lags]
        torch.Size([4, 10])
    """

    freqs: Tensor  # [bands], a buffer
    rates: Tensor  # [channels], a buffer

    def __init__(self, channels: int, width: int, emb_dim: int, l_max: int) -> None:
        super().__init__()
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError(f"emb_dim must be odd and >= 3 (time, cosine, sine), got {emb_dim}")
        self.l_max = l_max
        bands = (emb_dim - 1) // 2
        self.register_buffer("freqs", torch.linspace(1e-4, bands - 1, bands), persistent=False)
        self.layers = nn.ModuleList(
            [nn.Linear(emb_dim, width), nn.Linear(width, width), nn.Linear(width, width)]
        )
        self.freq = nn.Parameter(torch.ones(width))  # the sin activations' frequency
        self.to_filters = nn.Linear(width, channels, bias=False)
        slow, fast = math.log(_TARGET) / _SLOW, math.log(_TARGET) / _FAST
        self.register_buffer("rates", torch.linspace(slow, fast, channels).abs(), persistent=False)

    def forward(self, lags: Tensor) -> Tensor:
        """Filter values at integer ``lags`` ``[m]`` -> ``[channels, m]``, in float32."""
        t = lags.float()[:, None] / self.l_max  # [m, 1]
        phase = 2 * math.pi * t * self.freqs  # [m, bands]
        features = torch.cat([t, phase.cos(), -phase.sin()], dim=-1)  # [m, emb_dim]
        hidden = features.to(self.freq.dtype)  # the FFN runs in the parameters' dtype
        for layer in self.layers:
            hidden = torch.sin(self.freq * layer(hidden))  # [m, F]
        h = self.to_filters(hidden).float()  # [m, channels]
        window = torch.exp(-t.abs() * self.rates.float())  # [m, channels]
        return (h * window).T  # [channels, m]


@register("hyena", kind="attention", supports_causal=True)
class Hyena(nn.Module):
    r"""The Hyena operator: projections, short conv, $N$ gated implicit long convolutions.

    Args:
        dim: Model width.
        heads: Unused (single-head operator); accepted for the common interface.
        causal: The paper's causal operator; else filters over both directions.
        order: $N$, the number of long convolutions and gates (the paper's Hyena-2 is 2).
        filter_order: Width $F$ of the implicit filter FFN.
        emb_dim: Number of positional features of the filter FFN (odd).
        short_filter_order: Width of the short causal convolution.
        l_max: Length that normalises the filters' positions.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("hyena", dim=16, heads=2, causal=True, l_max=64)
        >>> x = torch.randn(2, 9, 16)
        >>> y = layer(x)
        >>> y.shape
        torch.Size([2, 9, 16])
        >>> x2 = x.clone()
        >>> x2[:, 5:] = 0  # the future does not change the past
        >>> torch.allclose(layer(x2)[:, :5], y[:, :5], atol=1e-5)
        True
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        order: int = 2,
        filter_order: int = 64,
        emb_dim: int = 3,
        short_filter_order: int = 3,
        l_max: int = 1024,
    ) -> None:
        super().__init__()
        self.causal, self.order, self.dim = causal, order, dim
        width = dim * (order + 1)  # x^1 .. x^N, v
        self.in_proj = nn.Linear(dim, width)
        self.short_weight = nn.Parameter(
            torch.empty(width, short_filter_order).uniform_(-1, 1) / short_filter_order**0.5
        )
        self.short_bias = nn.Parameter(torch.zeros(width))
        self.filters = ImplicitFilter(dim * order, filter_order, emb_dim, l_max)
        self.filter_bias = nn.Parameter(torch.randn(order, dim))  # D^i
        self.out_proj = nn.Linear(dim, dim)

    def long_filters(self, n: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """``[N, dim, n]`` filters at lags ``0..n-1`` and, non-causal, at ``-1..-n``."""
        past = self.filters(torch.arange(n, device=device)).unflatten(0, (self.order, self.dim))
        if self.causal:
            return past, None
        future = self.filters(-torch.arange(1, n + 1, device=device))  # lags -1 .. -n
        return past, future.unflatten(0, (self.order, self.dim))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        n = x.shape[1]
        u = zero_padding(self.in_proj(x), mask)  # [b, n, (N + 1) dim]
        u = causal_depthwise_conv(u, self.short_weight, self.short_bias)
        u = zero_padding(u, mask).transpose(1, 2)  # [b, (N + 1) dim, n]
        *gates, z = u.split(self.dim, dim=1)  # N gates x^i and v, [b, dim, n] each
        past, future = self.long_filters(n, x.device)  # [N, dim, n]
        for i, gate in enumerate(gates):
            conv = fft_conv(z, past[i], None if future is None else future[i])  # h^i * z^i
            z = gate * (conv + self.filter_bias[i].to(z.dtype)[:, None] * z)  # [b, dim, n]
        return self.out_proj(z.transpose(1, 2))  # [b, n, dim]
