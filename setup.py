"""Install bnn_tasks.

The folder ``deploy/`` is installed as the subpackage ``bnn_tasks.deploy`` so the repository
keeps its top-level layout while imports stay namespaced. Installing also builds the native
ONNX Runtime custom-op library (see ``deploy/csrc``).
"""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


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
    # mmcv with compiled ops is not on PyPI as a wheel; tools/install.sh builds and caches it.
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
