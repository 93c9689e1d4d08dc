"""Run an exported bnn_tasks detector or segmentor with ONNX Runtime and numpy alone.

    python runtime_lite.py MODEL.onnx IMAGE [--threads N] [--out FILE]

Needs ``onnxruntime``, ``numpy`` and the custom-op library ``libbnn_tasks_ort.so``; imports
nothing from bnn_tasks, torch or OpenMMLab, so this file can be copied next to the library
onto a device and run there (``BNN_TASKS_ORT_LIBRARY`` points at a library elsewhere).

``tools/deploy.py`` records in the ``.onnx`` file's metadata (key :data:`RECORD_KEY`) what the
config's test pipeline does around the graph; :class:`Model` replays it as mmdet/mmseg do:

* read the image: PNG and ``.npy`` with numpy alone, any format OpenCV or Pillow reads when one
  is installed (OpenCV first: it is mmcv's decoder);
* resize as mmcv's ``Resize`` (``keep_ratio`` or not): OpenCV's bilinear when installed, else a
  numpy bilinear with the same sampling (within one grey level of OpenCV's fixed-point result);
* normalise with the data preprocessor's mean/std in its channel order, zero-pad bottom/right
  to the export size;
* detectors: boxes back to the image's coordinates (mmdet's ``rescale=True``);
  segmentors: logits of the valid region resized to the image, then argmax (mmseg).

Inside the package (``bnn_tasks.deploy.runtime_lite``) this module is also where the library is
found and every ONNX Runtime session is made (:func:`create_session`).
"""
import argparse
import json
import os
import struct
import zlib
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

LIBRARY_NAME = 'libbnn_tasks_ort.so'
LIBRARY_ENV = 'BNN_TASKS_ORT_LIBRARY'
RECORD_KEY = 'bnn_tasks.pipeline'  # .onnx metadata: the JSON written by deploy/export_record.py


class LibraryNotBuiltError(FileNotFoundError):
    """The native library is missing (the message says how to build it)."""


class PipelineError(ValueError):
    """An image or model the recorded pipeline cannot handle (the message says why)."""


# ---- the library and ONNX Runtime sessions ----

def library_path() -> str:
    """Absolute path of the custom-op library; raises :class:`LibraryNotBuiltError` if absent."""
    override = os.environ.get(LIBRARY_ENV)
    path = override or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.isfile(path):
        where = f'{LIBRARY_ENV}={override}' if override else path
        raise LibraryNotBuiltError(
            f'the bnn_tasks ONNX Runtime custom-op library is not built ({where} does not exist). '
            'Run tools/install.sh (or `pip install --no-deps --no-build-isolation -e .` in the '
            f'repository), which compiles it; or put {LIBRARY_NAME} next to this file, or set '
            f'{LIBRARY_ENV}.')
    return path


def session_options(threads: int = 1, spinning: bool = True, register_library: bool = True,
                    **options):
    """``onnxruntime.SessionOptions`` with ``threads`` intra-op threads and the library registered.

    ``spinning=False`` makes idle intra-op threads sleep instead of spinning after a run (when
    several multi-threaded sessions take turns, a spinning pool steals the cores of the next).
    Extra keyword arguments are set as attributes (e.g. ``graph_optimization_level``).
    """
    import onnxruntime as ort
    if int(threads) < 1:
        raise ValueError(f'threads must be >= 1, got {threads}')
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        so.add_session_config_entry('session.intra_op.allow_spinning', '0')
    for name, value in options.items():
        setattr(so, name, value)
    if register_library:
        so.register_custom_ops_library(library_path())
    return so


def create_session(model, threads: int = 1, register_library: bool = True, spinning: bool = True,
                   **options):
    """CPU ``onnxruntime.InferenceSession`` for ``model`` (path, bytes or ``onnx.ModelProto``).

    ``register_library=False`` for graphs without ``bnn_tasks::BinaryConv2d`` (float twins,
    float baselines), which then run without the library.
    """
    import onnxruntime as ort
    if hasattr(model, 'SerializeToString'):
        model = model.SerializeToString()
    so = session_options(threads, spinning, register_library, **options)
    return ort.InferenceSession(model, so, providers=['CPUExecutionProvider'])


# ---- reading images (RGB uint8 [H, W, 3]) ----

def read_image(path: str) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]``: OpenCV if installed (mmcv decodes with it),
    else numpy alone for PNG / ``.npy`` (an ``[H, W, 3]`` RGB or ``[H, W]`` grey array), else
    Pillow."""
    if path.endswith('.npy'):
        return _as_rgb(np.load(path))
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise PipelineError(f'OpenCV cannot read the image {path!r}')
        return np.ascontiguousarray(img[..., ::-1])
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] == PNG_SIGNATURE:
        return _as_rgb(decode_png(data))
    try:
        from PIL import Image
    except ImportError:
        raise PipelineError(f'{path!r} is not a PNG; reading it needs OpenCV or Pillow '
                            '(pip install opencv-python-headless, or pillow)') from None
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'))


def _as_rgb(img: np.ndarray) -> np.ndarray:
    """Grey -> 3 equal channels, alpha dropped (what OpenCV's IMREAD_COLOR gives)."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise PipelineError(f'expected an [H, W], [H, W, 3] or [H, W, 4] image, got {img.shape}')
    if img.shape[2] in (1, 2):
        img = np.repeat(img[..., :1], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def decode_png(data: bytes) -> np.ndarray:
    """A non-interlaced 8- or 16-bit PNG (grey, RGB, palette, with or without alpha) as uint8
    ``[H, W, C]``; 16-bit samples keep their high byte, as OpenCV's 8-bit reading does."""
    pos, idat, palette, header = 8, [], None, None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', body)
        elif kind == b'PLTE':
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
    width, height, depth, colour, _, _, interlace = header
    if interlace or depth not in (8, 16) or colour not in _PNG_CHANNELS:
        raise PipelineError(f'PNG with bit depth {depth}, colour type {colour}, interlace '
                            f'{interlace} needs OpenCV or Pillow to read')
    channels = _PNG_CHANNELS[colour]
    bpp = channels * depth // 8
    rows = _unfilter_png(zlib.decompress(b''.join(idat)), height, width * bpp, bpp)
    pixels = rows.reshape(height, width, channels * depth // 8)
    if depth == 16:
        pixels = pixels[..., 0::2]  # big-endian samples: the high byte
    if colour == 3:
        pixels = palette[pixels[..., 0]]
    return pixels


def _unfilter_png(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    out = np.zeros((height, stride), np.uint8)
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1:start + 1 + stride]
        if kind == 0:
            cur = np.frombuffer(line, np.uint8)
        elif kind == 1:  # Sub: a running sum per byte position within the pixel
            cur = np.frombuffer(line, np.uint8).reshape(-1, bpp).cumsum(0, dtype=np.uint8)
        elif kind == 2:  # Up
            cur = np.frombuffer(line, np.uint8) + np.frombuffer(prev, np.uint8)
        else:  # Average / Paeth depend on the byte just decoded: one byte at a time
            cur = bytearray(stride)
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                if kind == 3:
                    cur[i] = (line[i] + ((a + b) >> 1)) & 255
                    continue
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) & 255
            cur = np.frombuffer(bytes(cur), np.uint8)
        out[y] = np.asarray(cur).reshape(-1)
        prev = out[y].tobytes()
    return out


# ---- resizing ----

def rescaled_size(width: int, height: int, scale: Sequence[int], keep_ratio: bool
                  ) -> Tuple[int, int]:
    """``(new_w, new_h)`` of mmcv's ``Resize(scale=(W, H), keep_ratio)``: with ``keep_ratio``
    the largest size whose long edge fits ``max(scale)`` and short edge ``min(scale)``."""
    if not keep_ratio:
        return int(scale[0]), int(scale[1])
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(width * float(factor) + 0.5), int(height * float(factor) + 0.5)


def _sample_positions(out_size: int, in_size: int, align_corners: bool):
    """Source indices and weights of linear interpolation along one axis (PyTorch's and
    OpenCV's: pixel centres, clamped at the borders)."""
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = np.arange(out_size) * scale
    else:
        src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype(np.float32)


def resize_bilinear(array: np.ndarray, out_h: int, out_w: int, align_corners: bool = False
                    ) -> np.ndarray:
    """Bilinear resize of ``[H, W]`` or ``[H, W, C]`` to float32 ``[out_h, out_w(, C)]``."""
    a = np.asarray(array, np.float32)
    y0, y1, fy = _sample_positions(out_h, a.shape[0], align_corners)
    x0, x1, fx = _sample_positions(out_w, a.shape[1], align_corners)
    extra = (1,) * (a.ndim - 2)
    fy, fx = fy.reshape((-1, 1) + extra), fx.reshape((1, -1) + extra)
    rows = a[y0] * (1 - fy) + a[y1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def resize_image(img: np.ndarray, new_w: int, new_h: int, use_cv2: Optional[bool] = None
                 ) -> np.ndarray:
    """uint8 image to ``new_w`` x ``new_h``: OpenCV's INTER_LINEAR (what mmcv calls) when
    installed (``use_cv2=None``), else :func:`resize_bilinear` rounded to uint8."""
    if img.shape[:2] == (new_h, new_w):
        return img
    if use_cv2 is None:
        try:
            import cv2  # noqa: F401
            use_cv2 = True
        except ImportError:
            use_cv2 = False
    if use_cv2:
        import cv2
        return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = resize_bilinear(img, new_h, new_w)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- the model ----

class Detections(NamedTuple):
    """Boxes ``[K, 4]`` (x1, y1, x2, y2 in image pixels), ``scores [K]``, ``labels [K]``, best
    first; ``classes`` names the labels (empty if the export recorded none)."""
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    classes: Tuple[str, ...]


class Segmentation(NamedTuple):
    """``labels [H, W]`` at the image's size and the ``logits [C, H, W]`` they are argmax of."""
    labels: np.ndarray
    logits: np.ndarray
    classes: Tuple[str, ...]


class Model:
    """An exported detector or segmentor with its recorded pre- and post-processing.

    ``Model(path)(image)`` takes an RGB uint8 ``[H, W, 3]`` array or an image path and returns
    :class:`Detections` or :class:`Segmentation`.
    """

    def __init__(self, path: str, threads: int = 1, register_library: bool = True):
        self.path = path
        self.session = create_session(path, threads, register_library)
        meta = self.session.get_modelmeta().custom_metadata_map
        if RECORD_KEY not in meta:
            raise PipelineError(f'{path} carries no pipeline record (metadata {RECORD_KEY!r}); '
                                'export it with tools/deploy.py')
        self.record = json.loads(meta[RECORD_KEY])
        if self.record.get('unsupported_steps'):
            raise PipelineError(f'{path}: the test pipeline has steps this runtime does not '
                                f'replay: {self.record["unsupported_steps"]}')
        self.inputs = self.session.get_inputs()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.export_hw = tuple(int(v) for v in self.inputs[0].shape[2:])
        self.classes = tuple(self.record.get('classes') or ())

    def __call__(self, image):
        """The result for one image (an RGB uint8 ``[H, W, 3]`` array or a path)."""
        return self.predict([image])[0]

    def predict(self, images: Sequence) -> list:
        """Results for several images, run as one batch when the export takes any batch size
        (each image gets what it gets alone), else one by one."""
        images = [read_image(i) if isinstance(i, str) else _as_rgb(i) for i in images]
        prepared = [self.preprocess(img) for img in images]
        fixed = self.inputs[0].shape[0]
        step = fixed if isinstance(fixed, int) and fixed > 0 else max(len(prepared), 1)
        results = []
        for start in range(0, len(prepared), step):
            chunk = prepared[start:start + step]
            feeds = {self.inputs[0].name: np.concatenate([x for x, _, _ in chunk])}
            if len(self.inputs) > 1:  # detectors: each image's valid size inside the padding
                feeds[self.inputs[1].name] = valid_size_feed(
                    [valid for _, valid, _ in chunk], len(self.inputs[1].shape))
            outs = dict(zip(self.output_names, self.session.run(None, feeds)))
            for row, (img, (_, valid_hw, scale)) in enumerate(zip(images[start:], chunk)):
                results.append(self._detections(outs, row, scale) if 'dets' in outs else
                               self._segmentation(outs, row, valid_hw, img.shape[:2]))
        return results

    def preprocess(self, img: np.ndarray):
        """``(input [1, 3, H, W], valid (h, w), (w_scale, h_scale))`` as the test pipeline and
        data preprocessor make them."""
        h, w = img.shape[:2]
        resize = self.record.get('resize')
        if resize:
            new_w, new_h = rescaled_size(w, h, resize['scale'], resize['keep_ratio'])
            img = resize_image(img, new_w, new_h)
        new_h, new_w = img.shape[:2]
        eh, ew = self.export_hw
        if new_h > eh or new_w > ew:
            raise PipelineError(f'the pipeline makes a {new_h}x{new_w} image but {self.path} was '
                                f'exported for {eh}x{ew}; export again with --shape '
                                f'{max(new_h, eh)} {max(new_w, ew)} (or larger)')
        x = img if self.record.get('rgb', True) else img[..., ::-1]
        x = x.astype(np.float32)
        if self.record.get('mean') is not None:
            x = (x - np.asarray(self.record['mean'], np.float32)) / np.asarray(
                self.record['std'], np.float32)
        padded = np.zeros((1, 3, eh, ew), np.float32)
        padded[0, :, :new_h, :new_w] = x.transpose(2, 0, 1)
        return padded, (new_h, new_w), (new_w / w, new_h / h)

    def _detections(self, outs: dict, row: int, scale) -> Detections:
        dets = np.asarray(outs['dets'], np.float32).reshape(-1, 5)
        labels = np.asarray(outs['labels']).reshape(-1)
        if 'batch_indices' in outs:
            mine = np.asarray(outs['batch_indices']).reshape(-1) == row
            dets, labels = dets[mine], labels[mine]
        w_scale, h_scale = scale
        boxes = dets[:, :4] / np.array([w_scale, h_scale, w_scale, h_scale], np.float32)
        return Detections(boxes, dets[:, 4].copy(), labels, self.classes)

    def _segmentation(self, outs: dict, row: int, valid_hw, image_hw) -> Segmentation:
        h, w = valid_hw
        logits = np.asarray(outs['seg_logits'], np.float32)[row, :, :h, :w]
        logits = resize_bilinear(logits.transpose(1, 2, 0), image_hw[0], image_hw[1],
                                 self.record.get('align_corners', False))
        logits = logits.transpose(2, 0, 1)
        if logits.shape[0] > 1:
            labels = logits.argmax(axis=0)
        else:  # one logit: a threshold on its sigmoid (mmseg's binary segmentation)
            logits = 1.0 / (1.0 + np.exp(-logits))
            labels = (logits[0] > self.record.get('threshold', 0.3)).astype(np.int64)
        return Segmentation(labels, logits, self.classes)


def valid_size_feed(valid_hw: Sequence[Sequence[int]], rank: int) -> np.ndarray:
    """A detector's ``img_shape`` input for images with these valid (h, w): ``[N, 2]``, or
    ``[2]`` for one image of an export that takes one (``rank`` 1)."""
    rows = np.array(valid_hw, np.float32).reshape(-1, 2)
    if rank == 1:
        if len(rows) != 1:
            raise PipelineError(f'this export takes one image, got {len(rows)}')
        return rows[0]
    return rows


# ---- command line ----

def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='.onnx file written by tools/deploy.py')
    parser.add_argument('image', help='image file (PNG/.npy with numpy alone; other formats '
                                      'need OpenCV or Pillow)')
    parser.add_argument('--threads', type=int, default=1, help='ONNX Runtime intra-op threads')
    parser.add_argument('--out', help='write the result here: detections as JSON, a '
                                      'segmentation as .npy labels')
    args = parser.parse_args(argv)
    result = Model(args.model, args.threads)(args.image)
    if isinstance(result, Detections):
        names = result.classes
        summary = dict(detections=[
            dict(box=[float(v) for v in box], score=float(score), label=int(label),
                 **({'class': names[label]} if label < len(names) else {}))
            for box, score, label in zip(result.boxes, result.scores, result.labels)])
        text = json.dumps(summary, indent=1)
        if args.out:
            with open(args.out, 'w') as f:
                f.write(text)
        print(text)
    else:
        counts = np.bincount(result.labels.reshape(-1))
        summary = dict(shape=list(result.labels.shape),
                       pixels_per_label={int(i): int(n) for i, n in enumerate(counts) if n})
        if args.out:
            np.save(args.out, result.labels)
        print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
