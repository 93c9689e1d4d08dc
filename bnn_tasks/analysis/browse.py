"""Draw a config's training samples, as the model sees them, with their ground truth.

Each sample goes through the config's training pipeline (resize, crop, colour jitter...) and is
drawn by the task's own visualizer (mmdet ``DetLocalVisualizer``: boxes and class names;
mmseg ``SegLocalVisualizer``: the mask in the class palette), into one image per sample.
"""
import os
import os.path as osp
from typing import List, Optional

import numpy as np

DEFAULT_VISUALIZERS = {'mmdet': 'DetLocalVisualizer', 'mmseg': 'SegLocalVisualizer'}


def build_train_dataset(cfg):
    """The config's training dataset with its pipeline (registries initialised)."""
    return build_split_dataset(cfg, 'train')


def build_split_dataset(cfg, split: str):
    """The config's ``{split}_dataloader`` dataset with its pipeline (registries initialised)."""
    from bnn_tasks.build import scope_registry
    return scope_registry(cfg, 'DATASETS').build(cfg[f'{split}_dataloader'].dataset)


def build_visualizer(cfg, dataset_meta: dict):
    """The config's visualizer type, writing nowhere but where it is told (no vis backends)."""
    from bnn_tasks.build import config_scope, scope_registry
    visualizers = scope_registry(cfg, 'VISUALIZERS')
    vis_cfg = dict(cfg.get('visualizer') or {})
    vis_type = vis_cfg.get('type', DEFAULT_VISUALIZERS[config_scope(cfg)])
    # a fresh name: mmengine keeps visualizers as named global instances
    visualizer = visualizers.build(dict(type=vis_type, name=f'browse_dataset_{os.getpid()}_'
                                        f'{id(cfg)}'))
    visualizer.dataset_meta = dataset_meta
    return visualizer


def image_of(inputs) -> np.ndarray:
    """Packed CHW BGR tensor -> HWC RGB uint8 (the colour jitter leaves floats out of range)."""
    img = inputs.detach().cpu().numpy().transpose(1, 2, 0)[..., ::-1]
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def browse_dataset(cfg, output_dir: str, max_images: Optional[int] = None) -> List[str]:
    """Write the first ``max_images`` (default: all) training samples with their ground truth
    to ``output_dir``; returns the written paths."""
    dataset = build_train_dataset(cfg)
    visualizer = build_visualizer(cfg, dataset.metainfo)
    os.makedirs(output_dir, exist_ok=True)
    count = len(dataset) if max_images is None else min(len(dataset), max_images)
    written = []
    for index in range(count):
        written.append(draw_sample(visualizer, dataset[index], output_dir, index))
    return written


def draw_sample(visualizer, item: dict, output_dir: str, index: int = 0) -> str:
    """Draw one pipeline output (``inputs`` + ``data_samples``) with its ground truth."""
    sample = item['data_samples']
    boxes = sample.gt_instances.get('bboxes') if 'gt_instances' in sample else None
    if boxes is not None and hasattr(boxes, 'tensor'):
        # the pipeline packs mmdet box objects; the visualizer draws plain [N, 4] tensors
        sample.gt_instances.bboxes = boxes.tensor
    stem = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{index}')))[0]
    out_file = osp.join(output_dir, f'{index:05d}_{stem}.jpg')
    visualizer.add_datasample(stem, image_of(item['inputs']), sample, draw_pred=False,
                              show=False, out_file=out_file)
    return out_file
