"""The native bnn_tasks::BinaryConv2d kernel against the float reference (deploy/OP_CONTRACT.md).

Every kernel variant the CPU supports is forced in turn (BNN_TASKS_KERNEL is read when the
session is created) and run with 1 and 2 intra-op threads. ``BNN_TASKS_KERNEL_TEST_EXAMPLES``
scales the number of property-based examples (the sanitizer run uses fewer).
"""
import os

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from bnn_tasks.deploy import library, op_spec, packing, single_op
from bnn_tasks.deploy.reference import binary_conv2d_reference

EXAMPLES = int(os.environ.get('BNN_TASKS_KERNEL_TEST_EXAMPLES', '60'))
VARIANTS = library.KERNEL_VARIANTS


@pytest.fixture(params=VARIANTS)
def variant(request):
    try:
        library.selected_kernel(request.param)
    except RuntimeError as e:  # the library's reason names the missing feature
        pytest.skip(f'this CPU cannot run the {request.param} kernel: {e}')
    return request.param


def run_op(model, feeds, variant, threads):
    sess = library.make_session(model, threads=threads, kernel=variant)
    return sess.run(None, feeds)[0]


def random_case(rng, n, c, h, w, o, kh, kw, stride, pads, dilation, row, col, res):
    weight = rng.standard_normal((o, c, kh, kw)).astype(np.float32)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    x.flat[::7] = 0.0  # sign(0) = +1
    scale = rng.uniform(0.1, 2.0, o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    ho = op_spec.conv_output_size(h, kh, stride[0], pads[0], pads[2], dilation[0])
    wo = op_spec.conv_output_size(w, kw, stride[1], pads[1], pads[3], dilation[1])
    row_scale = rng.uniform(0.5, 1.5, ho).astype(np.float32) if row else None
    col_scale = rng.uniform(0.5, 1.5, wo).astype(np.float32) if col else None
    residual = rng.standard_normal((n, o, ho, wo)).astype(np.float32) if res else None
    model = single_op.binary_conv_model(weight, scale, bias, [n, c, h, w], stride, pads, dilation,
                                        row_scale, col_scale, residual=res)
    feeds = {'X': x}
    if res:
        feeds['residual'] = residual
    expected = binary_conv2d_reference(x, weight, scale, bias, stride, pads, dilation, row_scale,
                                       col_scale, residual).numpy()
    return model, feeds, expected


conv_cases = st.fixed_dictionaries(dict(
    n=st.integers(1, 3),
    c=st.sampled_from([1, 3, 31, 32, 33, 63, 64, 65, 96, 130]),
    o=st.sampled_from([1, 5, 8, 13, 16, 24]),
    h=st.integers(1, 13), w=st.integers(1, 13),
    kernel=st.sampled_from([(1, 1), (3, 3), (3, 3), (1, 3), (5, 2)]),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    pads=st.tuples(*[st.integers(0, 6)] * 4),
    row=st.booleans(), col=st.booleans(), res=st.booleans(),
    seed=st.integers(0, 2**32 - 1)))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_cases)
def test_kernel_matches_reference(variant, case):
    kh, kw = case['kernel']
    for size, k, s, p0, p1, d in ((case['h'], kh, case['stride'][0], case['pads'][0],
                                   case['pads'][2], case['dilation'][0]),
                                  (case['w'], kw, case['stride'][1], case['pads'][1],
                                   case['pads'][3], case['dilation'][1])):
        assume(op_spec.conv_output_size(size, k, s, p0, p1, d) > 0)
    rng = np.random.default_rng(case['seed'])
    model, feeds, expected = random_case(
        rng, case['n'], case['c'], case['h'], case['w'], case['o'], kh, kw, case['stride'],
        case['pads'], case['dilation'], case['row'], case['col'], case['res'])
    one = run_op(model, feeds, variant, threads=1)
    two = run_op(model, feeds, variant, threads=2)
    np.testing.assert_allclose(one, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(one, two)  # the split over threads never changes a result


@pytest.mark.parametrize('shape', [
    # n, c, h, w, o, kh, kw, stride, pads, dilation
    (1, 64, 20, 20, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (2, 130, 17, 9, 40, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (1, 256, 12, 12, 24, 3, 3, (1, 1), (4, 4, 4, 4), (4, 4)),
    (1, 3, 15, 15, 8, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1)),
    (1, 64, 12, 11, 8, 9, 9, (1, 1), (4, 4, 4, 4), (1, 1)),  # > 64 taps: generic im2col path
])
def test_all_variants_agree_bitwise(shape):
    """Variants differ only in the popcount loop: their outputs must be bit-identical."""
    n, c, h, w, o, kh, kw, stride, pads, dilation = shape
    model, feeds, expected = random_case(np.random.default_rng(0), n, c, h, w, o, kh, kw, stride,
                                         pads, dilation, True, True, True)
    outputs = {v: run_op(model, feeds, v, 2) for v in library.supported_kernels()}
    for v, y in outputs.items():
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-5, err_msg=v)
        np.testing.assert_array_equal(y, outputs['portable'], err_msg=v)


def _kernel_for_layer(stride, dilation):
    """The library's automatic choice for a 3x3 128->128 node (ctypes hook)."""
    import ctypes
    fn = ctypes.CDLL(library.library_path()).BnnTasksSelectedKernelForLayer
    fn.restype = ctypes.c_char_p
    fn.argtypes = [ctypes.c_int64] * 7
    with library.forced_kernel('auto'):
        return fn(128, 128, 9, *stride, *dilation).decode()


def test_automatic_choice_is_per_layer():
    """On an AMX CPU: amx for stride 1 / dilation <= 2, avx512 otherwise (docs/kernels.md)."""
    supported = library.supported_kernels()
    if 'amx' not in supported:
        pytest.skip('this CPU cannot run the amx kernel: no per-layer choice to make')
    assert _kernel_for_layer((1, 1), (1, 1)) == 'amx'
    assert _kernel_for_layer((1, 1), (2, 2)) == 'amx'
    assert _kernel_for_layer((2, 2), (1, 1)) == 'avx512'
    assert _kernel_for_layer((1, 2), (1, 1)) == 'avx512'
    assert _kernel_for_layer((1, 1), (4, 1)) == 'avx512'


@pytest.mark.parametrize('stride, dilation', [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (4, 4))])
def test_automatic_choice_matches_reference(stride, dilation):
    """Unforced, each node runs the variant chosen for its shape, with the same results."""
    model, feeds, expected = random_case(np.random.default_rng(4), 2, 70, 13, 12, 40, 3, 3,
                                         stride, dilation * 2, dilation, True, True, True)
    y = run_op(model, feeds, 'auto', 2)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(y, run_op(model, feeds, 'portable', 1))


def test_exact_dot_products_and_special_values(variant):
    """Unit scale and zero bias expose the raw dot: integers, with 0/-0 -> +1 and NaN -> -1."""
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((16, 70, 3, 3)).astype(np.float32)
    x = rng.standard_normal((2, 70, 9, 8)).astype(np.float32)
    x[0, :, 0, 0] = 0.0
    x[0, :, 1, 1] = -0.0
    x[1, :, 2, 2] = np.nan
    x[1, :5, 3, 3] = [np.inf, -np.inf, 1e-30, -1e-30, 3.0]
    ones, zeros = np.ones(16, np.float32), np.zeros(16, np.float32)
    model = single_op.binary_conv_model(weight, ones, zeros, list(x.shape), (1, 1), (2, 1, 0, 3),
                                        (2, 1))
    y = run_op(model, {'X': x}, variant, 1)
    expected = binary_conv2d_reference(x, weight, ones, zeros, 1, (2, 1, 0, 3), (2, 1)).numpy()
    np.testing.assert_array_equal(y, expected)
    assert np.array_equal(y, np.round(y))


def test_padding_is_zero_not_plus_or_minus_one(variant):
    """All +1 input and weights: a pixel's output counts only its in-image taps."""
    weight = np.ones((1, 5, 3, 3), np.float32)
    x = np.ones((1, 5, 4, 4), np.float32)
    model = single_op.binary_conv_model(weight, np.ones(1, np.float32), np.zeros(1, np.float32),
                                        [1, 5, 4, 4], (1, 1), (1, 1, 1, 1), (1, 1))
    y = run_op(model, {'X': x}, variant, 1)[0, 0]
    assert y[0, 0] == 4 * 5 and y[0, 1] == 6 * 5 and y[1, 1] == 9 * 5
    # A pixel that sees only padding outputs bias alone.
    model = single_op.binary_conv_model(weight[:, :, :1, :1], np.ones(1, np.float32),
                                        np.full(1, 0.5, np.float32), [1, 5, 4, 4], (1, 1),
                                        (2, 0, 0, 0), (1, 1))
    y = run_op(model, {'X': x}, variant, 1)[0, 0]
    assert np.all(y[:2] == 0.5) and np.all(y[2:] == 5.5)


def test_empty_batch(variant):
    weight = np.ones((4, 3, 3, 3), np.float32)
    model = single_op.binary_conv_model(weight, np.ones(4, np.float32), np.zeros(4, np.float32),
                                        ['N', 3, 6, 6], (1, 1), (1, 1, 1, 1), (1, 1))
    y = run_op(model, {'X': np.zeros((0, 3, 6, 6), np.float32)}, variant, 2)
    assert y.shape == (0, 4, 6, 6)


def test_dynamic_batch_and_repeated_runs(variant):
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((8, 33, 3, 3)).astype(np.float32)
    scale, bias = np.ones(8, np.float32), np.zeros(8, np.float32)
    model = single_op.binary_conv_model(weight, scale, bias, ['N', 33, 7, 7], (1, 1),
                                        (1, 1, 1, 1), (1, 1))
    sess = library.make_session(model, threads=2, kernel=variant)
    for n in (1, 3, 2):
        x = rng.standard_normal((n, 33, 7, 7)).astype(np.float32)
        expected = binary_conv2d_reference(x, weight, scale, bias, 1, 1, 1).numpy()
        np.testing.assert_array_equal(sess.run(None, {'X': x})[0], expected)


def test_weights_fed_at_run_time_are_repacked_when_they_change(variant):
    """The kernel caches repacked weights; a non-constant weight input must not go stale."""
    rng = np.random.default_rng(3)
    c, o = 40, 8
    node = single_op.binary_conv_node(['X', 'W', 's', 'b'], 'Y', c, o, (3, 3), (1, 1),
                                      (1, 1, 1, 1), (1, 1))
    graph = helper.make_graph(
        [node], 'g',
        [helper.make_tensor_value_info('X', TensorProto.FLOAT, [1, c, 6, 6]),
         helper.make_tensor_value_info('W', TensorProto.INT32, [o, 3, 3, 2])],
        [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [1, o, 6, 6])],
        initializer=[numpy_helper.from_array(np.ones(o, np.float32), 's'),
                     numpy_helper.from_array(np.zeros(o, np.float32), 'b')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in op_spec.opset_imports()])
    model.ir_version = op_spec.IR_VERSION
    sess = library.make_session(model, threads=1, kernel=variant)
    x = rng.standard_normal((1, c, 6, 6)).astype(np.float32)
    for _ in range(2):
        weight = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
        y = sess.run(None, {'X': x, 'W': packing.pack_weights(weight)})[0]
        expected = binary_conv2d_reference(x, weight, np.ones(o), np.zeros(o), 1, 1, 1).numpy()
        np.testing.assert_array_equal(y, expected)


# ---- bad input: a clear ONNX Runtime error, never a crash ----

def _model(c=8, o=4, h=6, w=6, **kwargs):
    weight = np.ones((o, c, 3, 3), np.float32)
    kwargs.setdefault('pads', (1, 1, 1, 1))
    return single_op.binary_conv_model(weight, np.ones(o, np.float32), np.zeros(o, np.float32),
                                       [1, c, h, w], **kwargs), np.ones((1, c, h, w), np.float32)


def _error_of(model, feeds, kernel=None):
    with pytest.raises(Exception) as info:
        sess = library.make_session(model, threads=1, kernel=kernel)
        sess.run(None, feeds)
    return str(info.value)


@pytest.mark.parametrize('overrides, message', [
    (dict(in_channels=0), "'in_channels' must be in [1,"),
    (dict(out_channels=-2), "'out_channels' must be in [1,"),
    (dict(pads=(1, -1, 1, 1)), "'pads[1] (left)' must be in [0,"),
    (dict(strides=(0, 1)), "'strides[0]' must be in [1,"),
    (dict(dilations=(1, 0)), "'dilations[1]' must be in [1,"),
    (dict(kernel_shape=(0, 3)), "'kernel_shape[0]' must be in [1,"),
    (dict(kernel_shape=(3, 3, 3)), "'kernel_shape' must have 2 values, got 3"),
    (dict(pads=(1, 1)), "'pads' must have 4 values, got 2"),
    (dict(weight_layout='OIHW32'), "unknown weight_layout 'OIHW32'"),
])
def test_bad_attributes_are_rejected(overrides, message):
    model, x = _model()
    node = model.graph.node[0]
    for attr in node.attribute:
        if attr.name in overrides:
            value = overrides[attr.name]
            new = helper.make_attribute(attr.name, value)
            attr.CopyFrom(new)
    text = _error_of(model, {'X': x})
    assert 'bnn_tasks::BinaryConv2d' in text and message in text, text


def test_wrong_packed_weight_size():
    weight = np.ones((4, 40, 3, 3), np.float32)
    packed = packing.pack_weights(weight)[:, :, :, :1]  # one word per tap instead of two
    model = single_op.binary_conv_model(weight, np.ones(4, np.float32), np.zeros(4, np.float32),
                                        [1, 40, 6, 6], pads=(1, 1, 1, 1), packed_weights=packed)
    text = _error_of(model, {'X': np.ones((1, 40, 6, 6), np.float32)})
    assert "'W_packed' must have shape [4, 3, 3, 2]" in text and 'got [4, 3, 3, 1]' in text, text


def test_channel_mismatch_and_wrong_rank():
    model, _ = _model(c=8)
    # Relax the graph's declared input shape so ONNX Runtime lets the bad tensors through.
    model.graph.input[0].type.tensor_type.ClearField('shape')
    text = _error_of(model, {'X': np.ones((1, 9, 6, 6), np.float32)})
    assert "has 9 channels but attribute in_channels is 8" in text, text
    text = _error_of(model, {'X': np.ones((8, 6, 6), np.float32)})
    assert "'X' must be 4-D" in text, text


def test_wrong_optional_input_shapes():
    weight = np.ones((4, 8, 3, 3), np.float32)
    ones = np.ones(4, np.float32)
    for kwargs, message in [
            (dict(row_scale=np.ones(5, np.float32)), "'row_scale' must have shape [6]"),
            (dict(col_scale=np.ones((6, 1), np.float32)), "'col_scale' must have shape [6]")]:
        model = single_op.binary_conv_model(weight, ones, ones, [1, 8, 6, 6], pads=(1, 1, 1, 1),
                                            **kwargs)
        text = _error_of(model, {'X': np.ones((1, 8, 6, 6), np.float32)})
        assert message in text, text
    model = single_op.binary_conv_model(weight, ones, ones, [1, 8, 6, 6], pads=(1, 1, 1, 1),
                                        residual=True)
    model.graph.input[1].type.tensor_type.ClearField('shape')
    text = _error_of(model, {'X': np.ones((1, 8, 6, 6), np.float32),
                             'residual': np.ones((1, 4, 6, 5), np.float32)})
    assert "'residual' must have shape [1, 4, 6, 6]" in text, text
    model = single_op.binary_conv_model(weight, np.ones(3, np.float32), ones, [1, 8, 6, 6],
                                        pads=(1, 1, 1, 1))
    assert "'post_scale' must have shape [4]" in _error_of(model, {'X': np.ones((1, 8, 6, 6),
                                                                                np.float32)})


def test_empty_output_is_an_error():
    model, x = _model(h=2, w=2, pads=(0, 0, 0, 0))
    text = _error_of(model, {'X': x})
    assert 'empty output' in text and 'output size 0x0' in text, text


def test_unknown_forced_variant(monkeypatch):
    model, _ = _model()
    monkeypatch.setenv(library.KERNEL_ENV, 'sse9')
    with pytest.raises(Exception) as info:
        ort.InferenceSession(model.SerializeToString(), library.session_options(1))
    assert 'BNN_TASKS_KERNEL must be one of' in str(info.value)
    with pytest.raises(RuntimeError, match='must be one of'):
        library.selected_kernel()
    with pytest.raises(ValueError, match='unknown kernel variant'):
        library.make_session(model, kernel='sse9')


def test_model_without_the_library_gives_a_clear_error():
    model, x = _model()
    so = ort.SessionOptions()
    with pytest.raises(Exception) as info:
        ort.InferenceSession(model.SerializeToString(), so)
    assert 'BinaryConv2d' in str(info.value) and 'bnn_tasks' in str(info.value)


def test_library_path_error_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(library.LIBRARY_ENV, str(tmp_path / 'missing.so'))
    with pytest.raises(library.LibraryNotBuiltError, match='tools/install.sh'):
        library.library_path()


def test_session_options_threads():
    so = library.session_options(2)
    assert so.intra_op_num_threads == 2
    with pytest.raises(ValueError):
        library.session_options(0)
