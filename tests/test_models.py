"""Image GAN models: shapes, parameter counts derived by hand, spectral norm."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from smallgan.models import blocks, lsgan, sagan, sngan
from smallgan.models.blocks import count_parameters, parameter_bytes


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------- counts by formula
# Each count is written out from the architecture description (weights + biases
# + BatchNorm affine pairs), independently of the module code.

def sngan_g_count(z: int, ch: int, out: int = 3) -> int:
    linear = z * 16 * ch + 16 * ch
    up_block = 2 * ch + (9 * ch * ch + ch) + 2 * ch + (9 * ch * ch + ch) + (ch * ch + ch)
    return linear + 3 * up_block + 2 * ch + (9 * ch * out + out)


def sngan_d_count(ch: int, cin: int = 3) -> int:
    first = (9 * cin * ch + ch) + (9 * ch * ch + ch) + (cin * ch + ch)
    down = 2 * (9 * ch * ch + ch) + (ch * ch + ch)
    plain = 2 * (9 * ch * ch + ch)  # identity shortcut
    return first + down + 2 * plain + (ch + 1)


def lsgan_g_count(z: int, ngf: int, out: int = 1) -> int:
    return (z * 49 * 4 * ngf + 49 * 4 * ngf) + 8 * ngf + (4 * ngf * 2 * ngf * 16 + 2 * ngf) \
        + 4 * ngf + (2 * ngf * ngf * 16 + ngf) + 2 * ngf + (9 * ngf * out + out)


def original_d_count(ndf: int, cin: int = 1) -> int:
    return (16 * cin * ndf + ndf) + (16 * ndf * 2 * ndf + 2 * ndf) + 4 * ndf + (2 * ndf * 49 + 1)


def inception_block_count(c: int, f: int, separable: bool) -> int:
    ones = 4 * (c * f + f)  # the four 1x1 convolutions
    conv3 = (9 * f + f * f + f) if separable else (9 * f * f + f)
    return ones + 3 * conv3 + 8 * f  # three 3x3s, BN over 4f channels


def inception_d_count(base: int, f1: int, f2: int, cin: int = 1) -> int:
    return (9 * cin * base + base) + inception_block_count(base, f1, False) \
        + inception_block_count(4 * f1, f2, False) + (4 * f2 + 1)


def test_sngan_paper_sizes() -> None:
    # 4.28M / 1.05M: the sizes usually quoted for Miyato et al.'s CIFAR-10 ResNet.
    g, d = sngan.SNGANGenerator(), sngan.SNGANDiscriminator()
    assert count_parameters(g) == sngan_g_count(128, 256) == 4_276_739
    assert count_parameters(d) == sngan_d_count(128) == 1_053_825
    assert parameter_bytes(d) == 4 * 1_053_825


@pytest.mark.parametrize("z, ch", [(8, 4), (16, 12), (128, 32)])
def test_sngan_counts_small(z: int, ch: int) -> None:
    assert count_parameters(sngan.SNGANGenerator(z, ch)) == sngan_g_count(z, ch)
    assert count_parameters(sngan.SNGANDiscriminator(ch)) == sngan_d_count(ch)
    assert count_parameters(sngan.SNGANDiscriminator(ch, in_channels=1)) == sngan_d_count(ch, 1)


def test_lsgan_counts() -> None:
    assert count_parameters(lsgan.LSGANGenerator()) == lsgan_g_count(100, 64)
    assert count_parameters(lsgan.LSGANGenerator(10, 8)) == lsgan_g_count(10, 8)
    assert count_parameters(lsgan.make_discriminator("original")) == original_d_count(64)
    for base in (32, 16, 8):
        d = lsgan.make_discriminator(f"inception-{base}")
        assert count_parameters(d) == inception_d_count(base, base // 2, base)
    for c, f, sep in [(7, 3, False), (7, 3, True), (32, 16, True)]:
        assert count_parameters(lsgan.InceptionBlock(c, f, sep)) == inception_block_count(c, f, sep)


def test_compact_discriminators_are_smaller_than_original() -> None:
    sizes = {n: count_parameters(lsgan.make_discriminator(n)) for n in lsgan.DISCRIMINATORS}
    assert set(sizes) == {"original", "ds-inception", "inception-32", "inception-16",
                          "inception-8", "ds-inception-dense"}
    assert all(v < sizes["original"] for k, v in sizes.items() if k != "original")
    assert sizes["inception-32"] > sizes["inception-16"] > sizes["inception-8"]


def test_self_attention_count_and_identity_start() -> None:
    att = blocks.SelfAttention(16, sn=False)
    assert count_parameters(att) == 2 * 16 * 2 + 16 * 8 + 8 * 16 + 1
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(att(x), x)  # gamma starts at 0
    with torch.no_grad():
        att.gamma.fill_(1.0)
    assert not torch.allclose(att(x), x)


# ---------------------------------------------------------------- shapes


def test_sngan_shapes_and_backward() -> None:
    g, d = sngan.SNGANGenerator(ch=16), sngan.SNGANDiscriminator(ch=16)
    x = g(torch.randn(3, 128))
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    out = d(x)
    assert out.shape == (3,)
    out.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


@pytest.mark.parametrize("res", [64, 128])
def test_sagan_shapes(res: int) -> None:
    g, d = sagan.SAGANGenerator(res, z_dim=16, ch=8), sagan.SAGANDiscriminator(res, ch=8)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, 3, res, res)
    assert d(x).shape == (2,)
    # one attention block in each, at the documented resolution
    assert sum(isinstance(m, blocks.SelfAttention) for m in g.modules()) == 1
    assert sum(isinstance(m, blocks.SelfAttention) for m in d.modules()) == 1
    # spectral norm everywhere in both (every conv and linear is parametrized)
    for net in (g, d):
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(hasattr(m, "parametrizations") for m in layers)


def test_sngan_g_has_no_spectral_norm_but_d_does() -> None:
    g, d = sngan.SNGANGenerator(ch=8), sngan.SNGANDiscriminator(ch=8)
    assert not any(hasattr(m, "parametrizations") for m in g.modules())
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(hasattr(m, "parametrizations") for m in layers)


@pytest.mark.parametrize("name", sorted(lsgan.DISCRIMINATORS))
def test_lsgan_discriminator_shapes(name: str) -> None:
    g = lsgan.LSGANGenerator(z_dim=10, ngf=8)
    x = g(torch.randn(4, 10))
    assert x.shape == (4, 1, 28, 28)
    d = lsgan.make_discriminator(name)
    out = d(x)
    assert out.shape == (4,)
    out.sum().backward()
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize("call, match", [
    (lambda: sngan.SNGANGenerator(ch=0), "ch must be a positive integer, got 0"),
    (lambda: sngan.SNGANGenerator(z_dim=8)(torch.randn(2, 9)), r"z must have shape \(batch, 8\)"),
    (lambda: sagan.SAGANGenerator(96), r"resolution must be one of \[64, 128\], got 96"),
    (lambda: sagan.SAGANDiscriminator(64, ch=4), "channels must be at least 8"),
    (lambda: lsgan.make_discriminator("tiny"), "discriminator must be one of"),
    (lambda: lsgan.DenseInceptionDiscriminator(growth=10), "growth must be a multiple of 4"),
])
def test_bad_arguments(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- spectral norm


def _sn_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if hasattr(m, "parametrizations")]


def _power_iteration_sigma(w: torch.Tensor, iters: int = 500) -> float:
    """Largest singular value by plain power iteration on W^T W, in float64."""
    w = w.detach().double().reshape(w.shape[0], -1)
    v = torch.ones(w.shape[1], dtype=torch.float64)
    for _ in range(iters):
        v = w.T @ (w @ v)
        v = v / v.norm()
    return float((w @ v).norm())


def test_spectral_norm_bounds_largest_singular_value() -> None:
    d = sngan.SNGANDiscriminator(ch=16)
    layers = _sn_layers(d)
    with torch.no_grad():
        # Make the raw weights large: normalisation, not initialisation, must bound them.
        for m in layers:
            m.parametrizations.weight.original.mul_(50.0)
        d.train()
        for _ in range(20):  # each training-mode forward runs one power-iteration step
            d(torch.randn(1, 3, 8, 8))  # (D pools globally: any even size works)
    d.eval()  # freeze u, v: reading .weight no longer iterates
    for m in layers:
        w = m.weight
        raw = m.parametrizations.weight.original
        sigma = float(torch.linalg.matrix_norm(w.detach().double().reshape(w.shape[0], -1), ord=2))
        assert sigma == pytest.approx(1.0, abs=2e-2)
        assert _power_iteration_sigma(w) == pytest.approx(sigma, rel=1e-3)
        assert _power_iteration_sigma(raw) > 10.0  # the stored weight really is unnormalised


def test_spectral_norm_layer_count_matches_architecture() -> None:
    # SN-GAN D: 4 blocks x 2 convs, shortcuts only in the two downsampling
    # blocks, one linear.
    d = sngan.SNGANDiscriminator(ch=8)
    assert len(_sn_layers(d)) == 8 + 2 + 1


# ---------------------------------------------------------------- `smallgan models`


def test_models_sizes_command(capsys) -> None:
    from smallgan.cli import main

    assert main(["models", "--sizes", "--family", "lsgan", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert rows["lsgan-28/original"][2] == f"{original_d_count(64):,}"
    assert float(rows["lsgan-28/original"][3]) == pytest.approx(original_d_count(64) * 4 / 1e6,
                                                                abs=1e-3)
    assert rows["lsgan-28/inception-8"][2] == f"{inception_d_count(8, 4, 8):,}"
    assert len(rows) == 1 + len(lsgan.DISCRIMINATORS)
    assert "parameter bytes (float32)" in out


def test_activation_bytes_counts_layer_outputs() -> None:
    from smallgan.models.blocks import activation_bytes

    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
    # two leaf outputs of (3, 2, 4, 4) float32
    assert activation_bytes(net, (1, 4, 4), batch=3) == 2 * 3 * 2 * 16 * 4
