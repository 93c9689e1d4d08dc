"""Real images of a config's data set as an exported model's input dicts: the timing inputs
of ``tools/benchmark.py`` and the int8 calibration data of ``tools/deploy.py --int8``.

Images go through the config's test pipeline and data preprocessor, as the runner feeds them.
"""
from typing import List, Sequence

import onnx

from .runtime_lite import valid_size_feed


def dataset_inputs(cfg, export_hw: Sequence[int], count: int, split: str = 'test'):
    """Up to ``count`` images of the config's data set as the runner feeds them (test pipeline,
    data preprocessor), zero-padded bottom/right to ``export_hw``: ``[(x [1, 3, H, W],
    (h, w))]``. ``split='train'`` reads the training images with the test pipeline
    (calibration data); a training set without its own ``ann_file`` falls back to the test set.
    """
    import copy

    import torch
    import torch.nn.functional as F
    from mmengine.registry import MODELS
    from mmengine.runner import Runner

    from bnn_tasks.build import init_scope
    init_scope(cfg)
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    train = cfg.get('train_dataloader', {}).get('dataset', {})
    if split == 'train' and 'ann_file' in train:
        for key in ('data_root', 'ann_file', 'data_prefix'):
            if key in train:
                loader_cfg.dataset[key] = copy.deepcopy(train[key])
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    preprocessor = MODELS.build(cfg.model.data_preprocessor).eval()
    eh, ew = (int(v) for v in export_hw)
    samples = []
    with torch.no_grad():
        for batch in loader:
            data = preprocessor(batch, False)
            img, meta = data['inputs'][0], data['data_samples'][0].metainfo
            h, w = (int(v) for v in meta['img_shape'][:2])
            if h > eh or w > ew:
                raise ValueError(f'the test pipeline makes a {h}x{w} image, larger than the '
                                 f'export shape {eh}x{ew}: pass --shape')
            x = F.pad(img[:, :h, :w].float(), (0, ew - w, 0, eh - h))[None].numpy()
            samples.append((x, (h, w)))
            if len(samples) == count:
                break
    return samples


def as_feeds(samples, onnx_path: str) -> List[dict]:
    """Input dicts for an export: the image, and a detector's valid size ([2] or [1, 2])."""
    inputs = onnx.load(onnx_path, load_external_data=False).graph.input
    feeds = []
    for x, valid_hw in samples:
        feed = {inputs[0].name: x}
        if len(inputs) > 1:
            feed[inputs[1].name] = valid_size_feed([valid_hw],
                                                   len(inputs[1].type.tensor_type.shape.dim))
        feeds.append(feed)
    return feeds
