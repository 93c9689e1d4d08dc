"""Run exported bnn_tasks models in ONNX Runtime and score them with the mmdet/mmseg evaluators.

* :func:`create_session`: an ``onnxruntime.InferenceSession`` with the ``bnn_tasks::BinaryConv2d``
  library registered when the model needs it (a clear error otherwise).
* :class:`OnnxDetector` / :class:`OnnxSegmentor`: take the output of the config's test pipeline
  and data preprocessor (normalised image, metainfo), pad it to the export shape, run the
  session and return ``DetDataSample`` / ``SegDataSample`` in original-image coordinates, exactly
  like ``model.test_step`` does.
* :func:`run_onnx_test`: ``tools/test.py``'s ONNX Runtime backend: the config's test dataloader
  through ORT, scored by the config's ``test_evaluator`` (CocoMetric, VOCMetric, IoUMetric...).
"""
import copy
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from bnn_tasks.build import init_scope

from .export_record import seg_head_settings
from .op_spec import is_library_node
from .runtime_lite import create_session as _create_session
from .runtime_lite import valid_size_feed


class OnnxRuntimeError(RuntimeError):
    """An exported model cannot be run (the message says why and what to do)."""


def uses_custom_op(model: onnx.ModelProto) -> bool:
    return any(is_library_node(n) for n in model.graph.node)


def create_session(model: Union[str, bytes, onnx.ModelProto], threads: int = 1,
                   register_library: bool = True):
    """ONNX Runtime session for an exported model.

    Args:
        model: ``.onnx`` path, serialized bytes or a ``ModelProto``.
        threads: intra-op threads.
        register_library: register the bnn_tasks kernel library (needed when the model has
            ``bnn_tasks::BinaryConv2d`` nodes; the float twin runs without it).
    """
    if isinstance(model, str):
        if not os.path.isfile(model):
            raise FileNotFoundError(f'ONNX model {model!r} does not exist')
        proto = onnx.load(model, load_external_data=False)
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = model
    needs_library = uses_custom_op(proto)
    try:
        return _create_session(model, threads, register_library=register_library and needs_library)
    except Exception as err:  # ORT raises its own Fail/InvalidGraph types
        if needs_library and not register_library:
            raise OnnxRuntimeError(
                'this model contains bnn_tasks nodes (BinaryConv2d, MultiLevelRoiAlign), '
                'which plain ONNX Runtime does not know: register the kernel library with '
                'SessionOptions.register_custom_ops_library('
                'bnn_tasks.deploy.library.library_path()) (create_session does it unless '
                f'register_library=False). ONNX Runtime said: {err}') from err
        raise


class _OnnxModel:
    """A session plus the export shape read from the graph's first input."""

    def __init__(self, path: str, threads: int = 1):
        self.path = path
        self.session = create_session(path, threads)
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.output_names = [o.name for o in self.session.get_outputs()]
        shape = inputs[0].shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
            raise OnnxRuntimeError(f'{path}: first input must be [N, C, H, W] with a fixed H, W; '
                                   f'got {shape}')
        self.export_hw = (int(shape[2]), int(shape[3]))
        # a detector's img_shape: [N, 2], or [2] in exports that take one image
        self.valid_size_rank = len(inputs[1].shape) if len(inputs) > 1 else 0

    def pad_to_export_shape(self, img: torch.Tensor, valid_hw: Sequence[int]) -> np.ndarray:
        """Zero-pad a normalised [C, h, w] image (bottom/right, as mmdet/mmseg pad) to H, W."""
        img = img[:, :int(valid_hw[0]), :int(valid_hw[1])]
        h, w = img.shape[-2:]
        eh, ew = self.export_hw
        if h > eh or w > ew:
            raise OnnxRuntimeError(
                f'the test pipeline produces a {h}x{w} image but {self.path} was exported for '
                f'{eh}x{ew}; export again with --shape {max(h, eh)} {max(w, ew)} (or larger) or '
                'change the Resize of the test pipeline')
        out = F.pad(img.float(), (0, ew - w, 0, eh - h))
        return out.unsqueeze(0).cpu().numpy()


class OnnxDetector(_OnnxModel):
    """Exported detector (outputs ``dets``, ``labels`` and, for any batch size,
    ``batch_indices``); runs one image at a time, as mmdet's test loop feeds them."""

    def predict(self, inputs: torch.Tensor, data_samples: List) -> List:
        from mmengine.structures import InstanceData
        results = []
        for img, sample in zip(inputs, data_samples):
            h, w = sample.metainfo['img_shape'][:2]
            feeds = {self.input_names[0]: self.pad_to_export_shape(img, (h, w))}
            if len(self.input_names) > 1:
                feeds[self.input_names[1]] = valid_size_feed([(h, w)], self.valid_size_rank)
            outs = dict(zip(self.output_names, self.session.run(None, feeds)))
            dets = torch.from_numpy(np.asarray(outs['dets'], dtype=np.float32)).reshape(-1, 5)
            pred = InstanceData()
            boxes = dets[:, :4]
            scale = sample.metainfo.get('scale_factor')
            if scale is not None:  # back to the original image, as mmdet's rescale=True
                boxes = boxes / boxes.new_tensor(scale).repeat(2)
            pred.bboxes = boxes
            pred.scores = dets[:, 4]
            pred.labels = torch.from_numpy(np.asarray(outs['labels'])).long().reshape(-1)
            sample.pred_instances = pred  # as mmdet's add_pred_to_datasample
            results.append(sample)
        return results


class OnnxSegmentor(_OnnxModel):
    """Exported segmentor (outputs ``seg_logits``, ``labels``)."""

    def __init__(self, path: str, threads: int = 1, align_corners: bool = False,
                 threshold: float = 0.3):
        super().__init__(path, threads)
        self.align_corners = align_corners
        self.threshold = threshold

    def predict(self, inputs: torch.Tensor, data_samples: List) -> List:
        from mmengine.structures import PixelData
        results = []
        for img, sample in zip(inputs, data_samples):
            meta = sample.metainfo
            h, w = meta['img_shape'][:2]
            feeds = {self.input_names[0]: self.pad_to_export_shape(img, (h, w))}
            outs = dict(zip(self.output_names, self.session.run(None, feeds)))
            logits = torch.from_numpy(outs['seg_logits'])[:, :, :h, :w]
            # as mmseg's postprocess_result: resize the logits to the original image, then argmax
            logits = F.interpolate(logits, size=tuple(meta['ori_shape'][:2]), mode='bilinear',
                                   align_corners=self.align_corners)[0]
            if logits.shape[0] > 1:
                labels = logits.argmax(dim=0, keepdim=True)
            else:
                logits = logits.sigmoid()
                labels = (logits > self.threshold).to(logits)
            sample.seg_logits = PixelData(data=logits)
            sample.pred_sem_seg = PixelData(data=labels)
            results.append(sample)
        return results


def build_onnx_model(cfg, path: str, threads: int = 1):
    """An :class:`OnnxDetector` or :class:`OnnxSegmentor` for the exported file ``path``."""
    model = onnx.load(path, load_external_data=False)
    outputs = [o.name for o in model.graph.output]
    if 'dets' in outputs:
        return OnnxDetector(path, threads)
    if 'seg_logits' in outputs:
        return OnnxSegmentor(path, threads, **seg_head_settings(cfg))
    raise OnnxRuntimeError(f'{path} is not a bnn_tasks detector/segmentor export (its outputs '
                           f'are {outputs}; expected dets/labels or seg_logits/labels)')


def evaluate_onnx(cfg, path: str, threads: int = 1, max_batches: Optional[int] = None
                  ) -> Dict[str, float]:
    """Run the config's test dataloader through ORT; returns the evaluator's metrics."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import MODELS
    from mmengine.runner import Runner
    init_scope(cfg)
    if cfg.model.get('test_cfg', {}).get('mode', 'whole') == 'slide':
        raise OnnxRuntimeError('sliding-window segmentation (test_cfg.mode="slide") is not '
                               'supported by the ONNX runner; use mode="whole"')
    onnx_model = build_onnx_model(cfg, path, threads)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    preprocessor.eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            data = preprocessor(batch, False)
            samples = onnx_model.predict(data['inputs'], data['data_samples'])
            evaluator.process(data_samples=samples, data_batch=batch)
    size = len(loader.dataset)
    if max_batches is not None:
        size = min(size, max_batches * loader.batch_size)
    return evaluator.evaluate(size)


def first_test_input(cfg, export_hw: Sequence[int]):
    """The first test image, pre-processed as the runner does and padded to ``export_hw``.

    Returns ``(input [1, 3, H, W], valid (h, w))``, or ``None`` when the test set cannot be read
    (e.g. not generated yet).
    """
    from mmengine.registry import MODELS
    from mmengine.runner import Runner
    try:
        init_scope(cfg)
        loader_cfg = copy.deepcopy(cfg.test_dataloader)
        loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
        loader = Runner.build_dataloader(loader_cfg)
        batch = next(iter(loader))
    except Exception:  # a missing data set must not stop an export
        return None
    preprocessor = MODELS.build(cfg.model.data_preprocessor).eval()
    with torch.no_grad():
        data = preprocessor(batch, False)
    img, sample = data['inputs'][0], data['data_samples'][0]
    h, w = (int(v) for v in sample.metainfo['img_shape'][:2])
    eh, ew = (int(v) for v in export_hw)
    if h > eh or w > ew:
        return None
    img = F.pad(img[:, :h, :w].float(), (0, ew - w, 0, eh - h)).unsqueeze(0)
    return img, (h, w)


def run_onnx_test(cfg, path: str, threads: int = 1) -> Dict[str, float]:
    """``tools/test.py`` with ``--backend onnxruntime`` or an ``.onnx`` checkpoint.

    Scores (and dumps) through ``cfg.test_evaluator`` as the PyTorch backend does, logs the
    metrics and returns them (``bnn_tasks.jobs.record_test`` writes them down).
    """
    from mmengine.logging import print_log
    if not str(path).endswith('.onnx'):
        raise OnnxRuntimeError(f'the ONNX Runtime backend needs an exported .onnx file, got '
                               f'{path!r}; export one with tools/deploy.py CONFIG CHECKPOINT')
    metrics = evaluate_onnx(cfg, path, threads=int(threads or 1))
    metrics = {k: (float(v) if hasattr(v, '__float__') else v) for k, v in metrics.items()}
    text = '  '.join(f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
                     for k, v in metrics.items())
    print_log(f'ONNX Runtime ({os.path.basename(path)}) test: {text}', logger='current')
    return metrics
