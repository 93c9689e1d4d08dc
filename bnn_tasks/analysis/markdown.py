"""Markdown tables, as the analysis tools print them."""
from typing import Iterable, Optional, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]],
                   align: Optional[Sequence[str]] = None) -> str:
    """``header`` and ``rows`` of cells (already formatted) -> a pipe table.

    ``align``: one rule cell per column (``'---'``, ``'---:'``); default left-aligned.
    """
    rules = align or ['---'] * len(header)
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(rules) + '|']
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)
