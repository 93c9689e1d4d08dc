#!/usr/bin/env python
"""How much mIoU can a segmentation head at output stride S reach on a dataset, at best?

An FCN predicts logits on a grid S times coarser than the image and upsamples them bilinearly.
This tool scores the ideal such prediction: the ground truth's one-hot masks area-averaged onto
the stride-S grid (optionally with background scaled by a class weight, which is how a weighted
loss shifts the argmax), upsampled back and arg-maxed. Thin structures such as digit strokes
lose IoU at coarse strides even with a perfect classifier; this says how much.

    python tools/seg_stride_ceiling.py data/digits --strides 8 4 --background-weights 1 0.5 0.1
"""
import argparse
import os.path as osp
import sys

import numpy as np


def stride_ceiling_iou(masks, num_classes: int, stride: int, background_weight: float = 1.0):
    """Per-class IoU of the ideal stride-``stride`` prediction over ``masks`` (label arrays)."""
    import cv2
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for mask in masks:
        h, w = mask.shape
        if h % stride or w % stride:
            raise ValueError(f'mask size {w}x{h} is not a multiple of stride {stride}')
        onehot = np.stack([(mask == c).astype(np.float32) for c in range(num_classes)], -1)
        coarse = cv2.resize(onehot, (w // stride, h // stride), interpolation=cv2.INTER_AREA)
        coarse = coarse.reshape(h // stride, w // stride, num_classes)
        coarse[..., 0] *= background_weight
        pred = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        pred = pred.reshape(h, w, num_classes).argmax(-1)
        valid = mask < num_classes  # 255 = ignore
        for c in range(num_classes):
            p, g = (pred == c) & valid, mask == c
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('data_root', help='a digits-layout dataset (masks/, splits/)')
    p.add_argument('--split', default='val')
    p.add_argument('--num-classes', type=int, default=11)
    p.add_argument('--strides', type=int, nargs='+', default=[8, 4])
    p.add_argument('--background-weights', type=float, nargs='+', default=[1.0])
    p.add_argument('--limit', type=int, default=None, help='use the first N images only')
    return p.parse_args(argv)


def main(argv=None):
    import cv2
    args = parse_args(argv)
    split_file = osp.join(args.data_root, 'splits', f'{args.split}.txt')
    if not osp.isfile(split_file):
        sys.exit(f'seg_stride_ceiling: split file not found: {split_file}')
    with open(split_file) as f:
        stems = [line.strip() for line in f if line.strip()][:args.limit]
    masks = []
    for stem in stems:
        path = osp.join(args.data_root, 'masks', f'{stem}.png')
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if mask is None:
            sys.exit(f'seg_stride_ceiling: cannot read mask {path}')
        masks.append(mask)
    for stride in args.strides:
        for weight in args.background_weights:
            iou = stride_ceiling_iou(masks, args.num_classes, stride, weight)
            print(f'stride {stride:2d}  background weight {weight:4.2f}: '
                  f'mIoU {100 * np.nanmean(iou):5.1f}  per class '
                  + ' '.join(f'{100 * v:.1f}' for v in iou))


if __name__ == '__main__':
    main()
