"""Linear probe of a backbone's dense features: does each cell of a feature map tell the class?

A segmentation head has to read the class of every pixel off the backbone's maps. A backbone
pretrained as a classifier (``bnn_tasks.engine.backbone_pretrain``: global average pooling,
then a linear layer) can score well while the class is only in the *average* over the map,
not in each cell. This probe measures the per-cell part: it fits one linear classifier
(standardised features, L2, L-BFGS) to the feature vectors of the foreground cells of one
split's images, labelled by the mask at the cell's centre, and reports its top-1 accuracy on
the cells of another split. Background and ignored cells are left out: what a dense head finds
hardest on the digits set is telling the objects apart, not finding them.

No training of the backbone happens here; it runs in eval mode on whole test-pipeline images.
"""
from dataclasses import asdict, dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .markdown import markdown_table

IGNORE_INDEX = 255


@dataclass
class ProbeResult:
    level: int  # index into the backbone's outputs (-1: the last)
    scale: float  # images resized by this factor before the backbone
    channels: int
    train_cells: int
    val_cells: int
    train_accuracy: float  # top-1 over foreground cells, 0-1
    val_accuracy: float
    majority_accuracy: float  # the most frequent training class, scored on the val cells

    def as_dict(self) -> dict:
        return asdict(self)


def cell_labels(mask: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``(H, W)`` label map -> ``size``: the label at each cell's centre (nearest)."""
    return F.interpolate(mask[None, None].float(), size=size, mode='nearest')[0, 0].long()


def cell_features(backbone, samples: Iterable[Tuple[torch.Tensor, torch.Tensor]],
                  levels: Sequence[int], scale: float = 1.0,
                  background: Optional[int] = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per level, ``(features (cells, C), labels (cells,))`` of the foreground cells.

    ``samples`` yields ``(normalised image (3, H, W), label map (H, W))``; ``background``
    (a class index, or None to keep every class) and ``IGNORE_INDEX`` cells are dropped.
    """
    per_level = [([], []) for _ in levels]
    backbone.eval()
    with torch.no_grad():
        for image, mask in samples:
            if scale != 1.0:
                image = F.interpolate(image[None], scale_factor=scale, mode='bilinear',
                                      align_corners=False, recompute_scale_factor=False)[0]
                mask = cell_labels(mask, image.shape[-2:])
            outputs = backbone(image[None])
            for (feats, labels), level in zip(per_level, levels):
                fmap = outputs[level][0]
                lab = cell_labels(mask, fmap.shape[-2:]).reshape(-1)
                keep = lab != IGNORE_INDEX
                if background is not None:
                    keep &= lab != background
                feats.append(fmap.reshape(fmap.shape[0], -1).T[keep].numpy())
                labels.append(lab[keep].numpy())
    return [(np.concatenate(f), np.concatenate(y)) for f, y in per_level]


def fit_linear_probe(train: Tuple[np.ndarray, np.ndarray], val: Tuple[np.ndarray, np.ndarray],
                     l2: float = 1e-3, max_iter: int = 300) -> Tuple[float, float, float]:
    """Fit on ``train``'s cells, score on ``val``'s: (train acc, val acc, majority acc)."""
    (x_train, y_train), (x_val, y_val) = train, val
    if len(y_train) == 0 or len(y_val) == 0:
        raise ValueError(f'no foreground cells to probe ({len(y_train)} training, '
                         f'{len(y_val)} validation): more images, or a larger --scale')
    classes, y_train_idx = np.unique(y_train, return_inverse=True)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.from_numpy((x_train - mean) / std).float()
    xv = torch.from_numpy((x_val - mean) / std).float()
    yt = torch.from_numpy(y_train_idx).long()
    linear = torch.nn.Linear(xt.shape[1], len(classes))
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=max_iter, history_size=20,
                                  line_search_fn='strong_wolfe')

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(xt), yt) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_acc = (linear(xt).argmax(1) == yt).float().mean().item()
        val_pred = classes[linear(xv).argmax(1).numpy()]
    val_acc = float((val_pred == y_val).mean())
    majority = classes[np.bincount(y_train_idx).argmax()]
    return train_acc, val_acc, float((y_val == majority).mean())


def probe_backbone(backbone, train_samples, val_samples, levels: Sequence[int] = (-1, ),
                   scales: Sequence[float] = (1.0, ), background: Optional[int] = 0
                   ) -> List[ProbeResult]:
    """Probe every (scale, level); ``*_samples`` are callables returning fresh iterables."""
    results = []
    for scale in scales:
        train = cell_features(backbone, train_samples(), levels, scale, background)
        val = cell_features(backbone, val_samples(), levels, scale, background)
        for level, train_cells, val_cells in zip(levels, train, val):
            train_acc, val_acc, majority = fit_linear_probe(train_cells, val_cells)
            results.append(ProbeResult(level, scale, train_cells[0].shape[1],
                                       len(train_cells[1]), len(val_cells[1]),
                                       round(train_acc, 4), round(val_acc, 4),
                                       round(majority, 4)))
    return results


def format_results(results: List[ProbeResult]) -> str:
    return markdown_table(
        ['level', 'scale', 'channels', 'cells (train / val)', 'train acc.', 'val acc.',
         'majority class'],
        [(r.level, f'{r.scale:g}', r.channels, f'{r.train_cells} / {r.val_cells}',
          f'{100 * r.train_accuracy:.1f} %', f'{100 * r.val_accuracy:.1f} %',
          f'{100 * r.majority_accuracy:.1f} %') for r in results])
