"""Analysis of bnn_tasks models and runs: cost counting (FLOPs, BOPs, OPs, storage),
training-step cost, training logs, dataset browsing, the model-zoo table and what binary layers'
binarizers are fed. The command-line tools live in ``tools/analysis_tools/``; the ONNX
counterpart of the cost counter is ``bnn_tasks.deploy.onnx_complexity`` (this package never
imports ``bnn_tasks.deploy``)."""
from .complexity import count_complexity, count_module
from .cost import Cost, CostReport, ModuleCost, format_table
from .model_forward import count_model

__all__ = ['Cost', 'CostReport', 'ModuleCost', 'format_table', 'count_complexity',
           'count_module', 'count_model']
