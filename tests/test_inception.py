"""Tests for smallgan.inception: both weight layouts, shapes, preprocessing, errors.

The expected key names and shapes are written out here from the published
Inception-v3 architecture (torchvision's ``Inception3`` naming), not taken
from our module, and checked against torchvision's published parameter count
(27,161,264 with the auxiliary classifier).
"""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from smallgan.inception import FID_WEIGHTS_FILE, default_weights_path, load_inception


def _convs():
    """(name, in, out, kh, kw) of every conv in Inception-v3 (no aux head)."""
    c = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3), ("Conv2d_2b_3x3", 32, 64, 3, 3),
         ("Conv2d_3b_1x1", 64, 80, 1, 1), ("Conv2d_4a_3x3", 80, 192, 3, 3)]
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        c += [(f"{name}.branch1x1", cin, 64, 1, 1), (f"{name}.branch5x5_1", cin, 48, 1, 1),
              (f"{name}.branch5x5_2", 48, 64, 5, 5), (f"{name}.branch3x3dbl_1", cin, 64, 1, 1),
              (f"{name}.branch3x3dbl_2", 64, 96, 3, 3), (f"{name}.branch3x3dbl_3", 96, 96, 3, 3),
              (f"{name}.branch_pool", cin, pool, 1, 1)]
    c += [("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
          ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3)]
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        c += [(f"{name}.branch1x1", 768, 192, 1, 1), (f"{name}.branch7x7_1", 768, c7, 1, 1),
              (f"{name}.branch7x7_2", c7, c7, 1, 7), (f"{name}.branch7x7_3", c7, 192, 7, 1),
              (f"{name}.branch7x7dbl_1", 768, c7, 1, 1), (f"{name}.branch7x7dbl_2", c7, c7, 7, 1),
              (f"{name}.branch7x7dbl_3", c7, c7, 1, 7), (f"{name}.branch7x7dbl_4", c7, c7, 7, 1),
              (f"{name}.branch7x7dbl_5", c7, 192, 1, 7), (f"{name}.branch_pool", 768, 192, 1, 1)]
    c += [("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
          ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
          ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3)]
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        c += [(f"{name}.branch1x1", cin, 320, 1, 1), (f"{name}.branch3x3_1", cin, 384, 1, 1),
              (f"{name}.branch3x3_2a", 384, 384, 1, 3), (f"{name}.branch3x3_2b", 384, 384, 3, 1),
              (f"{name}.branch3x3dbl_1", cin, 448, 1, 1), (f"{name}.branch3x3dbl_2", 448, 384, 3, 3),
              (f"{name}.branch3x3dbl_3a", 384, 384, 1, 3), (f"{name}.branch3x3dbl_3b", 384, 384, 3, 1),
              (f"{name}.branch_pool", cin, 192, 1, 1)]
    return c


def random_state_dict(layout: str, seed: int = 0) -> dict:
    """A state dict in the FID file's or torchvision's layout, random weights.

    Conv weights are scaled (He init) and BN statistics kept near identity so
    activations stay finite through 94 layers.
    """
    g = torch.Generator().manual_seed(seed)
    convs = _convs()
    if layout == "torchvision":
        convs = convs + [("AuxLogits.conv0", 768, 128, 1, 1), ("AuxLogits.conv1", 128, 768, 5, 5)]
    sd = {}
    for name, cin, cout, kh, kw in convs:
        fan_in = cin * kh * kw
        sd[f"{name}.conv.weight"] = torch.randn(cout, cin, kh, kw, generator=g) * (2.0 / fan_in) ** 0.5
        sd[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_var"] = 1 + 0.1 * torch.rand(cout, generator=g)
        if layout == "torchvision":  # torchvision files carry BN counters; the FID file does not need them
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    classes = 1008 if layout == "fid" else 1000
    sd["fc.weight"] = torch.randn(classes, 2048, generator=g) * 0.01
    sd["fc.bias"] = torch.zeros(classes)
    if layout == "torchvision":
        sd["AuxLogits.fc.weight"] = torch.randn(1000, 768, generator=g) * 0.01
        sd["AuxLogits.fc.bias"] = torch.zeros(1000)
    return sd


def n_params(sd: dict) -> int:
    return sum(v.numel() for k, v in sd.items()
               if not (k.endswith("running_mean") or k.endswith("running_var") or k.endswith("num_batches_tracked")))


@functools.lru_cache(maxsize=None)
def _cached_state_dict(layout: str, seed: int) -> dict:
    return random_state_dict(layout, seed)


def state_dict_copy(layout: str, seed: int = 0) -> dict:
    """A fresh dict (shared tensors) so tests may add or drop keys cheaply."""
    return dict(_cached_state_dict(layout, seed))


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    files = {}
    for layout in ("fid", "torchvision"):
        files[layout] = d / f"{layout}.pth"
        torch.save(state_dict_copy(layout, seed=1), files[layout])
    return files


@pytest.fixture(scope="module")
def nets(weight_files):
    return {layout: load_inception(path) for layout, path in weight_files.items()}


class _Stop(Exception):
    pass


def first_layer_input(net, images):
    """What the first convolution receives, without running the other 93 layers."""
    seen = {}

    def grab(module, inputs):
        seen["x"] = inputs[0].clone()
        raise _Stop

    handle = net.Conv2d_1a_3x3.register_forward_pre_hook(grab)
    try:
        with torch.inference_mode(), pytest.raises(_Stop):
            net(images)
    finally:
        handle.remove()
    return seen["x"]


@pytest.fixture(scope="module")
def features(nets):
    """pool3 features of two random 299 x 299 images (FID layout) and of the
    first of them (torchvision layout); full forward passes are the slow part
    of this file, so they are shared."""
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = {"fid": nets["fid"](x), "torchvision": nets["torchvision"](x[:1])}
    return x, out


def test_reference_table_matches_published_parameter_counts():
    # torchvision.models.inception_v3(): 27,161,264 parameters (aux head included).
    assert n_params(state_dict_copy("torchvision")) == 27_161_264
    # FID graph: no aux head (3,326,696 params) and a 1008-way classifier.
    assert n_params(state_dict_copy("fid")) == 27_161_264 - 3_326_696 + 2048 * 8 + 8


@pytest.mark.parametrize("layout", ["fid", "torchvision"])
def test_loads_both_layouts_and_gives_pool3_features(nets, features, layout):
    net = nets[layout]
    assert net.layout == layout
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    assert net.extractor_id.startswith(f"inception-v3-pool3/{layout}/sha256:")
    feats = features[1][layout]
    b = 2 if layout == "fid" else 1
    assert feats.shape == (b, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # post-ReLU average pool
    assert feats.std() > 0
    if b == 2:
        assert not torch.allclose(feats[0], feats[1])


def test_weights_are_the_files(nets, weight_files):
    for layout, path in weight_files.items():
        sd = torch.load(path, weights_only=True)
        ours = nets[layout].state_dict()
        for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var",
                    "Mixed_6e.branch7x7dbl_5.conv.weight"):
            assert torch.equal(ours[key], sd[key])


def test_input_scaled_from_unit_interval_to_pm1(nets):
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    # 299 x 299 input: the resize is the identity, then 2x - 1.
    torch.testing.assert_close(first_layer_input(nets["fid"], x), 2 * x - 1)


def test_smaller_inputs_resized_bilinear_to_299(nets):
    net = nets["fid"]
    small = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    big = F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(first_layer_input(net, small), 2 * big - 1)
    # grey images are repeated over the three channels
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    grey_big = F.interpolate(grey, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(first_layer_input(net, grey), 2 * grey_big.repeat(1, 3, 1, 1) - 1)
    # and a full pass on a small grey image gives pool3 features
    with torch.inference_mode():
        g = net(grey[:1])
    assert g.shape == (1, 2048) and torch.isfinite(g).all()


def test_fid_layout_pools_differently_from_torchvision(nets, features):
    # Same trunk weights in both files (same seed, same key order), two
    # layouts: FID's padding-excluding average pools and max-pooled last
    # block must change the features.
    fid, tv = nets["fid"], nets["torchvision"]
    assert torch.equal(fid.state_dict()["Mixed_7c.branch_pool.conv.weight"],
                       tv.state_dict()["Mixed_7c.branch_pool.conv.weight"])
    a, b = features[1]["fid"][:1], features[1]["torchvision"]
    assert not torch.allclose(a, b, rtol=1e-3, atol=1e-4)
    # FID's last block pools its side branch with a max: recompute Mixed_7c by
    # hand from its sub-convolutions.
    blk = fid.Mixed_7c
    h = torch.rand(1, 2048, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        b3 = blk.branch3x3_1(h)
        d3 = blk.branch3x3dbl_2(blk.branch3x3dbl_1(h))
        ref = torch.cat([blk.branch1x1(h), blk.branch3x3_2a(b3), blk.branch3x3_2b(b3),
                         blk.branch3x3dbl_3a(d3), blk.branch3x3dbl_3b(d3),
                         blk.branch_pool(F.max_pool2d(h, 3, stride=1, padding=1))], 1)
        torch.testing.assert_close(blk(h), ref)
        # FID's average pools divide border pixels by the number of real
        # pixels (TensorFlow 'SAME'); torchvision's divide by 9.
        g = torch.rand(1, 192, 35, 35, generator=torch.Generator().manual_seed(6))
        window_sum = F.avg_pool2d(g, 3, stride=1, padding=1) * 9
        real_count = F.avg_pool2d(torch.ones_like(g), 3, stride=1, padding=1) * 9
        torch.testing.assert_close(fid.Mixed_5b(g)[:, 224:], fid.Mixed_5b.branch_pool(window_sum / real_count))
        torch.testing.assert_close(tv.Mixed_5b(g)[:, 224:], tv.Mixed_5b.branch_pool(window_sum / 9))


def test_missing_file_names_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("SMALLGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    assert default_weights_path() == expected
    with pytest.raises(FileNotFoundError) as err:
        load_inception()
    msg = str(err.value)
    assert FID_WEIGHTS_FILE in msg and str(expected) in msg and "SMALLGAN_INCEPTION_WEIGHTS" in msg
    assert "never downloads" in msg
    with pytest.raises(FileNotFoundError, match="nothere.pth.*the weights argument"):
        load_inception(tmp_path / "nothere.pth")
    monkeypatch.setenv("SMALLGAN_INCEPTION_WEIGHTS", str(tmp_path / "env.pth"))
    assert default_weights_path() == tmp_path / "env.pth"
    with pytest.raises(FileNotFoundError, match=r"env.pth.*SMALLGAN_INCEPTION_WEIGHTS"):
        load_inception()


def test_env_var_and_torch_home_are_used(tmp_path, monkeypatch, weight_files):
    monkeypatch.setenv("SMALLGAN_INCEPTION_WEIGHTS", str(weight_files["torchvision"]))
    assert load_inception().layout == "torchvision"
    monkeypatch.delenv("SMALLGAN_INCEPTION_WEIGHTS")
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / FID_WEIGHTS_FILE).symlink_to(weight_files["fid"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert load_inception().layout == "fid"


def test_bad_state_dicts_are_named():
    sd = state_dict_copy("fid")
    del sd["Mixed_6c.branch7x7_2.conv.weight"]
    with pytest.raises(ValueError, match=r"missing 1 parameter\(s\), first \['Mixed_6c.branch7x7_2.conv.weight'\]"):
        load_inception(sd)
    sd = state_dict_copy("fid")
    sd["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(64, 192, 3, 3)
    with pytest.raises(ValueError, match=r"Mixed_5b.branch1x1.conv.weight has shape \(64, 192, 3, 3\), "
                                         r"expected \(64, 192, 1, 1\)"):
        load_inception(sd)
    sd = state_dict_copy("fid")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected key\(s\), first \['extra.weight'\]"):
        load_inception(sd)
    sd = state_dict_copy("fid")
    sd["fc.weight"] = torch.zeros(10, 2048)
    with pytest.raises(ValueError, match="fc.weight has 10 rows, expected 1008"):
        load_inception(sd)
    del sd["fc.weight"]
    with pytest.raises(ValueError, match="no fc.weight; pass layout="):
        load_inception(sd)
    assert load_inception(sd, layout="fid").layout == "fid"
    with pytest.raises(ValueError, match="layout must be 'auto', 'fid' or 'torchvision', got 'tf'"):
        load_inception(sd, layout="tf")
    with pytest.raises(TypeError, match="weights must be a path, a state dict or None, got int"):
        load_inception(3)


def test_bad_images_rejected(nets):
    net = nets["fid"]
    with pytest.raises(ValueError, match=r"shape \(b, 3 or 1, H, W\), got \(2, 4, 8, 8\)"):
        net(torch.zeros(2, 4, 8, 8))
    with pytest.raises(TypeError, match="float tensor in \\[0, 1\\], got dtype torch.uint8"):
        net(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
