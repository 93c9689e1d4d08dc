"""Square crops around the annotated digits of a COCO-format split: a classification set.

Backbone pretraining (``bnn_tasks.engine.backbone_pretrain``) uses them the way detection and
segmentation recipes use ImageNet: to learn what the objects look like before learning where
they are. Crops come from the same training canvases (clutter, colours, scales), so no extra
data is involved and the validation digits stay unseen.
"""
import json
import os.path as osp
from typing import Tuple

import numpy as np

from .errors import DatasetError


class DigitCrops:
    """Every annotated object of ``annotations/instances_{split}.json`` under ``data_root``.

    Args:
        crop_size: side of the returned square crops in pixels.
        context: range of the crop side relative to the object's longer box side (sampled per
            crop when training, its middle for evaluation).
        jitter: largest shift of the crop centre, as a fraction of the crop side.
    """

    def __init__(self, data_root: str, split: str, crop_size: int = 32,
                 context: Tuple[float, float] = (1.2, 1.8), jitter: float = 0.1):
        import cv2
        ann_file = osp.join(data_root, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann_file):
            raise DatasetError(f'annotation file not found: {ann_file}')
        with open(ann_file) as f:
            coco = json.load(f)
        # class index = position of the category in id order (what mmdet's CocoDataset does)
        cat_index = {c['id']: i for i, c in enumerate(sorted(coco['categories'],
                                                              key=lambda c: c['id']))}
        self.classes = [c['name'] for c in sorted(coco['categories'], key=lambda c: c['id'])]
        image_index, self.images = {}, []
        for img in coco['images']:
            path = osp.join(data_root, 'images', img['file_name'])
            pixels = cv2.imread(path, cv2.IMREAD_COLOR)
            if pixels is None:
                raise DatasetError(f'cannot read image {path} (listed in {ann_file})')
            image_index[img['id']] = len(self.images)
            self.images.append(pixels)
        objects = []
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            objects.append((image_index[ann['image_id']], x + w / 2, y + h / 2, max(w, h),
                            cat_index[ann['category_id']]))
        if not objects:
            raise DatasetError(f'{ann_file} has no annotated objects to crop')
        self.objects = np.array(objects, np.float64)
        self.labels = self.objects[:, 4].astype(np.int64)
        self.crop_size = int(crop_size)
        self.context = context
        self.jitter = jitter

    def __len__(self) -> int:
        return len(self.objects)

    def _crop(self, index: int, context: float, shift: Tuple[float, float]) -> np.ndarray:
        import cv2
        img_idx, cx, cy, side, _ = self.objects[index]
        side = side * context
        scale = self.crop_size / side
        cx, cy = cx + shift[0] * side, cy + shift[1] * side
        # maps the crop's centre to the object's centre, side -> crop_size
        mat = np.array([[scale, 0, self.crop_size / 2 - scale * cx],
                        [0, scale, self.crop_size / 2 - scale * cy]], np.float64)
        return cv2.warpAffine(self.images[int(img_idx)], mat, (self.crop_size, self.crop_size),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def sample(self, rng: np.random.Generator, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` random training crops (random object, context and shift): BGR uint8 NHWC."""
        idx = rng.integers(0, len(self), n)
        ctx = rng.uniform(*self.context, n)
        shifts = rng.uniform(-self.jitter, self.jitter, (n, 2))
        crops = np.stack([self._crop(i, c, s) for i, c, s in zip(idx, ctx, shifts)])
        return crops, self.labels[idx]

    def fixed(self, start: int, stop: int) -> Tuple[np.ndarray, np.ndarray]:
        """Objects ``start:stop`` cropped deterministically (middle context, centred)."""
        ctx = sum(self.context) / 2
        crops = np.stack([self._crop(i, ctx, (0.0, 0.0)) for i in range(start, stop)])
        return crops, self.labels[start:stop]
