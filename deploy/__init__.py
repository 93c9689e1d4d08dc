"""bnn_tasks.deploy: ONNX export of 1-bit models and their ONNX Runtime execution.

Installed from the repository folder ``deploy/`` (see ``setup.py``). Submodules:

* ``export`` / ``export_layers`` / ``export_wrappers`` / ``postprocess`` / ``roi_extraction`` /
  ``graph_fusion`` / ``onnx_ops``: PyTorch -> ONNX with ``bnn_tasks::BinaryConv2d`` (and, in
  bit-packed two-stage detectors, ``bnn_tasks::MultiLevelRoiAlign``) custom nodes;
* ``runtime``: ONNX Runtime sessions with the kernel library and ``run_onnx_test``;
* ``packing``, ``reference``, ``library``: bit packing, float reference and the native kernel
  library (the op contract is ``deploy/OP_CONTRACT.md``).

Nothing heavy is imported here, so ``import bnn_tasks.deploy.packing`` stays cheap.
"""
