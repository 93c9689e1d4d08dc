"""The built-in *digits* dataset: real handwritten digits on cluttered canvases.

Every digit is one of scikit-learn's 1797 ``load_digits`` samples (8x8 grey scans of real
handwriting), upsampled smoothly, slightly sheared/rotated and alpha-blended onto a canvas with a
textured, noisy background and distractor strokes and blobs. Digit heights vary from
``min_digit`` to ``max_digit`` pixels (16..80 by default, a 5x range). The validation split only
uses sklearn samples whose index is a multiple of 5, the training split only the others, so no
handwriting sample is seen in both.

Written files (``out`` is e.g. ``data/digits``)::

    images/{split}_{i:06d}.jpg                  the canvases (the only copy of each image)
    annotations/instances_{split}.json          COCO detection (categories '0'..'9', ids 1..10)
    masks/{split}_{i:06d}.png                   uint8 labels: 0 background, d + 1 for digit d
    splits/{split}.txt                          image stems, mmseg ``ann_file``
    VOCdevkit/VOC2007/JPEGImages/*.jpg          hard links to images/ (copies if links fail)
    VOCdevkit/VOC2007/Annotations/*.xml         VOC boxes, class names '0'..'9'
    VOCdevkit/VOC2007/ImageSets/Main/{split}.txt
    meta.json                                   generation parameters

Everything is a pure function of the arguments: the same seed gives the same bytes.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np

CLASSES = tuple(str(d) for d in range(10))
SPLITS = ('train', 'val')
STROKE_THRESHOLD = 0.5  # a pixel belongs to a digit where its upsampled ink is >= this


@dataclass(frozen=True)
class DigitsSpec:
    """Generation parameters; defaults give 256x256 canvases with 16..80 px digits."""
    num_train: int = 2000
    num_val: int = 300
    size: int = 256
    seed: int = 0
    min_digit: int = 16
    max_digit: int = 80
    min_per_image: int = 2
    max_per_image: int = 6
    jpeg_quality: int = 92

    def validate(self) -> None:
        if self.size < 32:
            raise ValueError(f'size must be >= 32, got {self.size}')
        if not 4 <= self.min_digit <= self.max_digit:
            raise ValueError(f'need 4 <= min_digit <= max_digit, got {self.min_digit}, '
                             f'{self.max_digit}')
        if self.max_digit > self.size // 2:
            raise ValueError(f'max_digit {self.max_digit} too large for a {self.size} px canvas')
        if self.num_train < 0 or self.num_val < 0:
            raise ValueError('num_train and num_val must be >= 0')
        if not 1 <= self.min_per_image <= self.max_per_image:
            raise ValueError('need 1 <= min_per_image <= max_per_image')


def split_sample_indices(num_samples: int) -> Dict[str, np.ndarray]:
    """sklearn sample indices per split: every 5th sample is validation-only."""
    idx = np.arange(num_samples)
    return {'train': idx[idx % 5 != 0], 'val': idx[idx % 5 == 0]}


def load_digit_bank() -> Tuple[np.ndarray, np.ndarray]:
    """sklearn's handwritten digits as float images in [0, 1] ([N, 8, 8]) and labels [N]."""
    from sklearn.datasets import load_digits  # bundled with sklearn: no download
    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


# ----------------------------------------------------------------------------------- drawing
def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random ``cells`` x ``cells`` grid upsampled bicubically."""
    import cv2
    grid = rng.random((cells, cells)).astype(np.float32)
    up = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured colour background: two noise octaves with random tints, plus pixel noise."""
    img = np.zeros((size, size, 3), np.float32)
    for cells, weight in ((3, 0.55), (int(rng.integers(8, 20)), 0.3)):
        tint = rng.uniform(0.2, 1.0, 3).astype(np.float32)
        img += weight * _smooth_noise(rng, size, cells)[..., None] * tint
    img += rng.normal(0.0, rng.uniform(0.02, 0.08), img.shape).astype(np.float32)
    return np.clip(img * 255.0, 0, 255)


def _draw_distractors(rng: np.random.Generator, img: np.ndarray, max_digit: int) -> None:
    """Random pen strokes, arcs and blobs that look like ink but are not digits."""
    import cv2
    size = img.shape[0]
    for _ in range(int(rng.integers(3, 9))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        thickness = int(rng.integers(1, max(2, max_digit // 12) + 1))
        kind = rng.integers(3)
        if kind == 0:  # polyline stroke, like a pen scribble
            n = int(rng.integers(2, 5))
            start = rng.uniform(0, size, 2)
            pts = start + np.cumsum(rng.normal(0, max_digit / 3, (n, 2)), axis=0)
            cv2.polylines(img, [pts.astype(np.int32)], False, color, thickness, cv2.LINE_AA)
        elif kind == 1:  # elliptic arc, digit-like curvature
            center = tuple(int(v) for v in rng.uniform(0, size, 2))
            axes = tuple(int(v) for v in rng.uniform(3, max_digit / 2, 2))
            a0 = float(rng.uniform(0, 360))
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), a0,
                        a0 + float(rng.uniform(60, 300)), color, thickness, cv2.LINE_AA)
        else:  # filled blob
            center = tuple(int(v) for v in rng.uniform(0, size, 2))
            cv2.circle(img, center, int(rng.uniform(2, max_digit / 4)), color, -1, cv2.LINE_AA)


def _render_digit(rng: np.random.Generator, glyph: np.ndarray, height: int) -> np.ndarray:
    """Upsample an 8x8 glyph smoothly to ``height`` px with a random aspect, shear and rotation.

    Returns an ink map in [0, 1] cropped to its stroke pixels' bounding box plus a small margin.
    """
    import cv2
    width = max(4, int(round(height * rng.uniform(0.7, 1.0))))
    pad = 2  # keep strokes that touch the scan's border from being clipped by the warp
    g = np.pad(glyph, pad)
    big = cv2.resize(g, (width * (8 + 2 * pad) // 8, height * (8 + 2 * pad) // 8),
                     interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), sigmaX=max(0.5, height / 40))
    h, w = big.shape
    angle = float(rng.uniform(-15, 15))
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    mat[0, 1] += float(rng.uniform(-0.2, 0.2))  # shear
    big = cv2.warpAffine(big, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    big = np.clip(big / max(float(big.max()), 1e-6), 0.0, 1.0)  # full ink at the darkest stroke
    ys, xs = np.nonzero(big >= STROKE_THRESHOLD)
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, h)
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, w)
    return big[y0:y1, x0:x1]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def render_canvas(rng: np.random.Generator, spec: DigitsSpec, glyphs: np.ndarray,
                  labels: np.ndarray, pool: np.ndarray):
    """One image: returns (BGR uint8 image, uint8 label mask, list of objects).

    Each object is ``dict(label, bbox=[x0, y0, x1, y1], sample)`` where ``bbox`` is the tight
    box of the digit's visible stroke pixels in the mask, ``sample`` the sklearn index.
    """
    size = spec.size
    img = _background(rng, size)
    _draw_distractors(rng, img, spec.max_digit)
    mask = np.zeros((size, size), np.uint8)
    owner = np.full((size, size), -1, np.int32)  # which placed digit owns each stroke pixel
    placed: List[dict] = []
    boxes: List[np.ndarray] = []
    for _ in range(int(rng.integers(spec.min_per_image, spec.max_per_image + 1))):
        sample = int(rng.choice(pool))
        # log-uniform height so small and large digits are equally common
        height = int(round(np.exp(rng.uniform(np.log(spec.min_digit), np.log(spec.max_digit)))))
        ink = _render_digit(rng, glyphs[sample], height)
        h, w = ink.shape
        if h >= size or w >= size:
            continue
        for _attempt in range(20):  # find a spot that barely overlaps earlier digits
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            box = np.array([x0, y0, x0 + w, y0 + h], np.float32)
            if all(_iou(box, b) < 0.1 for b in boxes):
                break
        else:
            continue
        boxes.append(box)
        bg_mean = img[y0:y0 + h, x0:x0 + w].mean(axis=(0, 1))
        # ink colour far enough from the local background to be readable, but not trivially so
        color = rng.uniform(0, 255, 3).astype(np.float32)
        if np.abs(color - bg_mean).max() < 90:
            color = np.where(bg_mean > 127, rng.uniform(0, 60, 3), rng.uniform(195, 255, 3))
        alpha = ink[..., None] * float(rng.uniform(0.75, 1.0))
        region = img[y0:y0 + h, x0:x0 + w]
        img[y0:y0 + h, x0:x0 + w] = region * (1 - alpha) + color * alpha
        stroke = ink >= STROKE_THRESHOLD
        mask[y0:y0 + h, x0:x0 + w][stroke] = labels[sample] + 1
        owner[y0:y0 + h, x0:x0 + w][stroke] = len(placed)
        placed.append(dict(label=int(labels[sample]), sample=sample))
    img += rng.normal(0.0, 4.0, img.shape)  # sensor noise over everything
    objects = []
    for k, obj in enumerate(placed):  # boxes from the final mask: occlusion-consistent
        ys, xs = np.nonzero(owner == k)
        if len(xs) == 0:
            continue
        obj['bbox'] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        objects.append(obj)
    return np.clip(img, 0, 255).astype(np.uint8), mask, objects


# ------------------------------------------------------------------------------------ writing
def _voc_xml(name: str, size: int, objects: List[dict]) -> str:
    objs = ''.join(
        f'  <object>\n    <name>{o["label"]}</name>\n    <pose>Unspecified</pose>\n'
        f'    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n'
        # VOC boxes are 1-based inclusive; mmdet subtracts 1 from xmin/ymin when loading
        f'      <xmin>{o["bbox"][0] + 1}</xmin>\n      <ymin>{o["bbox"][1] + 1}</ymin>\n'
        f'      <xmax>{o["bbox"][2]}</xmax>\n      <ymax>{o["bbox"][3]}</ymax>\n'
        f'    </bndbox>\n  </object>\n' for o in objects)
    return (f'<annotation>\n  <folder>VOC2007</folder>\n  <filename>{name}.jpg</filename>\n'
            f'  <size>\n    <width>{size}</width>\n    <height>{size}</height>\n'
            f'    <depth>3</depth>\n  </size>\n  <segmented>1</segmented>\n{objs}</annotation>\n')


def _link_or_copy(src: str, dst: str) -> None:
    if osp.lexists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:  # e.g. a filesystem without hard links
        shutil.copyfile(src, dst)


def make_digits_dataset(out: str, spec: DigitsSpec = DigitsSpec(), verbose: bool = False) -> dict:
    """Generate the dataset under ``out``; returns a summary dict (also written to meta.json)."""
    import cv2
    spec.validate()
    glyphs, labels = load_digit_bank()
    pools = split_sample_indices(len(labels))
    voc = osp.join(out, 'VOCdevkit', 'VOC2007')
    for d in ('images', 'annotations', 'masks', 'splits'):
        os.makedirs(osp.join(out, d), exist_ok=True)
    for d in ('JPEGImages', 'Annotations', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc, d), exist_ok=True)
    categories = [dict(id=d + 1, name=str(d), supercategory='digit') for d in range(10)]
    summary = dict(spec=asdict(spec), num_objects={})
    for split_id, (split, count) in enumerate(zip(SPLITS, (spec.num_train, spec.num_val))):
        # one independent stream per split: changing num_val does not change the train images
        rng = np.random.default_rng([spec.seed, split_id])
        images, annotations, stems = [], [], []
        for i in range(count):
            stem = f'{split}_{i:06d}'
            img, mask, objects = render_canvas(rng, spec, glyphs, labels, pools[split])
            img_path = osp.join(out, 'images', f'{stem}.jpg')
            cv2.imwrite(img_path, img, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
            cv2.imwrite(osp.join(out, 'masks', f'{stem}.png'), mask)
            _link_or_copy(img_path, osp.join(voc, 'JPEGImages', f'{stem}.jpg'))
            with open(osp.join(voc, 'Annotations', f'{stem}.xml'), 'w') as f:
                f.write(_voc_xml(stem, spec.size, objects))
            image_id = i + 1
            images.append(dict(id=image_id, file_name=f'{stem}.jpg', width=spec.size,
                               height=spec.size))
            for o in objects:
                x0, y0, x1, y1 = o['bbox']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=o['label'] + 1,
                    bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0), iscrowd=0,
                    digit_sample=o['sample']))
            stems.append(stem)
            if verbose and (i + 1) % 200 == 0:
                print(f'{split}: {i + 1}/{count} images')
        with open(osp.join(out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        split_list = ''.join(s + '\n' for s in stems)
        for path in (osp.join(out, 'splits', f'{split}.txt'),
                     osp.join(voc, 'ImageSets', 'Main', f'{split}.txt')):
            with open(path, 'w') as f:
                f.write(split_list)
        summary['num_objects'][split] = len(annotations)
    with open(osp.join(out, 'meta.json'), 'w') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    return summary
