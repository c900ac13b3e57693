r"""Adaptively sparse attention: $\alpha$-entmax with a learned $\alpha$ per head.

Paper: *Adaptively Sparse Transformers*, Gonçalo M. Correia, Vlad Niculae and André
F. T. Martins, EMNLP 2019 (arXiv:1909.00015).

Softmax gives every key a non-zero weight. The paper replaces it with
$\alpha$-**entmax** (Peters, Niculae and Martins, 2019), the regularised argmax with the
Tsallis $\alpha$-entropy $H^T_\alpha$:

$$
\alpha\text{-entmax}(z) = \operatorname*{argmax}_{p \in \Delta^d}\; p^\top z + H^T_\alpha(p),
\qquad
H^T_\alpha(p) = \frac{1}{\alpha(\alpha - 1)} \sum_j \left(p_j - p_j^\alpha\right),
$$

($H^T_1$ is the Shannon entropy). Its solution is a thresholded power,

$$
\alpha\text{-entmax}(z)_i = \left[(\alpha - 1)\, z_i - \tau\right]_+^{1/(\alpha - 1)},
$$

with the unique $\tau$ that makes the weights sum to 1. $\alpha = 1$ is softmax (the
limit $\alpha \to 1$), $\alpha = 2$ is sparsemax, and every $\alpha > 1$ can give keys
**exactly zero** weight: a context-dependent sparse pattern, not a fixed window.

Each head $i$ of every layer learns its own $\alpha_i$, kept in $(1, 2)$ by

$$
\alpha_i = 1 + \mathrm{sigmoid}(a_i), \qquad
\mathrm{head}_i = \alpha_i\text{-entmax}\!\left(\frac{Q_i K_i^\top}{\sqrt{d_k}}\right) V_i ,
$$

so heads can move between dense (softmax-like) and sparse (sparsemax-like) behaviour.
The paper initialises the $a_i$ at random; as in the authors' code we draw
$a_i \sim \mathcal{N}(0, 1)$.

**Forward: bisection.** For general $\alpha$ there is no sort-based closed form, so
$\tau$ is found by bisection on the decreasing function
$f(\tau) = \sum_j [(\alpha-1) z_j - \tau]_+^{1/(\alpha-1)} - 1$. With
$m = \max_j (\alpha - 1) z_j$, $f(m - 1) \ge 0$ (the top entry alone weighs 1) and
$f(m - d^{1-\alpha}) \le 0$ (no entry exceeds $1/d$), so the root lies in
$[m - 1,\, m - d^{1-\alpha}]$ and ``n_iter`` halvings pin it down.

**Backward: closed forms.** With $p = \alpha\text{-entmax}(z)$, support $S = \{j: p_j > 0\}$,
$g_j = p_j^{2 - \alpha}$ on $S$ (0 elsewhere) and $\tilde p = g / \sum_j g_j$,

$$
\frac{\partial p}{\partial z} = \mathrm{diag}(g) - \frac{g g^\top}{\sum_j g_j},
\qquad
\frac{\partial p_i}{\partial \alpha}
= \frac{p_i - \tilde p_i}{(\alpha - 1)^2}
- \frac{p_i \log p_i - \tilde p_i \sum_j p_j \log p_j}{\alpha - 1}
$$

(Peters et al., 2019; Correia et al., 2019, Proposition 1), so no gradient flows
through the bisection loop.

Complexity: time and memory stay $O(n^2)$ like dense attention (times ``n_iter`` cheap
element-wise passes); the gain the paper is about is sparse, interpretable attention
weights, not fewer FLOPs. With ``causal=True`` future keys get $z_j = -\infty$, hence
weight exactly 0.

Hyper-parameters:

* ``alpha``: None (the paper's adaptive model, one learned $\alpha_i$ per head), or a
  fixed $\alpha \in [1, 2]$ shared by all heads (the paper's baselines: 1 = softmax,
  1.5 = 1.5-entmax; 2 = sparsemax).
* ``n_iter``: bisection iterations for $\tau$.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections, causal_mask
from implementations._registry import Range, register

__all__ = ["AdaptiveSparseTransformer", "attention", "entmax"]

# Below alpha = 1 + this, alpha-entmax is replaced by its limit, softmax: the power
# 1 / (alpha - 1) and the 1 / (alpha - 1)^2 of the alpha-gradient blow up float32
# rounding errors, while the distance to softmax is already of the order of this gap.
SOFTMAX_LIMIT = 1e-4


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half-precision inputs (bisection needs the mantissa), else x's dtype."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


class _EntmaxBisect(torch.autograd.Function):
    r"""$\alpha$-entmax over the last dim by bisection, with the closed-form backward."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: Tensor, n_iter: int) -> Tensor:
        # z [..., d]; alpha [..., 1], every entry > 1.
        am1 = alpha - 1
        x = z * am1  # (alpha - 1) z, [..., d]
        d = x.shape[-1]
        top = x.amax(dim=-1, keepdim=True)  # [..., 1]
        # A row of only -inf (every key masked) has no finite top; any finite threshold
        # then leaves p = 0 there, which the final normalisation keeps at 0.
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        tau_lo = top - 1  # f(tau_lo) >= 0
        width = 1 - d ** (-am1)  # tau_hi - tau_lo, with tau_hi = top - d^(1 - alpha)
        power = 1 / am1
        for _ in range(n_iter):
            width = width / 2
            tau_mid = tau_lo + width
            f_mid = torch.clamp(x - tau_mid, min=0).pow(power).sum(-1, keepdim=True) - 1
            # f decreases in tau: the root is above tau_mid while f(tau_mid) >= 0.
            tau_lo = torch.where(f_mid >= 0, tau_mid, tau_lo)
        p = torch.clamp(x - tau_lo, min=0).pow(power)  # [..., d]
        # tau_lo <= tau*, so the sum is >= 1 up to rounding; renormalise the residue.
        p = p / p.sum(-1, keepdim=True).clamp(min=torch.finfo(p.dtype).tiny)
        ctx.save_for_backward(p, alpha)
        return p

    @staticmethod
    def backward(ctx, dp: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        p, alpha = ctx.saved_tensors
        support = p > 0
        # g_j = p_j^(2 - alpha) on the support, 0 off it.
        g = torch.where(support, p.pow(2 - alpha), torch.zeros_like(p))
        p_tilde = g / g.sum(-1, keepdim=True).clamp(min=torch.finfo(p.dtype).tiny)
        dz = dalpha = None
        if ctx.needs_input_grad[0]:
            # (diag(g) - g g^T / sum g) dp
            dz = g * dp - p_tilde * (g * dp).sum(-1, keepdim=True)
        if ctx.needs_input_grad[1]:
            am1 = alpha - 1
            p_log_p = torch.xlogy(p, p)  # 0 log 0 = 0 off the support
            dp_dalpha = (p - p_tilde) / am1**2 - (
                p_log_p - p_tilde * p_log_p.sum(-1, keepdim=True)
            ) / am1
            dalpha = (dp * dp_dalpha).sum(-1, keepdim=True)  # [..., 1]
        return dz, dalpha, None


def _softmax(z: Tensor) -> Tensor:
    """Softmax over the last dim where a row of only -inf gives zeros, not NaN."""
    empty = torch.isneginf(z).all(-1, keepdim=True)  # [..., 1]
    p = torch.where(empty, torch.zeros_like(z), z).softmax(-1)
    return p.masked_fill(empty, 0)


def entmax(z: Tensor, alpha: float | Tensor, n_iter: int = 50) -> Tensor:
    r"""$\alpha$-entmax over the last dimension of ``z`` (see the module docstring).

    Differentiable in ``z`` and in ``alpha``. Entries ``-inf`` get weight exactly 0 (a
    row of only ``-inf`` gives all zeros). Computed in float32 for half-precision
    inputs and returned in ``z``'s dtype.

    Args:
        z: Scores ``[..., d]``.
        alpha: A float $\ge 1$ (1 = softmax, 1.5 = 1.5-entmax, 2 = sparsemax), or a
            tensor broadcastable to ``[..., 1]`` (e.g. one $\alpha$ per head,
            ``[1, h, 1, 1]``) whose entries are meant to be $\ge 1$ (smaller ones act
            as 1). $\alpha \le 1 + \epsilon$, with $\epsilon$ = ``SOFTMAX_LIMIT`` =
            $10^{-4}$, takes the $\alpha \to 1$ limit, softmax, exactly.
        n_iter: Bisection iterations for the threshold $\tau$.

    Returns:
        ``[..., d]`` probabilities (non-negative, summing to 1 along the last dim).

    Examples:
        >>> import torch
        >>> from implementations.adaptive_sparse_transformer import entmax
        >>> z = torch.tensor([[2.0, 1.0, -1.0]])
        >>> entmax(z, 2.0)  # sparsemax: the last score is dropped
        tensor([[1., 0., 0.]])
        >>> entmax(z, 1.5).round(decimals=4)
        tensor([[0.8307, 0.1693, 0.0000]])
        >>> torch.allclose(entmax(z, 1.0), z.softmax(-1))
        True
    """
    out_dtype, dtype = z.dtype, _compute_dtype(z)
    z = z.to(dtype)
    if not isinstance(alpha, Tensor):
        if alpha < 1:
            raise ValueError(f"alpha must be >= 1, got {alpha}")
        if alpha <= 1 + SOFTMAX_LIMIT:
            return _softmax(z).to(out_dtype)
        alpha = torch.tensor(alpha, dtype=dtype, device=z.device)
    alpha = alpha.to(dtype).expand(*z.shape[:-1], 1)  # [..., 1]
    # Keep the bisection's alpha away from 1 where the softmax limit is used instead
    # (a select rather than a branch: no device-to-host sync on a tensor alpha).
    p = _EntmaxBisect.apply(z, alpha.clamp(min=1 + SOFTMAX_LIMIT), n_iter)
    p = torch.where(alpha <= 1 + SOFTMAX_LIMIT, _softmax(z), p)
    return p.to(out_dtype)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    alpha: float | Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    n_iter: int = 50,
) -> Tensor:
    r"""$\alpha\text{-entmax}(QK^\top / \sqrt{d})\,V$, per head.

    Args:
        q: Queries ``[b, h, nq, d]``.
        k: Keys ``[b, h, nk, d]``.
        v: Values ``[b, h, nk, dv]``.
        alpha: A float, or one value per head ``[h]`` (or anything broadcastable to
            ``[b, h, nq, 1]``).
        mask: Bool key-padding mask ``[b, nk]``, True = real key.
        causal: Query ``i`` sees key ``j`` only if ``j <= i + (nk - nq)``.
        n_iter: Bisection iterations.

    Returns:
        ``[b, h, nq, dv]``; a query with no visible key gets zeros.

    Examples:
        >>> import torch
        >>> from implementations.adaptive_sparse_transformer import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, alpha=torch.full((4,), 1.5), causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    nq, nk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    dtype = _compute_dtype(q)
    scores = torch.einsum("bhid,bhjd->bhij", q.to(dtype), k.to(dtype)) * scale  # [b, h, nq, nk]
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], -math.inf)
    if causal:
        scores = scores.masked_fill(~causal_mask(nq, nk, device=q.device), -math.inf)
    if isinstance(alpha, Tensor) and alpha.dim() == 1:
        alpha = alpha[None, :, None, None]  # one value per head -> [1, h, 1, 1]
    probs = entmax(scores, alpha, n_iter=n_iter)  # [b, h, nq, nk], exact zeros off-support
    return torch.einsum("bhij,bhjd->bhid", probs.to(v.dtype), v)


@register("adaptive-sparse-transformer", kind="attention", supports_causal=True)
class AdaptiveSparseTransformer(nn.Module):
    r"""Multi-head $\alpha$-entmax attention, $\alpha_i = 1 + \mathrm{sigmoid}(a_i)$ per head.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads $h$ (one $\alpha_i$ each).
        causal: Mask the future (exact zeros on future keys).
        alpha: None to learn $\alpha$ per head (the paper's model), or a fixed value
            in $[1, 2]$ for every head (1 = softmax, 1.5 = 1.5-entmax, 2 = sparsemax).
        n_iter: Bisection iterations for the entmax threshold.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("adaptive-sparse-transformer", dim=32, heads=4)
        >>> layer.alpha.shape  # one alpha per head, in (1, 2)
        torch.Size([4])
        >>> x = torch.randn(2, 37, 32)
        >>> layer(x).shape
        torch.Size([2, 37, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"alpha": (1.0, 2.0), "n_iter": (1, 10_000)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        alpha: float | None = None,
        n_iter: int = 50,
    ) -> None:
        super().__init__()
        if alpha is not None and not 1 <= alpha <= 2:
            raise ValueError(f"alpha must be None (learned) or in [1, 2], got {alpha}")
        if n_iter < 1:
            raise ValueError(f"n_iter must be a positive number of iterations, got {n_iter}")
        self.causal = causal
        self.n_iter = n_iter
        self.fixed_alpha = alpha
        self.proj = HeadProjections(dim, heads)
        if alpha is None:
            # a_i ~ N(0, 1): the paper starts every head at a random alpha in (1, 2).
            self.pre_alpha = nn.Parameter(torch.randn(heads))

    @property
    def alpha(self) -> Tensor:
        r"""The per-head $\alpha_i$, ``[heads]``."""
        if self.fixed_alpha is not None:
            return torch.full(
                (self.proj.heads,), self.fixed_alpha, device=self.proj.to_q.weight.device
            )
        return 1 + torch.sigmoid(self.pre_alpha)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(q, k, v, self.alpha, mask=mask, causal=self.causal, n_iter=self.n_iter)
        return self.proj.out(o)  # [b, n, dim]
