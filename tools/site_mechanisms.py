"""What the site says about an implementation, read from its source without running it.

The site generator reads data, never runs models: importing ``implementations`` pulls in
torch and builds modules. The registration decorator
(``@register("performer", kind="attention", supports_causal=True)``) is plain literal
syntax, so it is read from the module's syntax tree instead, and the usage snippet is
written as text that the test suite executes.

Examples:
    >>> info = MechanismInfo("dense", "implementations.dense", "Dense", "attention", True)
    >>> print(usage_snippet(info, causal=True).splitlines()[3])
    layer = implementations.build("dense", dim=64, heads=4, causal=True)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tools.measure_settings import options_for

ROOT = Path(__file__).resolve().parents[1]

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


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def read_mechanism(id: str, module: str, root: Path = ROOT) -> MechanismInfo | None:
    """The registration of ``id`` in ``module``'s source, or None when there is none.

    Examples:
        >>> read_mechanism("dense", "implementations.dense").kind
        'attention'
        >>> read_mechanism("dense", "implementations.no_such_module") is None
        True
    """
    path = root / (module.replace(".", "/") + ".py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call)
                and getattr(decorator.func, "id", getattr(decorator.func, "attr", None))
                == "register"
                and decorator.args
                and _literal(decorator.args[0]) == id
            ):
                continue
            keywords = {k.arg: _literal(k.value) for k in decorator.keywords if k.arg}
            return MechanismInfo(
                id=id,
                module=module,
                class_name=node.name,
                kind=str(keywords.get("kind", "attention")),
                supports_causal=bool(keywords.get("supports_causal", True)),
            )
    return None


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
