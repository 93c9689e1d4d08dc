"""Check a config's data before building anything, so mistakes surface as one clear line.

mmdet/mmseg report a missing annotation file or a malformed JSON deep inside dataset
construction (sometimes in a dataloader worker); here each problem raises ``DatasetError``
naming the config key and the file.
"""
import json
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Iterator, Tuple

from .errors import DatasetError

_WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset', 'MultiImageMixDataset')
_XML_TYPES = ('XMLDataset', 'VOCDataset')
DIGITS_FOLDER = 'digits'  # the built-in set's folder name in every digits config


def iter_datasets(cfg, key: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(config key path, leaf dataset cfg)`` under a dataset cfg, through wrappers."""
    if cfg is None:
        return
    typ = cfg.get('type', '')
    if typ in _WRAPPERS or (typ not in ('ConcatDataset', ) and 'dataset' in cfg
                            and isinstance(cfg['dataset'], dict)):
        yield from iter_datasets(cfg['dataset'], f'{key}.dataset')
    elif 'datasets' in cfg:
        for i, sub in enumerate(cfg['datasets']):
            yield from iter_datasets(sub, f'{key}.datasets.{i}')
    else:
        yield key, cfg


def _join(root, path):
    if not path:
        return root or ''
    return path if (not root or osp.isabs(path)) else osp.join(root, path)


def _check_json(path: str, key: str) -> None:
    try:
        with open(path) as f:
            json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f'{path} ({key}) is not valid JSON: {e.msg} at line {e.lineno} '
                           f'column {e.colno}') from None
    except UnicodeDecodeError:
        raise DatasetError(f'{path} ({key}) is not a text JSON file') from None


def _check_xml_split(split_file: str, sub_root: str, ann_subdir: str, key: str) -> None:
    with open(split_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    for img_id in ids:
        xml_path = osp.join(sub_root, ann_subdir, f'{img_id}.xml')
        if not osp.isfile(xml_path):
            raise DatasetError(f'{xml_path} (listed in {split_file}, {key}) does not exist')
        try:
            ET.parse(xml_path)
        except ET.ParseError as e:
            raise DatasetError(f'{xml_path} ({key}) does not parse as XML: {e}') from None


def _how_to_make(root: str) -> str:
    """The next step for a missing data root: the built-in digits set is generated, not
    downloaded (its configs' roots end in ``digits``); any other set follows docs/datasets.md."""
    if osp.basename(osp.normpath(root)) == DIGITS_FOLDER:
        return f'make it with: python tools/make_digits_dataset.py --out {root}'
    return 'see docs/datasets.md for the expected layout'


def check_dataset_cfg(ds: dict, key: str) -> None:
    """Check one leaf dataset config: root, annotation/split file, folders."""
    root = ds.get('data_root')
    if root and not osp.isdir(root):
        raise DatasetError(f'data root {root!r} ({key}.data_root) does not exist; '
                           + _how_to_make(root))
    ann = ds.get('ann_file')
    typ = ds.get('type', '')
    prefix = ds.get('data_prefix') or {}
    if ann:
        ann_path = _join(root, ann)
        if not osp.isfile(ann_path):
            what = 'split file' if ann_path.endswith('.txt') else 'annotation file'
            raise DatasetError(f'{what} {ann_path!r} ({key}.ann_file) does not exist')
        if ann_path.endswith('.json'):
            _check_json(ann_path, f'{key}.ann_file')
        if typ in _XML_TYPES:
            sub_root = _join(root, prefix.get('sub_data_root', ''))
            _check_xml_split(ann_path, sub_root, ds.get('ann_subdir', 'Annotations'), key)
    for name, sub in prefix.items():  # image / mask folders
        if name == 'sub_data_root' or not isinstance(sub, str) or not sub:
            continue
        folder = _join(_join(root, prefix.get('sub_data_root', '')), sub) \
            if name != 'sub_data_root' else None
        if folder and not osp.isdir(folder):
            raise DatasetError(f'folder {folder!r} ({key}.data_prefix.{name}) does not exist')


def check_data(cfg, splits=('train', 'val', 'test')) -> None:
    """Check the dataloaders (and evaluator annotation files) a tool is about to use."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for key, ds in iter_datasets(loader.get('dataset'), f'{split}_dataloader.dataset'):
            check_dataset_cfg(ds, key)
        if split == 'train':
            continue
        evaluators = cfg.get(f'{split}_evaluator')
        for i, ev in enumerate(evaluators if isinstance(evaluators, list) else [evaluators]):
            ann = (ev or {}).get('ann_file')
            if ann:
                ekey = f'{split}_evaluator' + (f'.{i}' if isinstance(evaluators, list) else '')
                if not osp.isfile(ann):
                    raise DatasetError(f'annotation file {ann!r} ({ekey}.ann_file) does not '
                                       f'exist')
                _check_json(ann, f'{ekey}.ann_file')
