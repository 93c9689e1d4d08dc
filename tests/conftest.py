"""Shared fixtures: a tiny generated digits dataset and config overrides that point at it.

``digits_overrides(config, root, size)`` returns ``--cfg-options``-style ``{key: value}`` that
retarget a digits config at a generated set under ``root`` and shrink every resize/crop to
``size`` px, so a training step takes well under a second on CPU.
"""
import os
import os.path as osp
import sys
import warnings

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PYTHON = sys.executable
TINY_SIZE = 96  # canvas side of the test dataset; digits 6..30 px
CPUS = len(os.sched_getaffinity(0))
MAX_WORKERS = 4  # a worker holds 1-3 GB; more workers than test-heavy files buy nothing
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ:
    # each pytest-xdist worker (and the tools it starts) gets its share of the cores: workers
    # that each spin all cores' OpenMP threads would fight over them. Set before torch loads.
    os.environ.setdefault('OMP_NUM_THREADS', str(
        max(1, CPUS // int(os.environ['PYTEST_XDIST_WORKER_COUNT']))))

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pytest.ini): one worker per core this process may use, at most 4."""
    return max(1, min(CPUS, MAX_WORKERS))


def pytest_configure(config):
    if 'OMP_NUM_THREADS' in os.environ:
        import torch  # in case a plugin imported it before OMP_NUM_THREADS was set
        torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


def load_tool(name: str):
    """Import ``tools/<name>.py`` (``name`` may be ``analysis_tools/get_flops``) by path under a
    private name.

    Putting ``tools/`` on ``sys.path`` would make ``import deploy``/``import test`` ambiguous
    (the repository's ``deploy/`` folder, the stdlib ``test`` package).
    """
    import importlib.util
    module_name = 'bnn_tasks_tool_' + name.replace('/', '_')
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name,
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_tool_in_process(name: str, args) -> 'subprocess.CompletedProcess':
    """``python tools/<name>.py ARGS`` run from the repository in this process, as its
    ``__main__`` runs it (``bnn_tasks.cli.run_tool``: user errors are one line and exit code 2;
    argparse errors exit 2): the exit code and what it printed.

    A tool's subprocess spends ~8 s importing torch and OpenMMLab; each tool keeps one test
    that runs it as a real subprocess.
    """
    import contextlib
    import io
    import logging
    import subprocess
    from bnn_tasks.cli import run_tool
    main = load_tool(name).main
    returned = []

    def call(argv):  # tools whose main returns their exit code
        returned.append(main(argv))
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    # Loggers made by earlier tests (mmengine's are process-wide) may hold a stream pytest has
    # closed since; their "--- Logging error ---" reports are not the tool's output.
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        os.chdir(REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_tool(call, [str(a) for a in args])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(cwd)
        logging.raiseExceptions = raise_exceptions
    if code == 0 and returned and isinstance(returned[0], int):
        code = returned[0]
    return subprocess.CompletedProcess([name] + list(args), code, out.getvalue(), err.getvalue())


def make_tiny_digits(out, num_train=6, num_val=4, size=TINY_SIZE, seed=0):
    from bnn_tasks.datasets.digits import DigitsSpec, make_digits_dataset
    spec = DigitsSpec(num_train=num_train, num_val=num_val, size=size, seed=seed,
                      min_digit=max(6, size // 16), max_digit=size * 5 // 16,
                      min_per_image=2, max_per_image=4)
    make_digits_dataset(str(out), spec)
    return str(out)


@pytest.fixture(scope='session')
def tiny_digits(tmp_path_factory):
    """A 6 train / 4 val digits set at 96 px (all formats), generated once per session."""
    return make_tiny_digits(tmp_path_factory.mktemp('digits') / 'digits')


def _walk(node, key=''):
    """Yield (dotted key, value) for every dict/list node of a config."""
    yield key, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f'{key}.{k}' if key else k)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{key}.{i}')


def digits_overrides(cfg, root: str, size: int = TINY_SIZE, batch_size: int = 2) -> dict:
    """Options that point a digits config at ``root`` and make inputs ``size`` px."""
    root = root.rstrip('/') + '/'
    opts = {}
    tree = getattr(cfg, '_cfg_dict', cfg)
    for key, node in _walk(tree):
        if not isinstance(node, dict) or not key:  # top-level variables are already merged
            continue
        for field in ('data_root', 'ann_file'):
            value = node.get(field)
            if isinstance(value, str) and value.startswith('data/digits'):
                opts[f'{key}.{field}'] = root + value[len('data/digits/'):]
        typ = node.get('type')
        if typ in ('Resize', 'RandomResize') and 'scale' in node:
            opts[f'{key}.scale'] = (size, size)
        if typ == 'RandomCrop':
            opts[f'{key}.crop_size'] = (size, size)
    for split in ('train', 'val', 'test'):
        if f'{split}_dataloader' in tree:
            opts[f'{split}_dataloader.batch_size'] = batch_size
            opts[f'{split}_dataloader.num_workers'] = 0
            opts[f'{split}_dataloader.persistent_workers'] = False
    if cfg.get('default_scope') == 'mmseg' and 'data_preprocessor' in cfg.model:
        opts['model.data_preprocessor.size'] = (size, size)
    return opts


def options_to_cli(opts: dict) -> list:
    """``{key: value}`` -> ``['key=value', ...]`` for ``--cfg-options``."""
    out = []
    for k, v in opts.items():
        if isinstance(v, tuple):
            v = '(' + ','.join(str(x) for x in v) + ')'
        out.append(f'{k}={v}')
    return out


def tool_env():
    env = dict(os.environ)
    env['PYTHONWARNINGS'] = 'ignore'
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def randomize_bn(model, seed=0):
    """Give every BatchNorm2d non-trivial statistics and affine parameters (export tests)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
