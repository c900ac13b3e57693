r"""Performer: softmax attention estimated with positive orthogonal random features (FAVOR+).

Paper: *Rethinking Attention with Performers*, Krzysztof Choromanski, Valerii
Likhosherstov, David Dohan, Xingyou Song, Andreea Gane, Tamas Sarlos, Peter Hawkins,
Jared Davis, Afroz Mohiuddin, Lukasz Kaiser, David Belanger, Lucy Colwell and Adrian
Weller, ICLR 2021 (arXiv:2009.14794).

Softmax attention weighs key $j$ by the softmax kernel $\mathrm{SM}(q_i, k_j) =
\exp(q_i^\top k_j)$ (queries and keys pre-scaled by $d^{-1/4}$, so the product carries
the usual $1/\sqrt{d}$). FAVOR+ writes this kernel as an expectation over Gaussian
$\omega \sim \mathcal{N}(0, I_d)$ of a product of **positive** features,

$$
\mathrm{SM}(x, y) = \mathbb{E}_\omega\!\left[
\exp\!\big(\omega^\top x - \tfrac{\|x\|^2}{2}\big)\,
\exp\!\big(\omega^\top y - \tfrac{\|y\|^2}{2}\big)\right],
\qquad
\phi(x) = \frac{e^{-\|x\|^2 / 2}}{\sqrt{m}}
\big(e^{\omega_1^\top x}, \dots, e^{\omega_m^\top x}\big),
$$

so $\mathrm{SM}(x, y) \approx \phi(x)^\top \phi(y)$ with $m$ samples, and attention
becomes linear attention with this feature map:

$$
\widehat{\mathrm{Att}}(Q, K, V) = \hat D^{-1} \big(\phi(Q)\, (\phi(K)^\top V)\big),
\qquad \hat D = \mathrm{diag}\big(\phi(Q)\, (\phi(K)^\top \mathbf{1}_n)\big),
$$

$O(n m d)$ time and $O(nm + md)$ memory. Positive features keep every estimated weight
(and the normaliser) positive, unlike $\sin / \cos$ random Fourier features whose
estimates of small kernel values go negative. The $\omega_r$ are drawn **orthogonal**
(blocks of $d$ exactly orthogonal directions, each rescaled to a $\chi_d$-distributed
norm so that marginally $\omega_r \sim \mathcal{N}(0, I_d)$): still unbiased, with
provably lower variance than i.i.d. draws.

**Causal attention** replaces both sums by prefix sums over $j \le i$
([`causal_linear_attention`][implementations._helpers.causal_linear_attention], chunked; no
$n \times n$ matrix).

**Numerical stability.** $e^{\omega^\top x}$ overflows easily; any factor common to all
terms of both numerator and normaliser cancels, so queries are divided by their own
largest feature and keys by the largest key feature. Non-causal: the maximum over all
real keys of the sequence. Causal: a maximum over the future would let future tokens
change past outputs in floating point, so key $j$ is scaled by the **running** maximum
$M_j$ over keys $\le j$; re-expressing the prefix sum at query $i$ in units of $M_i$
multiplies the earlier terms by $e^{M_j - M_i} \le 1$, a decay handled exactly by the
chunked prefix sum.

Hyper-parameters:

* ``nb_features``: $m$, the number of random features (the paper's code defaults to
  256; the approximation error falls as $O(1/\sqrt{m})$).
* ``kernel``: ``"softmax"`` (FAVOR+, approximating softmax attention) or ``"relu"``
  (the paper's generalised kernel $\phi(x) = \mathrm{ReLU}(\omega^\top x) / \sqrt{m}$,
  "Performer-ReLU", a different attention that does not approximate softmax).
* ``orthogonal``: orthogonal random features (the "+" in FAVOR+) or i.i.d. Gaussian.
* ``feature_redraw_interval``: redraw the $\omega_r$ every this many training forward
  passes (the paper reports that redrawing features helps training; its code redraws
  at every call, i.e. ``1``); None keeps the features drawn at initialisation.
  Features are drawn from torch's global RNG, so they are seeded-deterministic.

**Where the time goes**: the feature maps $\phi(Q), \phi(K)$ are ``[b, h, n, m]``, $m / d = 4$
times the queries, and dominate memory. Without autograd the heads run one at a time
([`heads_in_turn`][implementations._helpers.heads_in_turn]; the same computation), so the
inference peak at n = 16384 is 1.3x (bidirectional) and 1.7x (causal) that of the fused
exact kernel instead of 4.6x and 8.1x. The causal backward was dominated by the chunk
scan of [`causal_linear_attention`][implementations._helpers.causal_linear_attention] (one
zero-filled, full-size gradient buffer per chunk: 10 of its 12.6 s at n = 8192); it now unbinds the
chunks once, 3x faster forward+backward with bitwise the same results.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import HeadProjections, heads_in_turn
from implementations._registry import register
from implementations.linear_transformer import linear_attention

__all__ = ["Performer", "attention", "gaussian_orthogonal_random_matrix", "softmax_kernel_logits"]

Kernel = Literal["softmax", "relu"]

# Features are positive, so the normaliser is positive unless no key is visible (it is
# then exactly 0, as is the numerator): the floor only has to avoid 0 / 0.
_TINY = torch.finfo(torch.float32).tiny


def gaussian_orthogonal_random_matrix(
    nb_features: int,
    dim: int,
    orthogonal: bool = True,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The random projections $\omega_1, \dots, \omega_m$ as rows of an ``[m, d]`` matrix.

    With ``orthogonal``, rows come in blocks of ``dim`` exactly orthogonal directions
    (the Q factor of a Gaussian matrix, sign-corrected so it is Haar-distributed); each
    row is then rescaled to the norm of an independent $\mathcal{N}(0, I_d)$ vector, so
    every row is marginally Gaussian and the estimator stays unbiased. Otherwise rows
    are i.i.d. $\mathcal{N}(0, I_d)$. Drawn with torch's global RNG, in float32.

    Examples:
        >>> import torch
        >>> from implementations.performer import gaussian_orthogonal_random_matrix
        >>> w = gaussian_orthogonal_random_matrix(8, 4)
        >>> w.shape
        torch.Size([8, 4])
        >>> block = w[:4] / w[:4].norm(dim=1, keepdim=True)
        >>> torch.allclose(block @ block.T, torch.eye(4), atol=1e-5)
        True
    """
    if not orthogonal:
        return torch.randn(nb_features, dim, device=device)
    blocks = []
    for _ in range(math.ceil(nb_features / dim)):
        q, r = torch.linalg.qr(torch.randn(dim, dim, device=device))
        # Fix the signs so that Q is uniformly (Haar) distributed.
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
        blocks.append(q.T)  # [d, d], orthonormal rows
    directions = torch.cat(blocks)[:nb_features]  # [m, d]
    norms = torch.randn(nb_features, dim, device=device).norm(dim=1, keepdim=True)  # chi_d
    return directions * norms


def softmax_kernel_logits(x: Tensor, projection: Tensor) -> Tensor:
    r"""The FAVOR+ log-features $\omega_r^\top \tilde x - \|\tilde x\|^2 / 2$.

    With $\tilde x = x\, d^{-1/4}$, $\phi(\tilde q)^\top \phi(\tilde k)$ estimates
    $\exp(q^\top k / \sqrt{d})$. The constant $-\log\sqrt{m}$ cancels in attention and
    is dropped.

    Args:
        x: ``[..., n, d]`` queries or keys.
        projection: ``[m, d]`` random projections.

    Returns:
        ``[..., n, m]`` in float32.

    Examples:
        >>> import torch
        >>> from implementations.performer import softmax_kernel_logits
        >>> softmax_kernel_logits(torch.zeros(2, 3, 4), torch.randn(5, 4)).abs().max().item()
        0.0
    """
    x = x.float() * x.shape[-1] ** -0.25
    projected = x @ projection.float().T  # [..., n, m]
    return projected - x.pow(2).sum(-1, keepdim=True) / 2


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    projection: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    kernel: Kernel = "softmax",
) -> Tensor:
    r"""FAVOR+ attention with the given random projections.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, nk, d]``.
        v: ``[b, h, nk, dv]``.
        projection: ``[m, d]`` random features $\omega_r$ (shared by all heads).
        mask: Key-padding mask ``[b, nk]``, True = real; padded keys get zero features.
        causal: Prefix sums: query $i$ sees keys $j \le i$.
        kernel: ``"softmax"`` (positive random features) or ``"relu"``.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.performer import attention, gaussian_orthogonal_random_matrix
        >>> q = torch.randn(2, 4, 10, 8) * 0.3
        >>> w = gaussian_orthogonal_random_matrix(256, 8)
        >>> attention(q, q, q, w, causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    by_head = heads_in_turn(
        attention,
        {"q": (q, 1), "k": (k, 1), "v": (v, 1)},
        projection=projection,
        mask=mask,
        causal=causal,
        kernel=kernel,
    )
    if by_head is not None:  # inference: one head's [b, 1, n, m] features at a time
        return by_head
    real = None if mask is None else mask[:, None, :, None]  # [b, 1, nk, 1]
    if real is not None:
        v = v.masked_fill(~real, 0)

    if kernel == "relu":
        scale = q.shape[-1] ** -0.25
        phi_q = F.relu(q.float() * scale @ projection.float().T)  # [b, h, n, m]
        phi_k = F.relu(k.float() * scale @ projection.float().T)  # [b, h, nk, m]
        if real is not None:
            phi_k = phi_k.masked_fill(~real, 0)
        return linear_attention(phi_q, phi_k, v, causal=causal, eps=_TINY)

    log_q = softmax_kernel_logits(q, projection)  # [b, h, n, m]
    log_k = softmax_kernel_logits(k, projection)  # [b, h, nk, m]
    if real is not None:
        # -inf logits give features exactly 0 (and finite gradients) at padded keys.
        log_k = log_k.masked_fill(~real, -math.inf)

    # The stabilisers cancel between numerator and normaliser: constants for autograd.
    phi_q = torch.exp(log_q - log_q.amax(dim=-1, keepdim=True).detach())  # [b, h, n, m]
    if not causal:
        shift = log_k.amax(dim=(-2, -1), keepdim=True).detach()  # [b, h, 1, 1]
        shift = shift.masked_fill(shift.isinf(), 0)  # a sequence with no real key
        phi_k = torch.exp(log_k - shift)  # [b, h, nk, m]
        return linear_attention(phi_q, phi_k, v, eps=_TINY)

    # Running maximum M_j over keys <= j; keys are stored in units of their own M_j.
    running = log_k.amax(dim=-1).cummax(dim=-1).values.detach()  # [b, h, n]
    # Before the first real key M is -inf; use the first real maximum (the smallest
    # finite M). Those positions hold no key, so the value only has to be finite.
    first = running.masked_fill(running.isinf(), math.inf).amin(dim=-1, keepdim=True)
    first = first.masked_fill(first.isinf(), 0)  # a sequence with no real key
    running = torch.where(running.isinf(), first, running)
    phi_k = torch.exp(log_k - running.unsqueeze(-1))  # [b, h, n, m], entries <= 1
    # Moving from units of M_{i-1} to M_i multiplies the prefix sum by exp(M_{i-1} - M_i).
    log_decay = F.pad(running[..., :-1] - running[..., 1:], (1, 0))  # [b, h, n], <= 0
    return linear_attention(phi_q, phi_k, v, causal=True, log_decay=log_decay, eps=_TINY)


@register("performer", kind="attention", supports_causal=True)
class Performer(nn.Module):
    r"""Multi-head FAVOR+ attention (one set of random features per layer, shared by heads).

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Prefix-sum (autoregressive) attention.
        nb_features: Number of random features $m$.
        kernel: ``"softmax"`` (FAVOR+) or ``"relu"`` (Performer-ReLU).
        orthogonal: Orthogonal (FAVOR+) rather than i.i.d. random features.
        feature_redraw_interval: Redraw the features every this many training forward
            passes; None draws them once, at initialisation.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("performer", dim=32, heads=4, causal=True, nb_features=64)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
        >>> layer.projection.shape  # [m, dim_head]
        torch.Size([64, 8])
    """

    projection: Tensor  # [m, d] buffer: the random features

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        nb_features: int = 256,
        kernel: Kernel = "softmax",
        orthogonal: bool = True,
        feature_redraw_interval: int | None = None,
    ) -> None:
        super().__init__()
        if nb_features < 1:
            raise ValueError(f"nb_features must be a positive integer, got {nb_features}")
        if kernel not in ("softmax", "relu"):
            raise ValueError(f"kernel must be 'softmax' or 'relu', got {kernel!r}")
        if feature_redraw_interval is not None and feature_redraw_interval < 1:
            raise ValueError(
                f"feature_redraw_interval must be None or >= 1, got {feature_redraw_interval}"
            )
        self.causal = causal
        self.kernel = kernel
        self.orthogonal = orthogonal
        self.feature_redraw_interval = feature_redraw_interval
        self.proj = HeadProjections(dim, heads)
        self.register_buffer(
            "projection",
            gaussian_orthogonal_random_matrix(nb_features, self.proj.dim_head, orthogonal),
        )
        self._calls_since_redraw = 0

    @torch.no_grad()
    def redraw_features(self) -> None:
        r"""Draw fresh random features $\omega_r$ (from torch's global RNG)."""
        m, d = self.projection.shape
        fresh = gaussian_orthogonal_random_matrix(m, d, self.orthogonal, self.projection.device)
        self.projection.copy_(fresh)
        self._calls_since_redraw = 0

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        if self.training and self.feature_redraw_interval is not None:
            if self._calls_since_redraw >= self.feature_redraw_interval:
                self.redraw_features()
            self._calls_since_redraw += 1
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(
            q, k, v, self.projection, mask=mask, causal=self.causal, kernel=self.kernel
        )  # [b, h, n, d]
        return self.proj.out(o)
