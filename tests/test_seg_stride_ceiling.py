"""tools/seg_stride_ceiling.py: the ideal stride-S prediction's mIoU."""
import glob
import os.path as osp

import cv2
import numpy as np
from conftest import load_tool

ceiling = load_tool('seg_stride_ceiling')


def test_blocks_aligned_to_the_grid_are_exact_and_thin_lines_are_not():
    blocks = np.zeros((32, 32), np.uint8)
    blocks[8:24, 8:16] = 1  # edges on the stride-8 grid: area averages are pure
    line = np.zeros((32, 32), np.uint8)
    line[:, 13] = 1  # 1 px wide: a stride-8 cell is 1/8 foreground -> background wins
    assert np.allclose(ceiling.stride_ceiling_iou([blocks], 2, 1), 1.0)
    assert np.allclose(ceiling.stride_ceiling_iou([line], 2, 1), 1.0)
    iou_line = ceiling.stride_ceiling_iou([line], 2, 8)
    assert iou_line[1] == 0.0
    # a background weight below 1/8 lets the line's cells win, at the price of bloat
    iou_weighted = ceiling.stride_ceiling_iou([line], 2, 8, background_weight=0.1)
    assert 0.0 < iou_weighted[1] < 0.5


def test_digits_strokes_lose_iou_with_stride(tiny_digits, capsys):
    masks = [cv2.imread(p, cv2.IMREAD_UNCHANGED)
             for p in sorted(glob.glob(osp.join(tiny_digits, 'masks', '*.png')))]
    m1, m4, m8 = (np.nanmean(ceiling.stride_ceiling_iou(masks, 11, s)) for s in (1, 4, 8))
    assert m1 == 1.0 and m1 > m4 > m8
    ceiling.main([tiny_digits, '--strides', '8', '--background-weights', '1', '0.1'])
    out = capsys.readouterr().out
    assert out.count('mIoU') == 2 and 'stride  8' in out
