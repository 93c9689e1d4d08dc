"""Install bnn_tasks.

The folder ``deploy/`` is installed as the subpackage ``bnn_tasks.deploy`` so the repository
keeps its top-level layout while imports stay namespaced. Installing also builds the native
ONNX Runtime custom-op library (see ``deploy/csrc``).
"""
import importlib.util
import os
import shutil

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

# The custom-op library is a plain shared library (not a Python extension) that ONNX Runtime
# loads; it is declared as an extension only so that setuptools' build_ext runs, in editable
# installs too. deploy/csrc/build.py does the actual compile (see its docstring).
NATIVE_EXT = 'bnn_tasks.deploy.libbnn_tasks_ort'
NATIVE_LIB = 'libbnn_tasks_ort.so'


def load_native_builder():
    spec = importlib.util.spec_from_file_location(
        'bnn_tasks_native_build', os.path.join(HERE, 'deploy', 'csrc', 'build.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildNative(build_ext):
    """Builds the ONNX Runtime custom-op library into ``deploy/`` (skipped when up to date)."""

    def get_ext_filename(self, fullname):
        # A plain library name, not the CPython extension suffix; distutils asks with either
        # the dotted name or just its last component.
        if fullname == NATIVE_EXT:
            return os.path.join('bnn_tasks', 'deploy', NATIVE_LIB)
        if fullname == NATIVE_EXT.rsplit('.', 1)[1]:
            return NATIVE_LIB
        return super().get_ext_filename(fullname)

    def build_extension(self, ext):
        if ext.name != NATIVE_EXT:
            return super().build_extension(ext)
        builder = load_native_builder()
        in_tree = os.path.join(HERE, 'deploy', NATIVE_LIB)
        try:
            builder.build_library(in_tree, os.path.join(HERE, 'build', 'native'))
        except builder.BuildError as e:
            raise SystemExit(f'error: building the bnn_tasks ONNX Runtime library failed: {e}')
        dest = self.get_ext_fullpath(ext.name)
        if os.path.abspath(dest) != os.path.abspath(in_tree):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(in_tree, dest)

    def copy_extensions_to_source(self):
        # The library is already in the source tree (written atomically); copying it back would
        # truncate a file that running sessions may have mapped.
        extensions = self.extensions
        self.extensions = [e for e in extensions if e.name != NATIVE_EXT]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = extensions


def read_version():
    scope = {}
    with open(os.path.join(HERE, 'bnn_tasks', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='bnn_tasks',
    version=read_version(),
    description='1-bit CNN backbones for OpenMMLab detection and segmentation, '
                'with a bit-packed ONNX Runtime deployment path',
    long_description=open(os.path.join(HERE, 'README.md')).read()
    if os.path.exists(os.path.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['bnn_tasks', 'bnn_tasks.*']) + ['bnn_tasks.deploy'],
    package_dir={'bnn_tasks.deploy': 'deploy'},
    ext_modules=[Extension(NATIVE_EXT, sources=[])],
    cmdclass={'build_ext': BuildNative},
    # mmcv with compiled ops is not on PyPI as a wheel; tools/install.sh builds and caches it.
    install_requires=read_requirements('runtime.txt'),
    # bench: the engines tools/benchmark.py --detector compares against (optional)
    extras_require={'tests': read_requirements('tests.txt'), 'bench': ['openvino==2026.4.1']},
    license='Apache-2.0',
)
