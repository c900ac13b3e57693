r"""Random Feature Attention (RFA): softmax attention through random Fourier features.

Paper: *Random Feature Attention*, Hao Peng, Nikolaos Pappas, Dani Yogatama, Roy
Schwartz, Noah A. Smith and Lingpeng Kong, ICLR 2021 (arXiv:2103.02143).

**Random Fourier features** (Rahimi and Recht, 2007) turn the Gaussian kernel into a
dot product: with $\mathbf{w}_i \sim \mathcal{N}(0, \sigma^{-2} I_d)$ (the kernel's
bandwidth is $\sigma$),

$$
\phi(\mathbf{x}) = \sqrt{1/D}\,\big[\sin(\mathbf{w}_1 \cdot \mathbf{x}), \dots,
\sin(\mathbf{w}_D \cdot \mathbf{x}), \cos(\mathbf{w}_1 \cdot \mathbf{x}), \dots,
\cos(\mathbf{w}_D \cdot \mathbf{x})\big]^\top,
\qquad
\mathbb{E}\big[\phi(\mathbf{x}) \cdot \phi(\mathbf{y})\big]
= \exp\!\big(-\|\mathbf{x} - \mathbf{y}\|^2 / 2\sigma^2\big).
$$

Since $\exp(\mathbf{x} \cdot \mathbf{y} / \sigma^2) = \exp(\|\mathbf{x}\|^2 / 2\sigma^2 +
\|\mathbf{y}\|^2 / 2\sigma^2)\, \exp(-\|\mathbf{x} - \mathbf{y}\|^2 / 2\sigma^2)$, for
**unit-norm** queries and keys (RFA $\ell_2$-normalises them) the Gaussian kernel is the
softmax kernel up to a constant that cancels, and

$$
\mathrm{RFA}(\mathbf{q}_t, \{\mathbf{k}_i\}, \{\mathbf{v}_i\})
= \frac{\phi(\mathbf{q}_t)^\top \sum_i \phi(\mathbf{k}_i) \otimes \mathbf{v}_i}
       {\phi(\mathbf{q}_t) \cdot \sum_j \phi(\mathbf{k}_j)}
\approx \sum_i \mathrm{softmax}_i\!\big(\mathbf{q}_t \cdot \mathbf{k}_i / \sigma^2\big)\,
\mathbf{v}_i ,
$$

linear in the length. **Causal** RFA is a recurrence (an RNN) over the sums,
$\mathbf{S}_t = \mathbf{S}_{t-1} + \phi(\mathbf{k}_t) \otimes \mathbf{v}_t$,
$\mathbf{z}_t = \mathbf{z}_{t-1} + \phi(\mathbf{k}_t)$,
$\mathrm{RFA}(\mathbf{q}_t) = \phi(\mathbf{q}_t)^\top \mathbf{S}_t / \phi(\mathbf{q}_t)
\cdot \mathbf{z}_t$.

**Gated RFA** adds a learned forget gate to that recurrence, a recency bias:

$$
g_t = \mathrm{sigmoid}(\mathbf{w}_g \cdot \mathbf{x}_t + b_g), \qquad
\mathbf{S}_t = g_t\, \mathbf{S}_{t-1} + (1 - g_t)\, \phi(\mathbf{k}_t) \otimes \mathbf{v}_t,
\qquad
\mathbf{z}_t = g_t\, \mathbf{z}_{t-1} + (1 - g_t)\, \phi(\mathbf{k}_t),
$$

one scalar gate per head and position. Training evaluates the recurrence in parallel
as decayed prefix sums
([`causal_linear_attention`][implementations._helpers.causal_linear_attention], key $j$ weighted
$\prod_{t = j+1}^{i} g_t$ at query $i$), never an $n \times n$ matrix.

Details the paper leaves to its code, chosen here as the authors' implementation allows:
$\sigma$ is learned by reparameterising $\mathbf{w}_i = \boldsymbol\epsilon_i /
\boldsymbol\sigma$ (element-wise), $\boldsymbol\epsilon_i \sim \mathcal{N}(0, I_d)$,
with one learned $\boldsymbol\sigma = \exp(\log\boldsymbol\sigma) \in \mathbb{R}^d$
per head (``learn_sigma``: $\sigma^2$ is the temperature of the approximated softmax,
and with unit-norm queries and keys a fixed $\sigma = 1$ would cap the logits
$\mathbf{q} \cdot \mathbf{k} / \sigma^2$ at 1, so heads could not sharpen); every
head has its own random matrix; the normaliser, which $\sin / \cos$ features can push
to zero or below, is floored at `EPS`.

Hyper-parameters:

* ``nb_features``: $D$, the number of random vectors (the feature map has $2D$
  entries; the authors' code uses 64).
* ``kernel``: ``"gaussian"`` (RFA-Gaussian above) or ``"arccos"`` (the paper's
  RFA-arccos, $\phi(\mathbf{x}) = \sqrt{1/D}\,[\max(0, \mathbf{w}_i \cdot
  \mathbf{x})]_{i=1}^{D}$, the arc-cosine kernel: a different attention).
* ``gated``: the gated recurrence (causal attention only, as in the paper).
* ``learn_sigma``: learn $\boldsymbol\sigma$ (initialised to 1) or fix $\sigma = 1$.
* ``resample_features``: draw fresh $\boldsymbol\epsilon_i$ at every training forward
  pass, as the paper does (it samples random matrices per training step and fixes
  them for evaluation); False keeps the ones drawn at initialisation. Draws use torch's
  global RNG, so they are seeded-deterministic.

**Where the time goes**: as for the Performer, the ``[b, h, n, 2D]`` random features dominate
memory; without autograd the heads run one at a time
([`heads_in_turn`][implementations._helpers.heads_in_turn]), so the inference peak at n = 16384 is
1.2x that of the fused exact kernel (2.2x bidirectional and 3.6x causal before).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import HeadProjections, heads_in_turn
from implementations._registry import register
from implementations.linear_transformer import linear_attention

__all__ = ["EPS", "RandomFeatureAttention", "attention", "random_features"]

Kernel = Literal["gaussian", "arccos"]

#: Floor on the normaliser $\phi(\mathbf{q}_t) \cdot \sum_j \phi(\mathbf{k}_j)$ (in kernel
#: units, where a key identical to the query contributes 1).
EPS = 1e-2


def random_features(x: Tensor, omega: Tensor, kernel: Kernel = "gaussian") -> Tensor:
    r"""The random features $\phi(\hat{\mathbf{x}})$ of the unit vector $\hat{\mathbf{x}}$.

    Args:
        x: ``[b, h, n, d]`` queries or keys.
        omega: ``[h, D, d]`` random vectors $\mathbf{w}_i$ (rows), one matrix per head.
        kernel: ``"gaussian"`` ($[\sin, \cos] / \sqrt{D}$, ``2D`` features) or ``"arccos"``
            ($\max(0, \cdot) / \sqrt{D}$, ``D`` features).

    Returns:
        ``[b, h, n, 2D]`` (gaussian) or ``[b, h, n, D]`` (arccos), float32.

    Examples:
        >>> import torch
        >>> from implementations.random_feature_attention import random_features
        >>> x = torch.randn(1, 2, 3, 4)
        >>> phi = random_features(x, torch.randn(2, 16, 4))
        >>> phi.shape
        torch.Size([1, 2, 3, 32])
        >>> # sin^2 + cos^2 = 1: the estimate of k(x, x) = 1 is exact.
        >>> torch.allclose((phi * phi).sum(-1), torch.ones(1, 2, 3))
        True
    """
    x = F.normalize(x.float(), dim=-1)
    projected = torch.einsum("bhnd,hrd->bhnr", x, omega.float())  # [b, h, n, D]
    scale = omega.shape[-2] ** -0.5
    if kernel == "arccos":
        return F.relu(projected) * scale
    return torch.cat([projected.sin(), projected.cos()], dim=-1) * scale  # [b, h, n, 2D]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    omega: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    gate_logits: Tensor | None = None,
    kernel: Kernel = "gaussian",
) -> Tensor:
    r"""RFA with the random vectors ``omega``.

    ``omega`` carries $\sigma$ ($\mathbf{w}_i \sim \mathcal{N}(0, \sigma^{-2} I)$), so
    the attention approximates $\mathrm{softmax}(\hat{\mathbf{q}} \cdot
    \hat{\mathbf{k}} / \sigma^2)$ for the gaussian kernel.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, nk, d]``.
        v: ``[b, h, nk, dv]``.
        omega: ``[h, D, d]``.
        mask: Key-padding mask ``[b, nk]``, True = real. Padded keys get zero features
            and, in the gated recurrence, leave the state untouched ($g_t = 1$).
        causal: The recurrent (prefix-sum) form.
        gate_logits: ``[b, h, n]``, $\mathbf{w}_g \cdot \mathbf{x}_t + b_g$ of gated RFA
            (causal only), or None.
        kernel: ``"gaussian"`` or ``"arccos"``.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.random_feature_attention import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, torch.randn(4, 32, 8), causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    by_head = heads_in_turn(
        attention,
        {
            "q": (q, 1),
            "k": (k, 1),
            "v": (v, 1),
            "omega": (omega, 0),
            "gate_logits": (gate_logits, 1),
        },
        mask=mask,
        causal=causal,
        kernel=kernel,
    )
    if by_head is not None:  # inference: one head's [b, 1, n, F] features at a time
        return by_head
    phi_q = random_features(q, omega, kernel)  # [b, h, n, F]
    phi_k = random_features(k, omega, kernel)  # [b, h, nk, F]
    if mask is not None:
        real = mask[:, None, :, None]  # [b, 1, nk, 1]
        phi_k, v = phi_k.masked_fill(~real, 0), v.masked_fill(~real, 0)

    log_decay = None
    if gate_logits is not None:
        if not causal:
            raise ValueError("the gate applies to the causal recurrence only")
        gate_logits = gate_logits.float()
        # log g_t and 1 - g_t = sigmoid(-a_t), both computed without cancellation.
        log_decay = F.logsigmoid(gate_logits)  # [b, h, n]
        phi_k = phi_k * torch.sigmoid(-gate_logits).unsqueeze(-1)  # (1 - g_t) phi(k_t)
        if mask is not None:
            log_decay = log_decay.masked_fill(~mask[:, None, :], 0)  # padded: g_t = 1
    return linear_attention(phi_q, phi_k, v, causal=causal, log_decay=log_decay, eps=EPS)


@register("random-feature-attention", kind="attention", supports_causal=True)
class RandomFeatureAttention(nn.Module):
    r"""Multi-head RFA, optionally with the gated causal recurrence.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: The recurrent (prefix-sum) form.
        nb_features: $D$, random vectors per head.
        kernel: ``"gaussian"`` (RFA-Gaussian) or ``"arccos"`` (RFA-arccos).
        gated: Gated RFA (requires ``causal=True``).
        learn_sigma: Learn the per-head, per-dimension bandwidth $\boldsymbol\sigma$ of
            the kernel; else $\sigma = 1$.
        resample_features: Fresh random vectors at every training forward pass.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "random-feature-attention", dim=32, heads=4, causal=True, gated=True
        ... )
        >>> x = torch.randn(2, 37, 32)
        >>> layer(x).shape
        torch.Size([2, 37, 32])
    """

    epsilon: Tensor  # [h, D, d] buffer

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        nb_features: int = 64,
        kernel: Kernel = "gaussian",
        gated: bool = False,
        learn_sigma: bool = True,
        resample_features: bool = False,
    ) -> None:
        super().__init__()
        if nb_features < 1:
            raise ValueError(f"nb_features must be a positive integer, got {nb_features}")
        if kernel not in ("gaussian", "arccos"):
            raise ValueError(f"kernel must be 'gaussian' or 'arccos', got {kernel!r}")
        if gated and not causal:
            raise ValueError("gated=True needs causal=True: the gate acts on the recurrence")
        self.causal = causal
        self.kernel = kernel
        self.resample_features = resample_features
        self.proj = HeadProjections(dim, heads)
        # epsilon_i ~ N(0, I), one [D, d_head] matrix per head; w_i = epsilon_i / sigma.
        self.register_buffer("epsilon", torch.randn(heads, nb_features, self.proj.dim_head))
        self.log_sigma = (
            nn.Parameter(torch.zeros(heads, 1, self.proj.dim_head)) if learn_sigma else None
        )
        self.to_gate = nn.Linear(dim, heads) if gated else None

    def omega(self) -> Tensor:
        r"""The random vectors $\mathbf{w}_i = \boldsymbol\epsilon_i / \boldsymbol\sigma$.

        Returns:
            ``[h, D, d_head]``; fresh $\boldsymbol\epsilon_i$ in training mode when
            ``resample_features`` is set.
        """
        epsilon = self.epsilon
        if self.training and self.resample_features:
            epsilon = torch.randn(epsilon.shape, device=epsilon.device)
        if self.log_sigma is None:
            return epsilon
        # sigma = exp(log_sigma) stays positive; it starts at 1.
        return epsilon * torch.exp(-self.log_sigma)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        gate_logits = None
        if self.to_gate is not None:
            gate_logits = self.to_gate(x).transpose(1, 2)  # [b, h, n]
        o = attention(
            q,
            k,
            v,
            self.omega(),
            mask=mask,
            causal=self.causal,
            gate_logits=gate_logits,
            kernel=self.kernel,
        )  # [b, h, n, d]
        return self.proj.out(o)
