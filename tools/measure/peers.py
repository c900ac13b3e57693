"""Public implementations (peers) built at our settings, to be timed beside ours.

Each :class:`Peer` names a public package, the mechanism of ours it implements, and how to
build its layer for a setup and a length with the settings ours is measured with
(:func:`~tools.measure.settings.options_for`): same width, heads, windows, buckets, feature
and landmark counts. Weights are not copied: the layouts differ, and only sizes matter to
time and memory. Where a peer's settings cannot match ours, or the peer has a known
defect, its ``notes`` say so; they are printed with the table and stored with the figures.

The peers are the optional extra ``pip install -e '.[peers]' -c
tools/measure/peer-constraints.txt``; a peer that is not installed is reported, never an
error. The timing of a pair is in :mod:`tools.measure.peer_timing`.

Examples:
    >>> [peer.name for peer in peers_of("linformer")]
    ['linformer']
    >>> sorted({peer.mechanism for peer in PEERS})[:3]
    ['axial-transformer', 'big-bird', 'linformer']
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from tools.catalog.measurements import Setup
from tools.measure.settings import options_for

INSTALL = "pip install -e '.[peers]' -c tools/measure/peer-constraints.txt"

# A built peer: its module (moved to the setup's device and dtype by the caller) and the
# function that runs it on ``x`` [b, n, dim] and returns its output tensor.
Built = tuple[nn.Module, Callable[[Tensor], Tensor]]


def _import(module: str) -> Any:
    return importlib.import_module(module)


def _head_dim(setup: Setup) -> int:
    return setup.dim // setup.heads


def axial_width(n: int) -> int:
    """The row length of the grid both axial layers use: a power of two that tiles ``n``.

    Examples:
        >>> axial_width(1024), axial_width(2048)
        (32, 64)
    """
    return 2 ** math.ceil(math.log2(math.sqrt(n)))


def _performer(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("performer_pytorch").SelfAttention
    layer = cls(
        dim=setup.dim,
        heads=setup.heads,
        dim_head=_head_dim(setup),
        causal=causal,
        nb_features=256,
        attn_out_bias=True,
    )
    return layer, layer


def _linformer(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("linformer").LinformerSelfAttention
    layer = cls(dim=setup.dim, seq_len=n, k=256, heads=setup.heads, dim_head=_head_dim(setup))
    return layer, layer


def _nystrom(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("nystrom_attention").NystromAttention
    layer = cls(
        dim=setup.dim,
        dim_head=_head_dim(setup),
        heads=setup.heads,
        num_landmarks=64,
        pinv_iterations=6,
        residual=True,
        residual_conv_kernel=33,
    )
    return layer, layer


def _reformer(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("reformer_pytorch").LSHSelfAttention
    layer = cls(dim=setup.dim, heads=setup.heads, bucket_size=64, n_hashes=4, causal=causal)
    return layer, layer


def _local(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("local_attention").LocalMHA
    layer = cls(
        dim=setup.dim,
        window_size=256,
        dim_head=_head_dim(setup),
        heads=setup.heads,
        causal=causal,
        exact_windowsize=True,
        use_rotary_pos_emb=False,
    )
    return layer, layer


def _sinkhorn_block(n: int) -> int:
    return int(options_for("sinkhorn-transformer", n)["block_size"])


def _sinkhorn(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("sinkhorn_transformer").SinkhornSelfAttention
    block = _sinkhorn_block(n)
    layer = cls(
        dim=setup.dim,
        bucket_size=block,
        max_seq_len=n,
        heads=setup.heads,
        dim_head=_head_dim(setup),
        causal=causal,
        sinkhorn_iter=5,
        temperature=0.75,
    )
    return layer, layer


def _routing(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("routing_transformer.routing_transformer").SelfAttention
    clusters = int(options_for("routing-transformer", n)["n_clusters"])
    layer = cls(
        dim=setup.dim,
        depth=1,
        max_seq_len=n,
        heads=setup.heads,
        local_attn_heads=0,
        window_size=n // clusters,
        dim_head=_head_dim(setup),
        causal=causal,
        rel_pos_emb=False,
    )
    return layer, lambda x: layer(x)[0]


def _axial(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("axial_attention").AxialAttention
    layer = cls(dim=setup.dim, num_dimensions=2, heads=setup.heads, dim_index=-1)
    width = axial_width(n)

    def run(x: Tensor) -> Tensor:
        grid = x.reshape(x.shape[0], n // width, width, x.shape[-1])
        return layer(grid).reshape(x.shape)

    return layer, run


def _memory_compressed(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("memory_compressed_attention").MemoryCompressedAttention
    layer = cls(dim=setup.dim, heads=setup.heads, causal=causal, compression_factor=3)
    return layer, layer


def _perceiver(setup: Setup, n: int, causal: bool) -> Built:
    cls = _import("perceiver_pytorch").Perceiver
    layer = cls(
        num_freq_bands=6,
        depth=1,
        max_freq=10.0,
        input_channels=setup.dim,
        input_axis=1,
        num_latents=512,
        latent_dim=setup.dim,
        cross_heads=1,
        latent_heads=setup.heads,
        cross_dim_head=setup.dim,
        latent_dim_head=_head_dim(setup),
        self_per_cross_attn=6,
        fourier_encode_data=False,
        final_classifier_head=False,
    )
    return layer, layer


def _hf_big_bird(setup: Setup, n: int, causal: bool) -> Built:
    module = _import("transformers.models.big_bird.modeling_big_bird")
    config = module.BigBirdConfig(
        hidden_size=setup.dim,
        num_attention_heads=setup.heads,
        attention_type="block_sparse",
        block_size=64,
        num_random_blocks=3,
        max_position_embeddings=max(n, 4096),
        attention_probs_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
    )
    layer = module.BigBirdAttention(config, seed=0)

    def run(x: Tensor) -> Tensor:
        real = torch.ones(x.shape[:2], device=x.device, dtype=x.dtype)
        masks = module.BigBirdModel.create_masks_for_block_sparse_attn(real, 64)
        blocked, band, from_mask, to_mask = masks
        output = layer(
            x,
            band_mask=band,
            from_mask=from_mask,
            to_mask=to_mask,
            from_blocked_mask=blocked,
            to_blocked_mask=blocked,
        )
        return output[0]

    return layer, run


def _hf_nystromformer(setup: Setup, n: int, causal: bool) -> Built:
    module = _import("transformers.models.nystromformer.modeling_nystromformer")
    config = module.NystromformerConfig(
        hidden_size=setup.dim,
        num_attention_heads=setup.heads,
        num_landmarks=64,
        segment_means_seq_len=n,
        conv_kernel_size=33,
        inv_coeff_init_option=False,
        attention_probs_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
    )
    layer = module.NystromformerAttention(config)
    return layer, lambda x: layer(x)[0]


@dataclass(frozen=True)
class Peer:
    """A public implementation of one of our mechanisms.

    Attributes:
        name: The package's distribution name (its version is read from it).
        module: The module to import; its absence means "not installed".
        mechanism: Our catalog id.
        build: ``(setup, n, causal) -> (module, run)`` at our settings for length ``n``.
        settings: The matched settings, in words.
        causal: The forms the peer runs: ``(False,)``, ``(False, True)`` ...
        ours: Options our layer is built with beside this peer, over :func:`options_for`.
        notes: Settings that cannot match ours, and known defects of the peer.
        label: The name shown in tables (the package name unless two peers share one).
    """

    name: str
    module: str
    mechanism: str
    build: Callable[[Setup, int, bool], Built]
    settings: str
    causal: tuple[bool, ...] = (False, True)
    ours: Callable[[int], dict[str, Any]] = lambda n: {}
    notes: tuple[str, ...] = ()
    label: str = ""
    lengths_ok: Callable[[int], str | None] = field(default=lambda n: None)

    @property
    def shown(self) -> str:
        """The peer's name in tables and files."""
        return self.label or self.name

    def installed(self) -> bool:
        """Whether the peer's module can be imported here (without importing it).

        Examples:
            >>> Peer("no-such-peer", "no_such_peer_module", "dense", _linformer, "").installed()
            False
        """
        try:
            return importlib.util.find_spec(self.module.split(".")[0]) is not None
        except ValueError:
            return False

    def version(self) -> str | None:
        """The installed version of the peer's package, or None."""
        try:
            return importlib.metadata.version(self.name)
        except importlib.metadata.PackageNotFoundError:
            return None


def _divisible(by: Callable[[int], int]) -> Callable[[int], str | None]:
    def check(n: int) -> str | None:
        return None if n % by(n) == 0 else f"n must be a multiple of {by(n)} for this peer"

    return check


PEERS: tuple[Peer, ...] = (
    Peer("performer-pytorch", "performer_pytorch", "performer", _performer,
         "256 orthogonal softmax features, no feature redraw",
         notes=("the peer adds a small eps to its softmax features (outputs agree with ours "
                "to round-off only with it removed)",)),
    Peer("linformer", "linformer", "linformer", _linformer,
         "k = 256, E and F sized to n",
         causal=(False,),
         notes=("the peer shares E and F across heads (ours: one per head, sharing 'none')",)),
    Peer("nystrom-attention", "nystrom_attention", "nystromformer", _nystrom,
         "64 landmarks, 6 pseudo-inverse iterations, depthwise conv residual of 33",
         causal=(False,),
         notes=("the peer pads n to a multiple of the landmark count",)),
    Peer("reformer-pytorch", "reformer_pytorch", "reformer", _reformer,
         "64-token chunks, 4 hash rounds",
         notes=("the peer hashes into n/64 buckets; ours keeps 64 buckets as n grows "
                "(tools/measure/settings.py)",)),
    Peer("local-attention", "local_attention", "longformer", _local,
         "LocalMHA, exact band of ±256 (ours: attention_window 512), no rotary embedding"),
    Peer("sinkhorn-transformer", "sinkhorn_transformer", "sinkhorn-transformer", _sinkhorn,
         "blocks of sqrt(n) tokens, 5 Sinkhorn iterations, temperature 0.75",
         notes=("the peer's non-causal path uses the re-sorted keys as values",),
         lengths_ok=_divisible(lambda n: _sinkhorn_block(n))),
    Peer("routing-transformer", "routing_transformer", "routing-transformer", _routing,
         "sqrt(n) clusters of n/sqrt(n) tokens, all heads routed, no relative positions",
         notes=("the peer takes the cluster size (window_size = n / clusters), not the "
                "number of clusters",)),
    Peer("axial-attention", "axial_attention", "axial-transformer", _axial,
         "a grid of n / w rows of w = 2^ceil(log2 sqrt n), row then column, summed",
         causal=(False,),
         ours=lambda n: {"width": axial_width(n)},
         notes=("the peer sums the row and column outputs; ours applies them in sequence",)),
    Peer("memory-compressed-attention", "memory_compressed_attention", "memory-compressed",
         _memory_compressed, "stride-3 compressed keys and values"),
    Peer("perceiver-pytorch", "perceiver_pytorch", "perceiver", _perceiver,
         "512 latents, 1 cross-attention (1 head) and 6 latent self-attentions",
         causal=(False,),
         notes=("the peer's feed-forward widens 4x (ours: widening_factor 1) and uses GEGLU",)),
    Peer("transformers", "transformers", "big-bird", _hf_big_bird,
         "HF BigBirdAttention, 64-token blocks, 3 random blocks",
         causal=(False,), label="transformers (BigBird)",
         notes=("the peer builds the full n×n probability tensor and drops random blocks "
                "in eval mode", "n must be a multiple of 64"),
         lengths_ok=_divisible(lambda n: 64)),
    Peer("transformers", "transformers", "nystromformer", _hf_nystromformer,
         "HF NystromformerAttention, 64 landmarks, 6 iterations, conv residual of 33",
         causal=(False,), label="transformers (Nystromformer)",
         notes=("the peer's segment means need n to be a multiple of 64",),
         lengths_ok=_divisible(lambda n: 64)),
)  # fmt: skip


def peers_of(mechanism: str) -> list[Peer]:
    """The peers of one of our mechanisms, installed or not."""
    return [peer for peer in PEERS if peer.mechanism == mechanism]


def build_peer(peer: Peer, setup: Setup, n: int, causal: bool) -> Callable[[Tensor], Tensor]:
    """The peer's forward function at length ``n``, on the setup's device and dtype."""
    from tools.measure.workload import torch_dtype

    torch.manual_seed(0)
    module, run = peer.build(setup, n, causal)
    module.to(device=setup.device, dtype=torch_dtype(setup))
    return run
