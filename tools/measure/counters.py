"""Deterministic cost counters: forward FLOPs and the peak bytes of live tensors.

Both depend on shapes and code paths only, never on timing, so tests can assert them.

FLOPs come from torch's ``FlopCounterMode``. In torch 2.13 it has no formula for
``aten._scaled_dot_product_flash_attention_for_cpu``, the kernel behind
``scaled_dot_product_attention`` on CPU, and would count exact attention as free; we
register the standard formula (two matrix products, ``4 b h n_q n_k d`` FLOPs forward).

Memory is counted by :class:`LiveTensorBytes`, a dispatch mode that sees every tensor an
operator creates. It adds the bytes of each new storage when it appears and subtracts
them when Python frees it (a weak-reference finalizer on the storage), and keeps the
peak. Tensors alive before the pass (parameters, the input) are not counted, so the
figure is the extra memory the forward pass needs. Views share their base's storage and
cost nothing. This is what the caching allocator would hand out, without its rounding.

Examples:
    >>> import torch
    >>> q = torch.randn(1, 2, 64, 16)
    >>> count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    524288
    >>> peak_live_bytes(lambda: torch.ones(1000) * 2)  # two float32 buffers of 4000 B
    8000
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _sdpa_cpu_forward(query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward(
    grad_out_shape, query_shape, key_shape, value_shape, *args: Any, **kwargs: Any
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# Formulas torch 2.13 lacks for the CPU kernels behind scaled_dot_product_attention.
CPU_ATTENTION_FORMULAS: dict[Any, Callable[..., int]] = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_forward,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward,
}


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of everything ``run()`` executes, CPU attention kernels included."""
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FORMULAS) as counter:
        run()
    return int(counter.get_total_flops())


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of storages created inside the mode that are still alive.

    Attributes:
        current: Bytes alive now.
        peak: The largest value ``current`` reached.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.current -= size

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen:
            return
        size = storage.nbytes()
        self._seen.add(key)
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key, size)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        before = {
            id(t.untyped_storage())
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for tensor in tree_flatten(out)[0]:
            # Outputs that alias an input (views, in-place ops) allocate nothing new.
            if isinstance(tensor, torch.Tensor) and id(tensor.untyped_storage()) not in before:
                self._track(tensor)
        return out


def peak_live_bytes(run: Callable[[], Any]) -> int:
    """Peak bytes of tensors allocated by ``run()`` and alive at the same time."""
    with LiveTensorBytes() as tracker:
        result = run()
        del result
    return tracker.peak
