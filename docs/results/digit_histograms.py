"""Digit shares (%) of each MNIST-5k grid variant's generator and of the real batches each sampler draws.

Usage: python docs/results/digit_histograms.py [GRID_DIR]   (default runs/mnist-grid)

For every variant of an ``image-grid --experiment mnist`` directory (the
ablation rows too, where they were run) and each of its seeds: 10,000
samples of the final generator (checkpoint.pt; z uniform on [-1, 1], torch
seed 123), labelled by the project's digit classifier; prints the mean share
of each digit over seeds.  Then the true-label shares of 10,000 real
images drawn as the trainer draws them (random batches, and core-sets x8 on
projected raw pixels and on the classifier's features; sampler seed 0).
"""
import os
import sys

import numpy as np
import torch

from smallgan.experiments.image_grid import VARIANTS
from smallgan.experiments.images import default_cache_dir, real_embeddings
from smallgan.experiments.selection_bias import _data, selected_rows
from smallgan.metrics.classifier import load_mnist_classifier, predict_digits
from smallgan.models.lsgan import LSGANGenerator

grid = sys.argv[1] if len(sys.argv) > 1 else "runs/mnist-grid"
net = load_mnist_classifier()
fmt = lambda h: " ".join(f"{x:5.1f}" for x in h)  # noqa: E731
W = 40
print(f"{'digit':<{W}}" + " ".join(f"{d:>5}" for d in range(10)))
for v in VARIANTS:
    if not os.path.exists(f"{grid}/{v}/seed0/checkpoint.pt"):
        continue  # the ablation rows run only when asked for (--variants)
    hs = []
    for s in range(3):
        ckpt = torch.load(f"{grid}/{v}/seed{s}/checkpoint.pt", map_location="cpu",
                          weights_only=False)
        ngf = ckpt["experiment"]["experiment"]["ngf"]  # the experiment's settings
        g = LSGANGenerator(100, ngf, out_channels=1)
        g.load_state_dict(ckpt["generator"])
        g.eval()
        torch.manual_seed(123)
        with torch.no_grad():
            x = g(torch.rand(10000, 100) * 2 - 1)
        d = np.asarray(predict_digits(net, (x + 1) / 2)).ravel()
        hs.append(np.bincount(d, minlength=10) / d.size * 100)
    print(f"{'generated, ' + v:<{W}}" + fmt(np.mean(hs, 0)))
cfg, images, labels, name, _ = _data("mnist")
for sampling, kind in [("random", None), ("coreset", "raw"), ("coreset", "mnist-cnn")]:
    emb = (np.zeros((len(images), 1), np.float32) if kind is None else
           real_embeddings(images, kind, 32, seed=0, cache_dir=default_cache_dir(), dataset=name)[0])
    rows = selected_rows(emb, 10000, batch_size=64, factor=8, seed=0, sampling=sampling)
    label = "random" if kind is None else f"core-set x8 on {kind}"
    print(f"{'real batches, ' + label:<{W}}" + fmt(np.bincount(labels[rows], minlength=10) / 100))
