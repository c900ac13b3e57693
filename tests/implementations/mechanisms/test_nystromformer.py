"""Nyströmformer (Xiong et al., 2021): landmarks, pseudo-inverse and masking vs exact oracles."""

from __future__ import annotations

import torch

import implementations
from implementations import dense
from implementations.nystromformer import attention, iterative_pinv, segment_means

B, H, N, D = 2, 3, 24, 8


def qkv(n: int = N, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    return q, k, v


def relative_error(out: torch.Tensor, expected: torch.Tensor) -> float:
    return ((out - expected).norm() / expected.norm()).item()


def test_one_landmark_per_token_is_dense() -> None:
    """m = n: F~ = A~ = B~ = S and S S^+ S = S (with a converged pseudo-inverse)."""
    q, k, v = qkv()
    out = attention(q, k, v, num_landmarks=N, pinv_iterations=25)
    torch.testing.assert_close(out, dense.attention(q, k, v), atol=1e-4, rtol=1e-3)


def test_one_landmark_per_token_is_dense_with_padding() -> None:
    q, k, v = qkv()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 17:] = False
    mask[1, 3:6] = False
    out = attention(q, k, v, num_landmarks=N, pinv_iterations=25, mask=mask)
    expected = dense.attention(q, k, v, mask=mask)
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], expected[real], atol=1e-4, rtol=1e-3)


def test_error_falls_as_landmarks_grow() -> None:
    q, k, v = qkv(n=64)
    expected = dense.attention(q, k, v)
    errors = [relative_error(attention(q, k, v, num_landmarks=m), expected) for m in (4, 16, 64)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.1, errors  # m = n, only the 6-iteration pseudo-inverse is approximate


def test_iterative_pinv_converges_to_linalg_pinv() -> None:
    torch.manual_seed(0)
    a = torch.softmax(torch.randn(4, 8, 8, dtype=torch.float64), dim=-1)
    exact = torch.linalg.pinv(a)
    errors = [(iterative_pinv(a, it) - exact).abs().max().item() for it in (4, 8, 12, 30)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[-1] < 1e-8, errors


def test_segment_means_skip_padding() -> None:
    x = torch.arange(6.0).view(1, 1, 6, 1)
    mask = torch.tensor([[True, False, True, True, False, False]])
    means, has_token = segment_means(x, mask, segment=2)
    torch.testing.assert_close(means.flatten(), torch.tensor([0.0, 2.5, 0.0]))
    assert has_token.tolist() == [[True, True, False]]


def test_empty_segment_is_removed_exactly() -> None:
    """Padding that fills a whole segment changes nothing: same result as without it.

    n = 8 with 4 landmarks (segments of 2) vs the same 8 tokens + 2 padded with 5
    landmarks (segments of 2, the 5th empty), with the paper's 6 iterations: the empty
    landmark's identity block must not perturb the others' pseudo-inverse.
    """
    q, k, v = qkv(n=8)
    out = attention(q, k, v, num_landmarks=4)
    q2, k2, v2 = (torch.cat([t, torch.randn(B, H, 2, D) * 3], dim=2) for t in (q, k, v))
    mask = torch.ones(B, 10, dtype=torch.bool)
    mask[:, 8:] = False
    out_padded = attention(q2, k2, v2, num_landmarks=5, mask=mask)
    torch.testing.assert_close(out_padded[:, :, :8], out, atol=1e-5, rtol=1e-4)


def test_any_length_and_more_landmarks_than_tokens() -> None:
    q, k, v = qkv(n=23)
    assert attention(q, k, v, num_landmarks=64).shape == (B, H, 23, D)  # 23 landmarks
    assert attention(q, k, v, num_landmarks=5).shape == (B, H, 23, D)  # segments of 5
    assert attention(q[:, :, :1], k[:, :, :1], v[:, :, :1]).shape == (B, H, 1, D)


def test_module_is_projections_around_attention_plus_conv_skip() -> None:
    torch.manual_seed(0)
    layer = implementations.build("nystromformer", dim=24, heads=3, num_landmarks=4)
    plain = implementations.build(
        "nystromformer", dim=24, heads=3, num_landmarks=4, conv_kernel_size=None
    )
    plain.proj.load_state_dict(layer.proj.state_dict())
    x = torch.randn(B, 10, 24)
    q, k, v = layer.proj.qkv(x)
    o = attention(q, k, v, num_landmarks=4)
    torch.testing.assert_close(plain(x), layer.proj.out(o), atol=1e-5, rtol=1e-4)
    # The skip: a depthwise convolution along the sequence, one kernel per head.
    weight = layer.conv.weight[:, 0, :, 0]  # [h, kernel]
    half = weight.shape[-1] // 2
    v_padded = torch.nn.functional.pad(v, (0, 0, half, half))  # zero padding along n
    windows = v_padded.unfold(2, weight.shape[-1], 1)  # [b, h, n, d, kernel]
    skip = torch.einsum("bhndk,hk->bhnd", windows, weight)
    torch.testing.assert_close(layer(x), layer.proj.out(o + skip), atol=1e-5, rtol=1e-4)


def test_no_padding_skips_the_masks_and_changes_nothing() -> None:
    """Without a mask and with n a multiple of the segment, the unmasked form runs; an
    all-True mask takes the masked form. Both must give the same output, in the core and
    in the layer (whose convolution skip is then applied to unmasked values)."""
    q, k, v = qkv()
    everything = torch.ones(B, N, dtype=torch.bool)
    torch.testing.assert_close(
        attention(q, k, v, num_landmarks=6), attention(q, k, v, num_landmarks=6, mask=everything)
    )
    torch.manual_seed(0)
    layer = implementations.build("nystromformer", dim=16, heads=2, num_landmarks=6)
    x = torch.randn(B, N, 16)
    torch.testing.assert_close(layer(x), layer(x, everything))
