r"""Compressive Transformer: a Transformer-XL memory plus a compressed memory of older states.

Paper: *Compressive Transformers for Long-Range Sequence Modelling*, Rae, Potapenko,
Jayakumar, Hillier and Lillicrap, ICLR 2020 (arXiv:1911.05507).

Transformer-XL ([`implementations.transformer_xl`][implementations.transformer_xl]) discards hidden
states once they fall out of its FIFO memory. The Compressive Transformer keeps them in a coarser
form: each layer holds a memory $\mathbf{m}$ of $n_m$ past states and a *compressed memory*
$\mathbf{cm}$ of $n_{cm}$ slots. For a segment $\mathbf{h}$ of $n_s$ states
(Algorithm 1 of the paper):

$$
\tilde{\mathbf{h}} = [\,\mathrm{SG}(\mathbf{cm}) \circ \mathbf{m} \circ \mathbf{h}\,],
\qquad \mathbf{y} = \mathrm{Attn}(\mathbf{h}, \tilde{\mathbf{h}})
\quad \text{(Transformer-XL's relative attention)},
$$

$$
\text{old} = \text{the oldest } n_s \text{ states of } \mathbf{m}, \qquad
\text{new\_cm} = f_c(\mathrm{SG}(\text{old})) \in \mathbb{R}^{\lfloor n_s / c \rfloor \times d},
$$

$$
\mathbf{m} \leftarrow [\mathbf{m} \circ \mathbf{h}]_{-n_m:}, \qquad
\mathbf{cm} \leftarrow [\mathbf{cm} \circ \text{new\_cm}]_{-n_{cm}:} .
$$

The compression function $f_c$ maps every $c$ consecutive states to one (compression
rate $c$); the paper compares max / mean pooling (kernel and stride $c$), a 1D
convolution (kernel and stride $c$, learned; the default here), a dilated convolution
and keeping the most-attended states.

Attention then spans $n_s + n_m + n_{cm}$ keys, but reaches $n_m + c\,n_{cm}$ states
back: a longer range at the same cost.

**Attention-reconstruction loss.** Back-propagating through time into $f_c$ would be
expensive, so $f_c$ is trained with a local auxiliary loss: the layer's content-based
attention over the compressed memories should reproduce its attention over the
memories they replace,

$$
\mathcal{L}^{attn} = \big\lVert \mathrm{attn}(\mathbf{h}, \text{old})
                     - \mathrm{attn}(\mathbf{h}, f_c(\text{old})) \big\rVert_2^2 ,
$$

with stop-gradients on $\mathbf{h}$, on the old memories and on the attention weights
$W_q, W_k, W_v$, so that this loss trains $f_c$ alone (and the task loss does not:
the memories are constants). Here it is averaged over elements (a mean squared error)
and exposed as
[`CompressiveTransformer.aux_loss`][implementations.compressive_transformer.CompressiveTransformer]
after each forward: add it to the training loss.

Hyper-parameters: ``mem_len`` ($n_m$), ``cmem_len`` ($n_{cm}$), ``compression_rate``
($c$; the paper sweeps 2 to 4 and uses 3 for its language models) and ``compression``
(``"conv"``, ``"mean"`` or ``"max"``).

Evicted states are compressed in whole groups of $c$: when the overflow of the memory
is not a multiple of $c$, the remaining oldest states wait in the memory (which may
then hold up to $n_m + c - 1$ states) until a full group is available, so no state is
dropped or padded.

**Where the time goes**: as in Transformer-XL
([`implementations.transformer_xl`][implementations.transformer_xl]), the main attention's position
term is the cost; the attention-reconstruction loss (two content attentions over the evicted states,
about a third of the forward time at n = 4096) now runs in the fused kernel. Measured (CPU, one
thread, float32, dim 512, 8 heads, n = 4096, memories full): 5.4x dense forward (18.6x before);
forward+backward 7.7x (10.4x before), on the reference path, since the position bias needs a
gradient.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import softmax_attention, split_heads
from implementations._registry import Range, register
from implementations.transformer_xl import RelativeSegmentAttention

__all__ = ["COMPRESSIONS", "CompressiveMemory", "CompressiveTransformer", "content_attention"]

COMPRESSIONS = ("conv", "mean", "max")


class CompressiveMemory(NamedTuple):
    """A layer's memories, oldest first.

    Attributes:
        mem: ``[batch, <= mem_len + c - 1, dim]``, the most recent hidden states.
        cmem: ``[batch, <= cmem_len, dim]``, compressed older states.
    """

    mem: Tensor
    cmem: Tensor


def content_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    r"""Position-free attention $\mathrm{softmax}(q k^\top / \sqrt{d})\, v$ (all keys visible).

    The ``attn`` of the reconstruction loss: ``q`` ``[b, h, n, d]``, ``k``, ``v``
    ``[b, h, m, d]`` -> ``[b, h, n, d]``, computed in float32.

    Examples:
        >>> import torch
        >>> from implementations.compressive_transformer import content_attention
        >>> q = torch.randn(1, 2, 3, 4)
        >>> content_attention(q, q, q).shape
        torch.Size([1, 2, 3, 4])
    """
    # Fused: softmax(q k^T / sqrt(d)) v without storing the [b, h, n, m] scores.
    return softmax_attention(q.float(), k.float(), v.float())


@register("compressive-transformer", kind="memory", supports_causal=True)
class CompressiveTransformer(RelativeSegmentAttention):
    """Transformer-XL attention over ``[compressed memory; memory; segment]``.

    ``forward(x, memory=None) -> (y, memory)`` where ``memory`` is a
    [`CompressiveMemory`][implementations.compressive_transformer.CompressiveMemory] (or None for
    the first segment). After each call, `aux_loss` holds the attention-reconstruction loss of the
    states compressed during that call (a float32 scalar, 0 when nothing was compressed):
    add it to the task loss to train the compression function.

    Args:
        dim: Model width $d$.
        heads: Number of heads $h$.
        causal: Mask the future within the segment (the paper's language model).
        mem_len: $n_m$, states kept uncompressed.
        cmem_len: $n_{cm}$, compressed slots kept.
        compression_rate: $c$, states per compressed slot.
        compression: $f_c$: ``"conv"`` (1D convolution, kernel and stride $c$),
            ``"mean"`` or ``"max"`` (pooling, kernel and stride $c$).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("compressive-transformer", dim=32, heads=4,
        ...                               causal=True, mem_len=8, cmem_len=4,
        ...                               compression_rate=2)
        >>> y, memory = layer(torch.randn(2, 6, 32))
        >>> y, memory = layer(torch.randn(2, 6, 32), memory=memory)  # 4 states evicted
        >>> memory.mem.shape, memory.cmem.shape  # ... and compressed 2:1
        (torch.Size([2, 8, 32]), torch.Size([2, 2, 32]))
        >>> loss = y.sum() + layer.aux_loss  # trains f_c too
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"mem_len": (0, 2**20), "cmem_len": (0, 2**20)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        mem_len: int = 512,
        cmem_len: int = 512,
        compression_rate: int = 3,
        compression: str = "conv",
    ) -> None:
        super().__init__(dim, heads, causal, mem_len=mem_len)
        if cmem_len < 0:
            raise ValueError(f"cmem_len must be >= 0, got {cmem_len}")
        if compression_rate < 1:
            raise ValueError(f"compression_rate must be >= 1, got {compression_rate}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        self.cmem_len, self.rate, self.compression = cmem_len, compression_rate, compression
        # Only the convolution has weights; pooling is parameter-free.
        self.compress_conv = (
            nn.Conv1d(dim, dim, kernel_size=compression_rate, stride=compression_rate)
            if compression == "conv"
            else None
        )
        self.aux_loss: Tensor = torch.zeros(())

    def compress(self, old: Tensor) -> Tensor:
        r"""$f_c$: ``[b, g * c, dim] -> [b, g, dim]``, every $c$ consecutive states to one."""
        channels = old.transpose(1, 2)  # [b, dim, g * c]
        if self.compress_conv is not None:
            pooled = self.compress_conv(channels)
        elif self.compression == "mean":
            pooled = F.avg_pool1d(channels, self.rate)
        else:
            pooled = F.max_pool1d(channels, self.rate)
        return pooled.transpose(1, 2)  # [b, g, dim]

    def attention_reconstruction_loss(self, h: Tensor, old: Tensor, new_cm: Tensor) -> Tensor:
        r"""The mean of $(\mathrm{attn}(h, \text{old}) - \mathrm{attn}(h, \text{new\_cm}))^2$.

        Gradients reach ``new_cm`` (hence $f_c$) only: ``h``, ``old`` and the
        projection weights are detached.
        """
        w_q, w_k, w_v = (
            lin.weight.detach() for lin in (self.proj.to_q, self.proj.to_k, self.proj.to_v)
        )
        q = split_heads(F.linear(h.detach(), w_q), self.heads)  # [b, h, n, d]
        k_old = split_heads(F.linear(old.detach(), w_k), self.heads)  # [b, h, g * c, d]
        v_old = split_heads(F.linear(old.detach(), w_v), self.heads)
        k_new = split_heads(F.linear(new_cm, w_k), self.heads)  # [b, h, g, d]
        v_new = split_heads(F.linear(new_cm, w_v), self.heads)
        target = content_attention(q, k_old, v_old)
        return F.mse_loss(content_attention(q, k_new, v_new), target)

    def forward(
        self, x: Tensor, memory: CompressiveMemory | None = None
    ) -> tuple[Tensor, CompressiveMemory]:
        """``x`` ``[b, n, dim]`` and the previous memories -> ``(y, new memories)``."""
        if memory is None:
            mem = cmem = x.new_zeros(x.shape[0], 0, x.shape[2])
        else:
            mem, cmem = (self.check_memory(t, x) for t in memory)
        y = self.attend(x, torch.cat([cmem, mem], dim=1))

        # FIFO: states beyond mem_len leave the memory, in whole groups of c.
        seen = torch.cat([mem, x], dim=1)  # [b, m + n, dim]
        overflow = max(seen.shape[1] - self.mem_len, 0)
        n_old = overflow // self.rate * self.rate
        self.aux_loss = x.new_zeros((), dtype=torch.float32)
        if n_old:
            old = seen[:, :n_old].detach()  # [b, g * c, dim]
            new_cm = self.compress(old)  # [b, g, dim]
            self.aux_loss = self.attention_reconstruction_loss(x, old, new_cm)
            cmem = torch.cat([cmem, new_cm.detach()], dim=1)
        cmem = cmem[:, cmem.shape[1] - min(self.cmem_len, cmem.shape[1]) :]
        return y, CompressiveMemory(seen[:, n_old:].detach(), cmem)
