"""What one training step of a config costs, several configs round-robin in one process.

A wall-clock training budget buys ``budget / step`` iterations, so a binary config whose step
costs k float steps gets 1/k of its float twin's iterations (Group-Net's K bases). Timing the
configs one after another in separate runs compares machines as much as models (two instances
of one machine kind differ by up to a third); here every config steps on the same batch of real
training images, in turns, and each one's median step is compared.

The CPU time of the process (``time.process_time``) is what the ratios use: it is what a
step costs the cores, and it does not count time the process waited for a core that another
job held. Wall time is reported beside it.
"""
import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from .markdown import markdown_table


@dataclass
class StepCost:
    """Median cost of one training step of one config (seconds per step)."""
    name: str
    cpu_seconds: float
    wall_seconds: float
    batch_size: int
    cpu_samples: List[float] = field(default_factory=list)


def build_train_step(cfg, batch_size: int, seed: int = 0,
                     prepare_model: Optional[Callable] = None) -> Callable[[], None]:
    """``step()`` runs one ``train_step`` of ``cfg``'s model (its optimizer wrapper, its own
    first ``batch_size`` training samples, augmented with a fixed seed). ``prepare_model``:
    called on the built model first (e.g. to time it in the binarization warm-up's state)."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    from ..build import scope_registry
    from .browse import build_train_dataset
    cfg = copy.deepcopy(cfg)
    dataset = build_train_dataset(cfg)
    torch.manual_seed(seed)
    model = scope_registry(cfg, 'MODELS').build(cfg.model)
    model.train()
    if prepare_model is not None:
        prepare_model(model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if len(dataset) < batch_size:
        raise ValueError(f'the training set has {len(dataset)} samples, fewer than the batch '
                         f'of {batch_size}')
    torch.manual_seed(seed)
    batch = pseudo_collate([dataset[i] for i in range(batch_size)])

    def step() -> None:
        model.train_step(batch, optim_wrapper)
    return step


def time_round_robin(steps: Dict[str, Callable[[], None]], batch_sizes: Dict[str, int],
                     rounds: int = 3, steps_per_round: int = 2,
                     warmup: int = 1) -> List[StepCost]:
    """Median per-step CPU and wall time of every callable: ``warmup`` untimed steps each,
    then ``rounds`` turns in which each runs ``steps_per_round`` timed steps."""
    if rounds < 1 or steps_per_round < 1:
        raise ValueError(f'rounds and steps per round must be >= 1, got {rounds}, '
                         f'{steps_per_round}')
    for step in steps.values():
        for _ in range(warmup):
            step()
    cpu: Dict[str, List[float]] = {name: [] for name in steps}
    wall: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(steps_per_round):
                step()
            cpu[name].append((time.process_time() - c0) / steps_per_round)
            wall[name].append((time.perf_counter() - w0) / steps_per_round)
    return [StepCost(name, statistics.median(cpu[name]), statistics.median(wall[name]),
                     batch_sizes[name], cpu[name]) for name in steps]


def format_costs(costs: Sequence[StepCost]) -> str:
    """Markdown table; ratios are CPU seconds per step over the first row's."""
    base = costs[0].cpu_seconds
    return markdown_table(
        ['config', 'batch', 'CPU s / step', 'wall s / step', 'x first row'],
        [(c.name, c.batch_size, f'{c.cpu_seconds:.3f}', f'{c.wall_seconds:.3f}',
          f'{c.cpu_seconds / base:.2f}') for c in costs])
