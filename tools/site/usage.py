"""The usage snippet of an implementation's page: build the mechanism, run one forward pass.

The site generator reads data, never runs models: the mechanism's kind and causal
support come from its ``@register`` declaration (read without importing torch), its
options from the measurement at the snippet's length, and the snippet is text that the
test suite executes.

Examples:
    >>> from tools.catalog.mechanisms import declared_mechanisms
    >>> dense = declared_mechanisms()["dense"]
    >>> print(usage_snippet(dense, causal=True).splitlines()[3])
    layer = implementations.build("dense", dim=64, heads=4, causal=True)
    >>> print(usage_snippet(dense, causal=False, options={"k": 8}).splitlines()[3])
    layer = implementations.build("dense", dim=64, heads=4, k=8)
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.catalog.mechanisms import DeclaredMechanism
from tools.site.context import SNIPPET_LENGTH

# Small sizes so that every snippet runs in well under a second on a CPU.
SNIPPET_DIM, SNIPPET_HEADS, SNIPPET_BATCH = 64, 4, 2


def usage_snippet(
    info: DeclaredMechanism,
    *,
    causal: bool,
    options: Mapping[str, int | float | str | bool] | None = None,
) -> str:
    """A runnable example that builds the mechanism and runs one forward pass.

    The forward call follows the mechanism's kind (see ``implementations._registry``).
    """
    keywords = "".join(f", {name}={value!r}" for name, value in sorted((options or {}).items()))
    build = (
        f'layer = implementations.build("{info.id}", dim={SNIPPET_DIM}, '
        f"heads={SNIPPET_HEADS}{', causal=True' if causal else ''}{keywords})"
    )
    shape = f"{SNIPPET_BATCH}, {SNIPPET_LENGTH}, {SNIPPET_DIM}"
    lines = ["import torch", "import implementations", "", build, f"x = torch.randn({shape})"]
    if info.kind == "memory":
        lines += [
            "y, memory = layer(x)  # first segment",
            "y, memory = layer(x, memory=memory)  # the next segment attends to the memory",
            f"assert y.shape == ({shape})",
        ]
    elif info.kind == "downsample":
        lines += [
            "y = layer(x)  # a shorter sequence",
            f"assert y.shape == ({SNIPPET_BATCH}, layer.output_length({SNIPPET_LENGTH}), "
            f"{SNIPPET_DIM})",
        ]
    elif info.kind == "ffn":
        lines += [
            "y, aux_loss = layer(x)  # aux_loss: the router's load-balancing loss",
            f"assert y.shape == ({shape})",
        ]
    else:
        lines += [
            "mask = torch.ones(x.shape[:2], dtype=torch.bool)  # True = real token",
            "y = layer(x, mask=mask)",
            f"assert y.shape == ({shape})",
        ]
    return "\n".join(lines) + "\n"
