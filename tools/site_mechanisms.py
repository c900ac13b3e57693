"""What the site says about an implementation: its registry record and a usage snippet.

The site generator reads data, never runs models: it takes the kind and causal support
from the registry (the catalog check imports it anyway) and writes the usage snippet as
text that the test suite executes.

Examples:
    >>> info = MechanismInfo("dense", "implementations.dense", "Dense", "attention", True)
    >>> print(usage_snippet(info, causal=True).splitlines()[3])
    layer = implementations.build("dense", dim=64, heads=4, causal=True)
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.measure_settings import options_for

# Small sizes so that every snippet runs in well under a second on a CPU.
SNIPPET_DIM, SNIPPET_HEADS, SNIPPET_LENGTH, SNIPPET_BATCH = 64, 4, 256, 2


@dataclass(frozen=True)
class MechanismInfo:
    """A registered mechanism as its source declares it."""

    id: str
    module: str
    class_name: str
    kind: str
    supports_causal: bool

    @property
    def source_path(self) -> str:
        """The module's file, relative to the repository root."""
        return self.module.replace(".", "/") + ".py"


def read_mechanism(id: str, module: str) -> MechanismInfo | None:
    """What the registry says of ``id`` when ``module`` implements it, else None.

    Examples:
        >>> read_mechanism("dense", "implementations.dense").kind
        'attention'
        >>> read_mechanism("dense", "implementations.no_such_module") is None
        True
    """
    import implementations  # the catalog check has imported it already

    if module != implementations.module_name(id) or id not in implementations.available():
        return None
    record = implementations.mechanism(id)
    return MechanismInfo(
        id=id,
        module=module,
        class_name=record.cls.__name__,
        kind=record.kind,
        supports_causal=record.supports_causal,
    )


def _options_text(id: str) -> str:
    """The measurement's options for the snippet's length, as keyword arguments."""
    options = options_for(id, SNIPPET_LENGTH)
    return "".join(f", {name}={value!r}" for name, value in sorted(options.items()))


def usage_snippet(info: MechanismInfo, *, causal: bool) -> str:
    """A runnable example that builds the mechanism and runs one forward pass.

    The forward call follows the mechanism's kind (see ``implementations._registry``).
    """
    build = (
        f'layer = implementations.build("{info.id}", dim={SNIPPET_DIM}, '
        f"heads={SNIPPET_HEADS}{', causal=True' if causal else ''}{_options_text(info.id)})"
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
