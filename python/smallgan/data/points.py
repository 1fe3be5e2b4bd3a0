"""A map-style dataset over an in-memory tensor, fetched a whole batch at a time.

``torch.utils.data.TensorDataset`` fetches one row per index and stacks them,
which costs more than the GAN step itself for 2-D points.  This dataset
implements ``__getitems__`` so a ``DataLoader`` fetches a batch with one
indexing operation; pass ``collate_fn=collate_rows`` with it.

Example
-------
>>> import torch
>>> from torch.utils.data import DataLoader, BatchSampler, SequentialSampler
>>> ds = PointDataset(torch.arange(10.0).reshape(5, 2))
>>> bs = BatchSampler(SequentialSampler(ds), batch_size=2, drop_last=True)
>>> [b.shape for b in DataLoader(ds, batch_sampler=bs, collate_fn=collate_rows)]
[torch.Size([2, 2]), torch.Size([2, 2])]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["PointDataset", "collate_rows"]


class PointDataset(Dataset):
    """Rows of a 2-D tensor.

    Parameters
    ----------
    points : torch.Tensor or np.ndarray
        Shape ``(n, d)``; kept as is (no copy for a float32 tensor).

    Thread safety
    -------------
    Read-only after construction; safe to share between workers.
    """

    def __init__(self, points) -> None:
        t = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points)
        if t.ndim != 2 or t.shape[0] == 0:
            raise ValueError(f"points must be a non-empty 2-D array (n, d), got shape {tuple(t.shape)}")
        self.points = t

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.points[index]

    def __getitems__(self, indices: Sequence[int]) -> torch.Tensor:
        return self.points[torch.as_tensor(indices, dtype=torch.long)]


def collate_rows(batch: torch.Tensor) -> torch.Tensor:
    """Collate function for :class:`PointDataset`: the batch is already a tensor."""
    return batch
