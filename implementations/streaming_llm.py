r"""StreamingLLM: a sliding window of recent tokens plus a few "attention sink" tokens.

Paper: *Efficient Streaming Language Models with Attention Sinks*, Guangxuan Xiao, Yuandong
Tian, Beidi Chen, Song Han and Mike Lewis, ICLR 2024 (arXiv:2309.17453).

Window attention, where a decoder keeps only the keys and values of the last $w$ tokens, breaks
down as soon as the first tokens leave the window. The paper traces this to **attention sinks**:
trained models put a large share of every query's softmax mass on the first few tokens,
whatever their content, because those tokens are visible to every later query. Keeping the
keys and values of the first $s$ tokens (4 suffice) beside the window restores the quality
of full attention, with a cache of fixed size $s + w$. Query $i$ attends to

$$
\mathcal{A}(i) = \{\, j : j < s \,\} \cup \{\, j : i - w < j \le i \,\}, \qquad
o_i = \sum_{j \in \mathcal{A}(i),\, j \le i}
\frac{\exp(q_i^\top k_j / \sqrt{d_k})}{\sum_{l \in \mathcal{A}(i),\, l \le i}
\exp(q_i^\top k_l / \sqrt{d_k})}\, v_j ,
$$

$O(n (s + w) d)$ time and $O(n (s + w))$ memory over a sequence, $O((s + w) d)$ per decoded
token.

**Position handling.** The paper's models use relative positions (RoPE, ALiBi), and it assigns
them by position **within the cache**, not in the original text: with cached tokens
$[0, 1, 2, 3, 6, 7, 8]$ and the query at 9, the positions used are $0 \dots 7$, which keeps
every distance inside what the model saw in training. This layer has **no positional
encoding** (as every layer of the catalog), so its outputs do not depend on positions at all
and the re-assignment has nothing to change; a model that adds rotary or ALiBi positions must
apply them by cache slot to follow the paper.

**Forward.** The window is laid out in blocks
([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks], never an
$n \times n$ mask) and the $s$ sink keys are appended to every block's keys; a sink already
inside a query's window is masked among the sinks so that it is counted once.
**Decoding.** [`step`][implementations.streaming_llm.StreamingLLM.step] keeps a fixed-size cache
of $s + w$ slots per layer and head: token $t < s$ goes to sink slot $t$, later tokens to
window slot $s + (t - s) \bmod w$, overwriting the token $t - w$ that just left the window (a
rolling buffer; the softmax does not depend on the order of the keys). It equals the causal
forward.

``causal=False`` is not in the paper (a streaming decoder is causal): it is the bidirectional
analogue, query $i$ seeing $|i - j| < w$ plus the $s$ sink tokens.

Sinks are the first $s$ positions of the sequence; like every key they are dropped where the
padding mask is False, so a left-padded sequence has fewer (or no) sinks: stream with right
padding.

**Where the time goes** (``torch.profiler``, one thread, causal, forward, n = 8192, the
paper's $w = 2000$, $s = 4$): the fused kernel over the masked window blocks is 69% of the
forward, the projections 12%, building the block masks (``where``, ``cat``, ``fill``) most
of the rest. With $w$ a quarter of $n$ each block of about $w$ queries reads two blocks of
keys (three without causality): about as many keys as causal exact attention reads at this
length, through a masked kernel that cannot skip like the causal one. So StreamingLLM is
slower than exact attention at n = 8192 (1.17× forward, 1.14× forward+backward; the
bidirectional form 1.13× forward) and faster from n = 16384 (0.66× forward);
its advantage is the decoding cache of $s + w$ positions, not training at $n \approx 4w$.

Hyper-parameters:

* ``sink_tokens``: $s$, the number of initial tokens kept (4 in the paper; 0 gives plain
  window attention, the paper's failing baseline).
* ``window_size``: $w$, the number of most recent tokens kept, the current one included (the
  official streaming script keeps 2000 recent tokens beside 4 sinks).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
)
from implementations._registry import Range, register

__all__ = ["StreamingCache", "StreamingLLM", "attention"]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = True,
    *,
    sink_tokens: int,
    window_size: int,
) -> Tensor:
    r"""Attention to the first ``sink_tokens`` keys and a window of ``window_size`` keys.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        mask: Key-padding mask ``[b, n]`` (True = real).
        causal: Query $i$ sees $i - w < j \le i$ and sinks $j \le i$; else $|i - j| < w$ and
            every sink.
        sink_tokens: $s$.
        window_size: $w$ (the query itself included).

    Returns:
        ``[b, h, n, dv]``; a query that sees no key gets zeros.

    Examples:
        >>> import torch
        >>> from implementations._helpers import reference_softmax_attention
        >>> from implementations.streaming_llm import attention
        >>> q = torch.randn(1, 2, 12, 4)
        >>> i, j = torch.arange(12)[:, None], torch.arange(12)[None, :]
        >>> seen = (j <= i) & ((j < 2) | (i - j < 3))  # 2 sinks, a window of 3
        >>> torch.allclose(attention(q, q, q, sink_tokens=2, window_size=3),
        ...                reference_softmax_attention(q, q, q, seen), atol=1e-6)
        True
    """
    n = q.shape[-2]
    sinks = min(sink_tokens, n)
    before, after = window_size - 1, 0 if causal else window_size - 1
    key_mask = None if mask is None else mask[:, None, :]  # [b, 1, n]
    blocks = sliding_window_blocks(q, k, v, before, after, mask=key_mask)
    n_blocks, c = blocks.q.shape[-3], blocks.q.shape[-2]

    # Every block also reads the sink keys: [b, h, nb, s, d].
    sink_k = k[:, :, None, :sinks].expand(-1, -1, n_blocks, -1, -1)
    sink_v = v[:, :, None, :sinks].expand(-1, -1, n_blocks, -1, -1)
    position = torch.arange(n_blocks * c, device=q.device).view(n_blocks, c, 1)  # [nb, c, 1]
    sink = torch.arange(sinks, device=q.device)  # [s]
    # A sink inside the query's window is already one of the window keys: count it once.
    sink_ok = sink < position - before  # [nb, c, s]
    if not causal:
        sink_ok = sink_ok | (sink > position + after)
    if mask is not None:
        sink_ok = sink_ok & mask[:, None, None, None, :sinks]  # [b, 1, nb, c, s]
    keys = torch.cat([blocks.k, sink_k], dim=-2)  # [b, h, nb, L + s, d]
    values = torch.cat([blocks.v, sink_v], dim=-2)  # [b, h, nb, L + s, dv]
    allowed_window = blocks.allowed.expand(*sink_ok.shape[:-1], -1)  # [.., nb, c, L]
    allowed = torch.cat([allowed_window, sink_ok], dim=-1)  # [.., nb, c, L + s]
    o = softmax_attention(blocks.q, keys, values, allowed)  # [b, h, nb, c, dv]
    return o.flatten(-3, -2)[..., :n, :]  # [b, h, n, dv]


class StreamingCache(NamedTuple):
    """The fixed-size decoding cache: ``sink_tokens + window_size`` slots per head.

    Attributes:
        keys: ``[b, h, s + w, d_k]``; slots ``0 .. s - 1`` hold the sinks, the rest a rolling
            window.
        values: ``[b, h, s + w, d_k]``.
        filled: Bool ``[s + w]``, which slots hold a token yet.
        position: How many tokens have been decoded (the next token's position).
    """

    keys: Tensor
    values: Tensor
    filled: Tensor
    position: int


@register("streaming-llm", kind="attention", supports_causal=True)
class StreamingLLM(nn.Module):
    """Multi-head attention to ``sink_tokens`` initial tokens and a window of recent tokens.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Causal (the paper's decoder); False gives the bidirectional analogue.
        sink_tokens: $s$, initial tokens every query keeps seeing.
        window_size: $w$, most recent tokens seen (the current one included).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("streaming-llm", dim=32, heads=4, causal=True,
        ...                               sink_tokens=2, window_size=4)
        >>> x = torch.randn(2, 15, 32)
        >>> y = layer(x)
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(15):  # a cache of 2 + 4 slots, whatever the length
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5), state.keys.shape
        (True, torch.Size([2, 4, 6, 8]))
    """

    # No sinks is plain window attention (the paper's baseline).
    option_ranges: ClassVar[dict[str, Range]] = {"sink_tokens": (0, 2**20)}

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        sink_tokens: int = 4,
        window_size: int = 2000,
    ) -> None:
        super().__init__()
        self.causal = causal
        self.sink_tokens = sink_tokens
        self.window_size = window_size
        self.proj = HeadProjections(dim, heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(
            q,
            k,
            v,
            mask,
            self.causal,
            sink_tokens=self.sink_tokens,
            window_size=self.window_size,
        )  # [b, h, n, d]
        return self.proj.out(o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> StreamingCache:
        """An empty cache of ``sink_tokens + window_size`` slots."""
        slots = self.sink_tokens + self.window_size
        weight = self.proj.to_k.weight
        device = weight.device if device is None else device
        dtype = weight.dtype if dtype is None else dtype
        shape = (batch, self.proj.heads, slots, self.proj.dim_head)
        empty = torch.zeros(shape, device=device, dtype=dtype)
        filled = torch.zeros(slots, dtype=torch.bool, device=device)
        return StreamingCache(empty, empty.clone(), filled, 0)

    def step(self, x_t: Tensor, state: StreamingCache) -> tuple[Tensor, StreamingCache]:
        """Decode one position: ``x_t`` ``[b, dim]`` -> ``(y_t [b, dim], updated cache)``."""
        if not self.causal:
            raise ValueError("step() decodes autoregressively; build the layer with causal=True")
        heads, s, w, t = self.proj.heads, self.sink_tokens, self.window_size, state.position
        # Sinks fill slots 0 .. s - 1 once; later tokens roll through the w window slots,
        # each overwriting the token that has just left the window.
        slot = t if t < s else s + (t - s) % w
        q = split_heads(self.proj.to_q(x_t)[:, None], heads)  # [b, h, 1, d]
        k = split_heads(self.proj.to_k(x_t)[:, None], heads)  # [b, h, 1, d]
        v = split_heads(self.proj.to_v(x_t)[:, None], heads)  # [b, h, 1, d]
        index = torch.tensor([slot], device=k.device)
        keys = state.keys.index_copy(2, index, k.to(state.keys.dtype))  # [b, h, s + w, d]
        values = state.values.index_copy(2, index, v.to(state.values.dtype))
        filled = state.filled | (torch.arange(s + w, device=k.device) == slot)  # [s + w]
        o = softmax_attention(q, keys, values, filled[None, None, None, :])  # [b, h, 1, d]
        return self.proj.out(o)[:, 0], StreamingCache(keys, values, filled, t + 1)
