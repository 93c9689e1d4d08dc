"""``CheckSegLabels``: fail loudly, naming the file, on label maps a model cannot learn from.

A label outside ``[0, num_classes)`` (other than the ignore index) makes cross-entropy crash with
an index error far from the cause, or silently be dropped; an image and mask of different sizes
get silently misaligned by later crops. Put this right after ``LoadAnnotations``.
"""
import numpy as np

from .errors import DatasetError


class CheckSegLabels:
    """Validate ``gt_seg_map`` against the class count and the image size.

    Args:
        num_classes: valid labels are ``0 .. num_classes - 1``.
        ignore_index: the one extra value allowed (mmseg's default 255).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def __call__(self, results: dict) -> dict:
        seg = results.get('gt_seg_map')
        if seg is None:
            return results
        seg_path = results.get('seg_map_path', '<unknown mask file>')
        # the loaded image's size (test pipelines resize the image before loading the mask)
        img_hw = results.get('ori_shape')
        if img_hw is None and results.get('img') is not None:
            img_hw = results['img'].shape[:2]
        if img_hw is not None and tuple(img_hw[:2]) != tuple(seg.shape[:2]):
            raise DatasetError(
                f'{seg_path}: mask is {seg.shape[1]}x{seg.shape[0]} but image '
                f'{results.get("img_path", "")} is {img_hw[1]}x{img_hw[0]} (WxH)')
        values = np.unique(seg)
        bad = values[((values < 0) | (values >= self.num_classes))
                     & (values != self.ignore_index)]
        if bad.size:
            raise DatasetError(
                f'{seg_path}: label values {bad.tolist()[:8]} outside 0..{self.num_classes - 1} '
                f'(ignore index {self.ignore_index}); check num_classes / reduce_zero_label')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
