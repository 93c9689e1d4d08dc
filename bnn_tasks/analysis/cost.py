"""The binary-network field's cost numbers, shared by the PyTorch and the ONNX counters.

Conventions (Bi-Real Net, ECCV 2018, and the survey tables that follow it):

* FLOPs are the multiply-accumulates (MACs) of full-precision convolutions and linear layers;
* BOPs are the MACs of binary convolutions (both operands +-1: one XNOR and one popcount step);
* OPs = BOPs / 64 + FLOPs (a 64-bit CPU word does 64 binary MACs at once);
* storage: 1 bit per binary weight, 32 bits per float parameter.

Normalisation, activations, pooling, additions and the per-channel scales of binary convs
are not counted, as in those tables (they are a few per output element, against hundreds of
MACs). Counts are for one image (batch 1).
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional

BITS_PER_BINARY_WEIGHT = 1
BITS_PER_FLOAT_PARAM = 32
BINARY_OPS_PER_WORD = 64
MB = 1e6  # storage is reported in MB (10^6 bytes); bytes are in the JSON too


@dataclass
class Cost:
    """MACs and parameters of one module (or of a group of modules, or a whole model)."""
    float_macs: int = 0
    binary_macs: int = 0
    float_params: int = 0
    binary_params: int = 0

    @property
    def flops(self) -> int:
        return self.float_macs

    @property
    def bops(self) -> int:
        return self.binary_macs

    @property
    def ops(self) -> float:
        return self.binary_macs / BINARY_OPS_PER_WORD + self.float_macs

    @property
    def storage_bytes(self) -> float:
        bits = (self.binary_params * BITS_PER_BINARY_WEIGHT
                + self.float_params * BITS_PER_FLOAT_PARAM)
        return bits / 8

    @property
    def storage_mb(self) -> float:
        return self.storage_bytes / MB

    def add(self, other: 'Cost') -> 'Cost':
        self.float_macs += other.float_macs
        self.binary_macs += other.binary_macs
        self.float_params += other.float_params
        self.binary_params += other.binary_params
        return self

    def is_zero(self) -> bool:
        return not (self.float_macs or self.binary_macs or self.float_params
                    or self.binary_params)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(flops=self.flops, bops=self.bops, ops=self.ops,
                   params=self.float_params + self.binary_params,
                   storage_bytes=self.storage_bytes, storage_mb=self.storage_mb)
        return out


@dataclass
class ModuleCost:
    """One row of a report: a module (or an ONNX node) and what it costs."""
    name: str
    kind: str  # module class name or ONNX op type
    cost: Cost = field(default_factory=Cost)
    calls: int = 0
    input_shape: Optional[List[int]] = None

    def to_dict(self) -> dict:
        return dict(name=self.name, kind=self.kind, calls=self.calls,
                    input_shape=self.input_shape, **self.cost.to_dict())


@dataclass
class CostReport:
    """Per-module rows and their total, plus what could not be counted."""
    rows: List[ModuleCost]
    input_shape: List[int]
    source: str = ''
    # modules/nodes that hold weights or do MACs but have no counting rule (named, not hidden)
    uncounted: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    separator: str = '.'  # of the names' components: '.' for modules, '/' for ONNX scopes

    @property
    def total(self) -> Cost:
        total = Cost()
        for row in self.rows:
            total.add(row.cost)
        return total

    def grouped(self, depth: Optional[int]) -> List[ModuleCost]:
        """Rows summed by the first ``depth`` components of their dotted names (None: as is)."""
        if depth is None or depth <= 0:
            return list(self.rows)
        groups: Dict[str, ModuleCost] = {}
        for row in self.rows:
            sep = self.separator
            key = sep.join(row.name.split(sep)[:depth]) or '(model)'
            group = groups.setdefault(key, ModuleCost(key, row.kind))
            if group.kind != row.kind:
                group.kind = '(group)'
            group.cost.add(row.cost)
            group.calls += row.calls
        return list(groups.values())

    def to_dict(self, depth: Optional[int] = None) -> dict:
        out = dict(source=self.source, input_shape=self.input_shape,
                   total=self.total.to_dict(),
                   modules=[row.to_dict() for row in self.rows],
                   uncounted=list(self.uncounted), notes=list(self.notes),
                   conventions=dict(ops='BOPs / 64 + FLOPs', flops='float MACs',
                                    bops='binary MACs', storage='1 bit per binary weight, '
                                    '32 bits per float parameter, MB = 1e6 bytes'))
        if depth:
            out['groups'] = [row.to_dict() for row in self.grouped(depth)]
            out['group_depth'] = depth
        return out


def human(value: float) -> str:
    """``1.63e8``-style numbers, as the papers print them (exact values are in the JSON)."""
    if value == 0:
        return '0'
    return f'{value:.3g}' if abs(value) < 1000 else f'{value:.3e}'.replace('e+0', 'e').replace(
        'e+', 'e')


TABLE_COLUMNS = ('module', 'type', 'FLOPs', 'BOPs', 'OPs', 'float params', 'binary params',
                 'size MB')


def format_table(rows: Iterable[ModuleCost], total: Optional[Cost] = None) -> str:
    """A plain-text table (one line per row, then the total)."""
    lines = []
    body = [(r.name, r.kind, r.cost) for r in rows]
    if total is not None:
        body.append(('total', '', total))
    cells = [TABLE_COLUMNS] + [
        (name, kind, human(c.float_macs), human(c.binary_macs), human(c.ops),
         human(c.float_params), human(c.binary_params), f'{c.storage_mb:.3f}')
        for name, kind, c in body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(TABLE_COLUMNS))]
    for i, row in enumerate(cells):
        left = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        right = [cell.rjust(w) for cell, w in zip(row[2:], widths[2:])]
        lines.append('  '.join(left + right).rstrip())
        if i == 0 or (total is not None and i == len(cells) - 2):
            lines.append('-' * len(lines[0]))
    return '\n'.join(lines)
