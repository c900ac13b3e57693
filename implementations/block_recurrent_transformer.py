r"""Block-Recurrent Transformer: a transformer layer applied recurrently over blocks of tokens.

Paper: *Block-Recurrent Transformers*, DeLesley Hutchins, Imanol Schlag, Yuhuai Wu, Ethan Dyer
and Behnam Neyshabur, NeurIPS 2022 (arXiv:2203.07852).

The sequence is cut into blocks of $W$ tokens. A set of $S$ **state vectors**
$c_t \in \mathbb{R}^{S \times d_{model}}$ is carried from block to block, like the cell of an
LSTM, and updated by attention. For block $t$ with token inputs $x_t$ the recurrent cell computes
two directions, sharing the keys and values: tokens give $K_e, V_e$, states give $K_s, V_s$
(projections of the layer-normalised states plus learned state position embeddings).

**Vertical direction** (the layer's output for the tokens): self-attention of the tokens over a
sliding window of the last $W$ tokens, itself included, reaching into the previous block (the
authors' code lets a block see the whole previous block, $W$ to $2W - 1$ tokens), and
cross-attention of the tokens to the current state, concatenated and projected,

$$
y_t = W_o \big[\, \mathrm{Attn}(Q_e^{self}, K_e, V_e) \;;\;
    \mathrm{Attn}(Q_e^{cross}, K_s, V_s) \,\big].
$$

**Horizontal direction** (the next state): self-attention of the states over the states and
cross-attention of the states to the block's tokens, concatenated ($h_t$) and projected to the
candidate $z_t = W_z h_t$, then gated into the state. Two gates of the paper are implemented:

$$
\text{fixed:}\quad g = \sigma(b_g), \qquad c_{t+1} = c_t \odot g + z_t \odot (1 - g);
$$

$$
\text{LSTM:}\quad f_t = \sigma(W_f h_t + b_f + 1), \quad i_t = \sigma(W_i h_t + b_i - 1), \qquad
c_{t+1} = c_t \odot f_t + z_t \odot i_t ,
$$

the $+1$ / $-1$ biasing the gate to remember at the start (as in the authors' code, where
$z_t$ is a linear projection without a non-linearity).

The blocks are processed one after another (a loop over $n / W$ blocks; the token
self-attention, which needs no state, runs for all tokens at once). Each block costs
$O(W (W + S) d + S (S + W) d)$, so a sequence costs $O(n (W + S) d)$: linear in $n$.

**Where the time goes** (``torch.profiler``, one thread, causal forward at n = 8192 after one
warm segment, $W = S = 512$: 1.5 s): the recurrent cell over the 16 blocks about 0.65 s (48
fused attention calls on ``[512, 64]`` blocks for the state's self- and cross-attention,
0.34 s; 64 ``[512, 512]`` state projections and 16 gate products, 0.28 s), the token
sliding-window attention 0.28 s, the token projections 0.3 s, concatenations 0.08 s. With
$W + S = 1024$ keys per token (the window's two blocks and the state) the layer does 0.62x
the FLOPs of causal exact attention at 8192 and runs at half the fused kernel's rate (126
against 242 GFLOP/s: the cell's small products and its loop over blocks), so it is 1.2x
exact attention forward at 8192 (1.1x forward+backward) and 0.8x from 16384 on. The blocks
must run in order, each reading the state the previous one wrote: the loop is the algorithm.

**What is implemented, and what is not.** Implemented: the token sliding-window attention, the
cross-attention in both directions, the state self-attention, shared keys and values, learned
state position embeddings, a learned initial state, and the fixed and LSTM gates with their
biases. Not implemented: the feed-forward layers (the vertical one is the host Transformer's
feed-forward; the horizontal gated MLP is skipped, the authors' "skip" configuration), the
T5 relative position biases of the token attention, and the cell's dropout. Gradients flow
through the recurrence within a call and stop at the call boundary.

**Across calls** (kind ``memory``): ``forward(x, memory) -> (y, memory)`` carries the state and
the keys and values of the last $W$ tokens (the sliding window of the next call's first tokens).
Calling on two halves whose split falls on a block boundary gives exactly the outputs and final
state of one call on the whole sequence; a call whose length is not a multiple of $W$ updates the
state with its last, shorter block.

``causal=True`` is the paper's language model. ``causal=False`` (ours) lets a token see $W$ tokens
on both sides within the segment; the state a block reads still only summarises earlier blocks.

Hyper-parameters (the paper's main configuration): ``window_size`` $W$ = 512,
``state_size`` $S$ = 512, ``gate`` ``"fixed"`` or ``"lstm"``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    merge_heads,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
)
from implementations._registry import register

__all__ = ["BlockRecurrentMemory", "BlockRecurrentTransformer", "fixed_gate", "lstm_gate"]

Gate = Literal["fixed", "lstm"]


class BlockRecurrentMemory(NamedTuple):
    """What one call hands to the next.

    Attributes:
        state: ``[batch, S, dim]``, the recurrent state vectors $c_t$.
        keys: ``[batch, heads, <= W, dim_head]``, keys of the last tokens seen.
        values: ``[batch, heads, <= W, dim_head]``, their values.
    """

    state: Tensor
    keys: Tensor
    values: Tensor


def fixed_gate(state: Tensor, z: Tensor, bias: Tensor) -> Tensor:
    r"""$c \odot \sigma(b) + z \odot (1 - \sigma(b))$: a learned, input-independent gate.

    Examples:
        >>> import torch
        >>> from implementations.block_recurrent_transformer import fixed_gate
        >>> fixed_gate(torch.ones(1, 2), torch.zeros(1, 2), torch.tensor([0.0, 100.0]))
        tensor([[0.5000, 1.0000]])
    """
    g = torch.sigmoid(bias)
    return state * g + z * (1 - g)


def lstm_gate(state: Tensor, z: Tensor, forget_logits: Tensor, input_logits: Tensor) -> Tensor:
    r"""$c \odot \sigma(W_f h + b_f + 1) + z \odot \sigma(W_i h + b_i - 1)$.

    ``forget_logits`` and ``input_logits`` are $W_f h + b_f$ and $W_i h + b_i$.

    Examples:
        >>> import torch
        >>> from implementations.block_recurrent_transformer import lstm_gate
        >>> lstm_gate(torch.ones(1), torch.ones(1), torch.tensor([-1.0]), torch.tensor([1.0]))
        tensor([1.])
    """
    return state * torch.sigmoid(forget_logits + 1) + z * torch.sigmoid(input_logits - 1)


@register("block-recurrent-transformer", kind="memory", supports_causal=True)
class BlockRecurrentTransformer(nn.Module):
    r"""The block-recurrent cell: sliding-window token attention plus a gated recurrent state.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads.
        causal: Token self-attention sees only the past (the paper's language model).
        window_size: $W$, the block length and the token attention window.
        state_size: $S$, the number of state vectors.
        gate: ``"fixed"`` (a learned bias per channel) or ``"lstm"`` (input and forget gates).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("block-recurrent-transformer", dim=32, heads=4,
        ...                               causal=True, window_size=8, state_size=4)
        >>> y, memory = layer(torch.randn(2, 24, 32))  # three blocks, one after another
        >>> y, memory = layer(torch.randn(2, 8, 32), memory=memory)
        >>> y.shape, memory.state.shape
        (torch.Size([2, 8, 32]), torch.Size([2, 4, 32]))
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        window_size: int = 512,
        state_size: int = 512,
        gate: Gate = "fixed",
    ) -> None:
        super().__init__()
        if window_size < 1 or state_size < 1:
            raise ValueError(
                f"window_size and state_size must be >= 1, got {window_size} and {state_size}"
            )
        if gate not in ("fixed", "lstm"):
            raise ValueError(f"gate must be 'fixed' or 'lstm', got {gate!r}")
        self.dim, self.heads, self.causal = dim, heads, causal
        self.window_size, self.state_size, self.gate = window_size, state_size, gate
        self.dim_head = dim // heads

        def linear(fan_in: int = dim, bias: bool = False) -> nn.Linear:
            return nn.Linear(fan_in, dim, bias=bias)

        # Tokens: two query sets (self, cross) and the shared keys / values.
        self.tok_q_self, self.tok_q_cross, self.tok_k, self.tok_v = (linear() for _ in range(4))
        # States: two query sets (self, cross) and the shared keys / values.
        self.st_q_self, self.st_q_cross, self.st_k, self.st_v = (linear() for _ in range(4))
        self.state_norm = nn.LayerNorm(dim)
        self.state_pos = nn.Parameter(torch.randn(state_size, dim) * 0.02)
        self.initial_state = nn.Parameter(torch.randn(state_size, dim) * 0.02)
        self.to_out = linear(2 * dim, bias=True)  # W_o of the vertical direction
        self.to_z = linear(2 * dim, bias=True)  # W_z of the horizontal direction
        if gate == "fixed":
            self.gate_bias = nn.Parameter(torch.randn(dim) * 0.1)
        else:
            self.forget_gate = linear(2 * dim, bias=True)
            self.input_gate = linear(2 * dim, bias=True)
            for layer in (self.forget_gate, self.input_gate):
                nn.init.normal_(layer.bias, std=0.1)

    def init_memory(self, batch: int, *, device=None, dtype=None) -> BlockRecurrentMemory:
        """The memory before the first call: the learned initial state, no past tokens."""
        state = self.initial_state.to(device=device, dtype=dtype)
        empty = torch.zeros(batch, self.heads, 0, self.dim_head, device=device, dtype=dtype)
        return BlockRecurrentMemory(state.expand(batch, -1, -1), empty, empty)

    def check_memory(self, memory: BlockRecurrentMemory | None, x: Tensor) -> BlockRecurrentMemory:
        """The previous memory (the initial one when None), validated against ``x``."""
        if memory is None:
            return self.init_memory(x.shape[0], device=x.device, dtype=x.dtype)
        state, keys, values = memory
        b = x.shape[0]
        if state.shape != (b, self.state_size, self.dim) or keys.shape[:2] != (b, self.heads):
            raise ValueError(
                f"memory must hold a state [batch={b}, {self.state_size}, {self.dim}] and keys "
                f"[batch, {self.heads}, <= {self.window_size}, {self.dim_head}], got "
                f"{tuple(state.shape)} and {tuple(keys.shape)}"
            )
        # SG: no gradient into the previous call.
        return BlockRecurrentMemory(
            state.detach().to(x.dtype), keys.detach().to(x.dtype), values.detach().to(x.dtype)
        )

    def update_state(self, state: Tensor, hidden: Tensor) -> Tensor:
        """Gate the candidate $z = W_z h$ into ``state`` ``[b, S, dim]`` (``hidden``: $h$)."""
        z = self.to_z(hidden)  # [b, S, dim]
        if self.gate == "fixed":
            return fixed_gate(state, z, self.gate_bias)
        return lstm_gate(state, z, self.forget_gate(hidden), self.input_gate(hidden))

    def token_attention(
        self, q: Tensor, k: Tensor, v: Tensor, past: BlockRecurrentMemory
    ) -> Tensor:
        """Sliding-window self-attention of the tokens over ``[past tokens; segment]``."""
        n, w = q.shape[-2], self.window_size
        tail = past.keys.shape[-2]
        keys = torch.cat([past.keys, k], dim=-2)  # [b, h, tail + n, d]
        values = torch.cat([past.values, v], dim=-2)
        queries = F.pad(q, (0, 0, tail, 0))  # the past tokens ask nothing
        blocks = sliding_window_blocks(
            queries, keys, values, before=w - 1, after=0 if self.causal else w - 1
        )
        o = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)
        return o.flatten(-3, -2)[..., tail : tail + n, :]  # [b, h, n, d]

    def forward(
        self, x: Tensor, memory: BlockRecurrentMemory | None = None
    ) -> tuple[Tensor, BlockRecurrentMemory]:
        """``x`` ``[b, n, dim]`` and the previous memory -> ``(y, new memory)``."""
        past = self.check_memory(memory, x)
        h, w = self.heads, self.window_size
        k = split_heads(self.tok_k(x), h)  # [b, h, n, d]: K_e
        v = split_heads(self.tok_v(x), h)  # V_e
        local = self.token_attention(split_heads(self.tok_q_self(x), h), k, v, past)
        q_cross = split_heads(self.tok_q_cross(x), h)  # [b, h, n, d]

        state, reads = past.state, []
        for start in range(0, x.shape[1], w):  # one block at a time: c_t -> c_{t+1}
            stop = min(start + w, x.shape[1])
            s = self.state_norm(state) + self.state_pos  # [b, S, dim]
            k_s, v_s = split_heads(self.st_k(s), h), split_heads(self.st_v(s), h)  # [b, h, S, d]
            # Vertical: the block's tokens read the state c_t.
            reads.append(softmax_attention(q_cross[..., start:stop, :], k_s, v_s))
            # Horizontal: the states attend to themselves and to the block's tokens.
            s_self = softmax_attention(split_heads(self.st_q_self(s), h), k_s, v_s)
            s_cross = softmax_attention(
                split_heads(self.st_q_cross(s), h), k[..., start:stop, :], v[..., start:stop, :]
            )  # [b, h, S, d]
            hidden = torch.cat([merge_heads(s_self), merge_heads(s_cross)], dim=-1)  # [b, S, 2dim]
            state = self.update_state(state, hidden)
        cross = torch.cat(reads, dim=-2)  # [b, h, n, d]
        y = self.to_out(torch.cat([merge_heads(local), merge_heads(cross)], dim=-1))

        keys = torch.cat([past.keys, k], dim=-2)
        values = torch.cat([past.values, v], dim=-2)
        keep = min(w, keys.shape[-2])
        tail = keys.shape[-2] - keep
        new = BlockRecurrentMemory(
            state.detach(), keys[..., tail:, :].detach(), values[..., tail:, :].detach()
        )
        return y, new
