r"""BigBird: block-sparse attention mixing a sliding window, random blocks and global blocks.

Paper: *Big Bird: Transformers for Longer Sequences*, Manzil Zaheer, Guru Guruganesh,
Avinava Dubey, Joshua Ainslie, Chris Alberti, Santiago Ontañón, Philip Pham, Anirudh
Ravula, Qifan Wang, Li Yang and Amr Ahmed, NeurIPS 2020 (arXiv:2007.14062).

BigBird's sparse attention graph $D$ has three parts. For query $i$,

$$
\mathrm{ATTN}_D(X)_i = \mathrm{softmax}_{j \in N(i)}\!\left(\frac{q_i k_j^\top}{\sqrt{d_k}}\right)
v_j, \qquad N(i) = \underbrace{W(i)}_{\text{window}} \cup \underbrace{R(i)}_{\text{random}}
\cup \underbrace{G}_{\text{global}},
$$

and every global token attends to all $n$ tokens. The paper proves that such graphs keep
full attention's universal-approximation and Turing-completeness properties, while the
cost is $O(n (w + r + g))$.

To run fast on accelerators the pattern is *blocked*: the sequence is cut into blocks of
$b$ tokens and attention is computed between whole blocks. This is the paper's
**BigBird-ITC** variant (internal transformer construction: the global tokens are existing
tokens), as in its implementation:

* **window**: query block $t$ attends to key blocks $t - 1, t, t + 1$;
* **global**: the first and the last block are global: they attend to every block and
  every block attends to them;
* **random**: query block $t$ attends to $r$ further key blocks drawn at random among the
  blocks that are neither in its window nor global (independently per head).

Each non-global query block therefore gathers $(3 + 2 + r)$ key blocks
(``gather``, never an $n \times n$ mask): $O(n\, b\,(5 + r))$ scores, plus $O(2 b n)$ for
the two global blocks' full rows. A block already covered by the global blocks is not
counted twice.

**Randomness.** As in the reference implementation the random blocks are fixed per layer:
a seed is drawn from torch's RNG when the module is built (so ``torch.manual_seed``
makes it reproducible; it is saved in the ``state_dict``), and the pattern for a given
number of blocks is derived from it, identically on every call and device. Inputs of any
length are padded internally to a multiple of the block size; padded keys are masked.
BigBird is used in encoders (its summarisation decoder keeps full attention), so
``causal=True`` is not supported.

Hyper-parameters:
    block_size: $b$, tokens per block (64 in the paper's base models).
    num_random_blocks: $r$, random key blocks per query block (3 in the paper).

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, 64-token blocks,
dim 512, 8 heads: 0.66 s): the gathers that lay out each block's window and random blocks
0.18 s (``aten::index``), the projections 0.21 s, the fused attention of the 128 query blocks
over their gathered keys 0.15 s and of the global tokens 0.04 s, the copies that stack the
block layout 0.06 s. Shipped benchmark (two threads): 0.37x exact attention forward and 0.26x
forward+backward at 8192, and 0.17x HF BigBird's forward time, which builds the full n x n
probability tensor.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    pad_to_multiple,
    softmax_attention,
)
from implementations._registry import Range, register

__all__ = ["BigBird", "attention", "random_blocks"]


def random_blocks(
    heads: int, n_blocks: int, num_random_blocks: int, seed: int
) -> tuple[Tensor, Tensor]:
    """Draw, per head and query block, ``num_random_blocks`` distinct random key blocks.

    Candidates for query block $t$ are the blocks outside its window ($|s - t| > 1$) that
    are not global (not the first or last block). Sampling without replacement takes the
    top-$r$ of i.i.d. uniform scores over the candidates.

    Args:
        heads: Number of heads (each draws its own pattern).
        n_blocks: Number of blocks in the (padded) sequence.
        num_random_blocks: $r$.
        seed: Seed of the (CPU) generator, so the pattern is fixed per layer.

    Returns:
        ``(index, valid)``, both ``[heads, n_blocks, min(r, n_blocks)]``: the drawn key
        blocks, and False where a query block had fewer than $r$ candidates (short inputs).

    Examples:
        >>> from implementations.big_bird import random_blocks
        >>> index, valid = random_blocks(heads=2, n_blocks=10, num_random_blocks=3, seed=0)
        >>> index.shape, bool(valid[:, 2:8].all())
        (torch.Size([2, 10, 3]), True)
    """
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(heads, n_blocks, n_blocks, generator=generator)  # [h, t, s]
    t = torch.arange(n_blocks)[:, None]
    s = torch.arange(n_blocks)[None, :]
    candidate = ((s - t).abs() > 1) & (s > 0) & (s < n_blocks - 1)  # [t, s]
    scores = scores.masked_fill(~candidate, -1.0)
    top, index = scores.topk(min(num_random_blocks, n_blocks), dim=-1)  # [h, t, r]
    return index, top >= 0


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    block_size: int,
    random_index: Tensor,
    random_valid: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """BigBird-ITC block-sparse attention.

    Args:
        q: Queries ``[b, h, n, d]``.
        k: Keys ``[b, h, n, d]``.
        v: Values ``[b, h, n, d]``.
        block_size: Tokens per block; ``n`` is padded to a multiple of it.
        random_index: ``[h, n_blocks, r]`` random key blocks per query block (see
            [`random_blocks`][implementations.big_bird.random_blocks]), for
            ``n_blocks = ceil(n / block_size)``.
        random_valid: ``[h, n_blocks, r]`` bool, False for unused draws; default all True.
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.big_bird import attention, random_blocks
        >>> q = torch.randn(2, 4, 50, 8)
        >>> index, valid = random_blocks(4, n_blocks=7, num_random_blocks=2, seed=0)
        >>> attention(q, q, q, block_size=8, random_index=index, random_valid=valid).shape
        torch.Size([2, 4, 50, 8])
    """
    b, h, n, _ = q.shape
    mask = torch.ones(b, n, dtype=torch.bool, device=q.device) if mask is None else mask
    q, _ = pad_to_multiple(q, block_size)
    k, _ = pad_to_multiple(k, block_size)
    v, _ = pad_to_multiple(v, block_size)
    mask, _ = pad_to_multiple(mask, block_size, dim=-1, value=False)
    n_blocks = q.shape[-2] // block_size
    q_blocks, k_blocks, v_blocks = (chunk(t, block_size) for t in (q, k, v))  # [b, h, nb, bs, d]
    mask_blocks = chunk(mask, block_size, dim=-1)  # [b, nb, bs]

    # Which key blocks each query block gathers: window (t-1, t, t+1), global (0, nb-1), random.
    device = q.device
    t = torch.arange(n_blocks, device=device)
    window = torch.stack([t - 1, t, t + 1], dim=-1)  # [nb, 3]
    is_global = (window == 0) | (window == n_blocks - 1)
    window_valid = (window >= 0) & (window < n_blocks) & ~is_global  # globals come next
    global_blocks = torch.tensor([0, n_blocks - 1], device=device).expand(n_blocks, 2)
    global_valid = torch.tensor([True, n_blocks > 1], device=device).expand(n_blocks, 2)
    random_index = random_index.to(device)
    if random_valid is None:
        random_valid = torch.ones_like(random_index, dtype=torch.bool)
    index = torch.cat(
        [
            window.clamp(0, n_blocks - 1).expand(h, -1, -1),
            global_blocks.expand(h, -1, -1),
            random_index,
        ],
        dim=-1,
    )  # [h, nb, m], m = 5 + r
    valid = torch.cat(
        [window_valid.expand(h, -1, -1), global_valid.expand(h, -1, -1), random_valid.to(device)],
        dim=-1,
    )  # [h, nb, m]

    head = torch.arange(h, device=device)[:, None, None]
    keys = k_blocks[:, head, index].flatten(-3, -2)  # [b, h, nb, m * bs, d]
    values = v_blocks[:, head, index].flatten(-3, -2)  # [b, h, nb, m * bs, d]
    key_ok = (mask_blocks[:, index] & valid[..., None]).flatten(-2)  # [b, h, nb, m * bs]
    out = softmax_attention(q_blocks, keys, values, key_ok.unsqueeze(-2))  # [b, h, nb, bs, d]

    # The global blocks' queries attend to every key: O(2 * bs * n).
    rows = torch.tensor([0] if n_blocks == 1 else [0, n_blocks - 1], device=device)
    global_out = softmax_attention(
        q_blocks[:, :, rows], k[:, :, None], v[:, :, None], mask[:, None, None, None, :]
    )  # [b, h, |G|, bs, d]
    out = out.index_copy(2, rows, global_out)
    return out.flatten(-3, -2)[:, :, :n]  # [b, h, n, d]


@register("big-bird", kind="attention", supports_causal=False)
class BigBird(nn.Module):
    """BigBird-ITC block-sparse self-attention (window + random + global blocks).

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Must be False (BigBird's sparse attention is used in encoders).
        block_size: $b$, tokens per block.
        num_random_blocks: $r$, random key blocks per query block.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "big-bird", dim=32, heads=4, block_size=8, num_random_blocks=2
        ... )
        >>> x = torch.randn(2, 100, 32)
        >>> mask = torch.ones(2, 100, dtype=torch.bool)
        >>> mask[1, 90:] = False
        >>> layer(x, mask).shape
        torch.Size([2, 100, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"num_random_blocks": (0, 2**20)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        block_size: int = 64,
        num_random_blocks: int = 3,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError(
                "causal=True is not supported: BigBird's sparse attention is bidirectional"
            )
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if not isinstance(num_random_blocks, int) or num_random_blocks < 0:
            raise ValueError(f"num_random_blocks must be an int >= 0, got {num_random_blocks!r}")
        self.heads = heads
        self.block_size = block_size
        self.num_random_blocks = num_random_blocks
        self.proj = HeadProjections(dim, heads)
        # The per-layer seed of the random pattern, drawn from torch's (seeded) RNG.
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item())
        # Patterns already drawn, keyed by (n_blocks, seed); small CPU tensors.
        self._patterns: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def pattern(self, n_blocks: int) -> tuple[Tensor, Tensor]:
        """This layer's random blocks for ``n_blocks`` blocks.

        See [`random_blocks`][implementations.big_bird.random_blocks].
        """
        key = (n_blocks, self.seed)
        if key not in self._patterns:
            self._patterns[key] = random_blocks(
                self.heads, n_blocks, self.num_random_blocks, self.seed
            )
        return self._patterns[key]

    def get_extra_state(self) -> dict[str, Any]:
        """The seed travels in the ``state_dict``, so a loaded layer keeps its pattern."""
        return {"seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the seed saved by `get_extra_state`."""
        self.seed = int(state["seed"])

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, num_random_blocks={self.num_random_blocks}"

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        n_blocks = -(-x.shape[1] // self.block_size)
        index, valid = self.pattern(n_blocks)  # [h, nb, r] each, fixed per layer
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(
            q,
            k,
            v,
            block_size=self.block_size,
            random_index=index,
            random_valid=valid,
            mask=mask,
        )  # [b, h, n, d]
        return self.proj.out(o)
