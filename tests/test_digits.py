"""The built-in digits dataset: determinism, split hygiene, scale range, label consistency."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from conftest import PYTHON, REPO, make_tiny_digits, run_tool_in_process, tool_env

from bnn_tasks.datasets.digits import (DigitsSpec, load_digit_bank, make_digits_dataset,
                                       split_sample_indices)


def _tree_digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = osp.join(dirpath, name)
            h.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def _load(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_tiny_digits(tmp_path / 'a', num_train=3, num_val=2, seed=7)
    b = make_tiny_digits(tmp_path / 'b', num_train=3, num_val=2, seed=7)
    c = make_tiny_digits(tmp_path / 'c', num_train=3, num_val=2, seed=8)
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)


def test_val_uses_digit_samples_never_seen_in_training(tiny_digits):
    pools = split_sample_indices(len(load_digit_bank()[1]))
    assert not set(pools['train']) & set(pools['val'])
    train = {a['digit_sample'] for a in _load(tiny_digits, 'train')['annotations']}
    val = {a['digit_sample'] for a in _load(tiny_digits, 'val')['annotations']}
    assert train and val
    assert not train & val
    assert train <= set(pools['train']) and val <= set(pools['val'])


def test_digit_heights_span_at_least_4x():
    # enough images to see the spread of the log-uniform size distribution
    rng = np.random.default_rng(0)
    spec = DigitsSpec(size=256)
    from bnn_tasks.datasets.digits import render_canvas
    glyphs, labels = load_digit_bank()
    pool = split_sample_indices(len(labels))['train']
    heights = []
    for _ in range(40):
        _, _, objects = render_canvas(rng, spec, glyphs, labels, pool)
        heights += [o['bbox'][3] - o['bbox'][1] for o in objects]
    assert min(heights) >= spec.min_digit * 0.5
    assert max(heights) / min(heights) >= 4.0
    assert 2 <= spec.min_per_image and spec.max_digit / spec.min_digit >= 4


def test_masks_consistent_with_boxes_and_labels(tiny_digits):
    for split in ('train', 'val'):
        coco = _load(tiny_digits, split)
        assert [c['name'] for c in coco['categories']] == [str(d) for d in range(10)]
        by_image = {}
        for a in coco['annotations']:
            by_image.setdefault(a['image_id'], []).append(a)
        for img in coco['images']:
            stem = img['file_name'][:-4]
            image = cv2.imread(osp.join(tiny_digits, 'images', img['file_name']))
            mask = cv2.imread(osp.join(tiny_digits, 'masks', stem + '.png'), cv2.IMREAD_UNCHANGED)
            assert image.shape[:2] == mask.shape == (img['height'], img['width'])
            assert mask.max() <= 10
            anns = by_image.get(img['id'], [])
            assert len(anns) >= 1
            covered = np.zeros(mask.shape, bool)
            for a in anns:
                x, y, w, h = a['bbox']
                inside = mask[y:y + h, x:x + w]
                label = a['category_id']  # COCO id d + 1 == mask value for digit d
                assert (inside == label).any()
                # tight box: the digit's strokes touch all four sides
                ys, xs = np.nonzero(inside == label)
                assert (ys.min(), xs.min(), ys.max(), xs.max()) == (0, 0, h - 1, w - 1)
                covered[y:y + h, x:x + w] |= inside == label
            # every labelled pixel belongs to some box of its class
            assert not ((mask > 0) & ~covered).any()
            # VOC xml says the same thing as the COCO json (1-based inclusive coordinates)
            root = ET.parse(osp.join(tiny_digits, 'VOCdevkit', 'VOC2007', 'Annotations',
                                     stem + '.xml')).getroot()
            voc = sorted((o.find('name').text, int(o.find('bndbox/xmin').text) - 1,
                          int(o.find('bndbox/ymin').text) - 1, int(o.find('bndbox/xmax').text),
                          int(o.find('bndbox/ymax').text)) for o in root.iter('object'))
            ref = sorted((str(a['category_id'] - 1), a['bbox'][0], a['bbox'][1],
                          a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]) for a in anns)
            assert voc == ref


def test_layout_split_files_and_no_duplicate_images(tiny_digits):
    voc = osp.join(tiny_digits, 'VOCdevkit', 'VOC2007')
    for split in ('train', 'val'):
        with open(osp.join(tiny_digits, 'splits', f'{split}.txt')) as f:
            stems = f.read().split()
        with open(osp.join(voc, 'ImageSets', 'Main', f'{split}.txt')) as f:
            assert f.read().split() == stems
        for stem in stems:
            a = osp.join(tiny_digits, 'images', stem + '.jpg')
            b = osp.join(voc, 'JPEGImages', stem + '.jpg')
            assert osp.samefile(a, b) or open(a, 'rb').read() == open(b, 'rb').read()


def test_cli_writes_dataset_and_rejects_bad_sizes(tmp_path):
    out = tmp_path / 'd'
    run = run_tool_in_process('make_digits_dataset', ['--out', str(out), '--num-train', '2',
                                                      '--num-val', '1', '--size', '64'])
    assert run.returncode == 0, run.stderr
    assert len(_load(str(out), 'train')['images']) == 2
    bad = subprocess.run([PYTHON, osp.join(REPO, 'tools', 'make_digits_dataset.py'), '--out',
                          str(tmp_path / 'e'), '--size', '64', '--max-digit', '60'],
                         capture_output=True, text=True, env=tool_env(), timeout=120)
    assert bad.returncode == 2 and 'max_digit' in bad.stderr


def test_spec_validation():
    with pytest.raises(ValueError):
        DigitsSpec(min_digit=40, max_digit=20).validate()
    with pytest.raises(ValueError):
        make_digits_dataset('/nonexistent-unused', DigitsSpec(size=16))


def test_relative_output_path(tmp_path, monkeypatch):
    # the README's main job passes a relative --out; the VOC copy must land inside it
    monkeypatch.chdir(tmp_path)
    make_digits_dataset('rel/digits', DigitsSpec(num_train=2, num_val=1, size=64, min_digit=8,
                                                 max_digit=20))
    voc_images = os.listdir(tmp_path / 'rel/digits/VOCdevkit/VOC2007/JPEGImages')
    assert sorted(voc_images) == ['train_000000.jpg', 'train_000001.jpg', 'val_000000.jpg']
    assert not (tmp_path / 'rel/digits/rel').exists()
