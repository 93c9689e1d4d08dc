"""Bit packing (deploy/packing.py) and the single-op model builders."""
import numpy as np
import onnx
import pytest
import torch

from bnn_tasks.deploy import op_spec, packing, single_op


def test_bit_order_is_documented_layout():
    w = np.ones((2, 40, 1, 2), np.float32)
    w[0, 0, 0, 0] = -1        # channel 0 -> word 0 bit 0
    w[0, 33, 0, 0] = -0.5     # channel 33 -> word 1 bit 1
    w[0, 31, 0, 1] = -2       # tap (0, 1), channel 31 -> word 0 bit 31 (sign bit of int32)
    w[1, 5, 0, 0] = 0.0       # sign(0) = +1 -> clear bit
    p = packing.pack_weights(w)
    assert p.dtype == np.int32 and p.shape == (2, 1, 2, 2)
    assert p[0, 0, 0, 0] == 1 and p[0, 0, 0, 1] == 2
    assert p[0, 0, 1, 0] == np.array([1 << 31], np.uint32).view(np.int32)[0]
    assert p[0, 0, 1, 1] == 0 and np.all(p[1] == 0)


def test_bits_past_channels_are_zero_and_roundtrip():
    rng = np.random.default_rng(0)
    for c in (1, 3, 31, 32, 33, 65, 130):
        w = np.where(rng.standard_normal((5, c, 3, 2)) >= 0, 1.0, -1.0).astype(np.float32)
        p = packing.pack_weights(torch.from_numpy(w))
        assert p.shape == (5, 3, 2, (c + 31) // 32)
        tail = p[..., -1].view(np.uint32) >> np.uint32(c % 32) if c % 32 else 0
        assert np.all(tail == 0)
        np.testing.assert_array_equal(packing.unpack_weights(p, c), w)


def test_activations_pack_like_weights():
    x = np.random.default_rng(1).standard_normal((2, 70, 3, 4)).astype(np.float32)
    a = packing.pack_activations(x)
    assert a.shape == (2, 3, 4, 3)
    # An activation pixel packs exactly like a 1x1 weight with the same channel vector.
    w = x.transpose(0, 2, 3, 1).reshape(-1, 70)[:, :, None, None]
    np.testing.assert_array_equal(a.reshape(-1, 3), packing.pack_weights(w).reshape(-1, 3))


def test_pack_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r'\[C_out, C_in, kh, kw\]'):
        packing.pack_weights(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match='empty'):
        packing.pack_weights(np.ones((0, 3, 3, 3)))


def test_single_op_models_pass_the_checker():
    w = np.ones((4, 3, 3, 3), np.float32)
    m = single_op.binary_conv_model(w, np.ones(4), np.zeros(4), ['N', 3, 8, 8], (2, 2),
                                    (1, 1, 1, 1), (1, 1), np.ones(4), np.ones(4), residual=True)
    onnx.checker.check_model(m, full_check=False)
    node = m.graph.node[0]
    assert op_spec.is_binary_conv(node)
    assert list(node.input) == list(op_spec.INPUT_NAMES)  # every optional input, in order
    onnx.checker.check_model(single_op.float_conv_model(w, None, [1, 3, 8, 8]))
