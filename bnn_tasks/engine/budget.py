"""How many iterations fit in a wall-clock budget, and when to re-fit that number: the rules
every budgeted run uses (the time-budget hook's re-fit, backbone pretraining)."""
from typing import Optional, Sequence

# Shares of the budget at which a budgeted run re-fits its schedule from the step time measured
# since the previous fit (TrainTimeBudgetHook, backbone pretraining).
REFIT_AT = (0.1, 0.5)


def iterations_for_budget(budget_s: float, elapsed_s: float, done: int, seconds_per_iter: float,
                          margin: float = 1.0) -> int:
    """Total iterations for a run that has done ``done`` in ``elapsed_s`` seconds and steps at
    ``seconds_per_iter`` from now on, to end at ``margin`` x ``budget_s`` (at least one more)."""
    if seconds_per_iter <= 0:
        raise ValueError(f'seconds_per_iter must be > 0, got {seconds_per_iter}')
    return done + max(1, int((budget_s * margin - elapsed_s) / seconds_per_iter))


class RefitTimer:
    """When a budgeted run re-fits its schedule, and the step time it fits with.

    A re-fit is due at each of ``shares`` of the budget, or of the ``planned`` iterations if
    that comes first (a guess far too short would end before), once ``min_timed_iters``
    iterations have been timed since the previous one. The step time is the mean since the
    previous fit (or since ``start``): the first steps can be several times slower than the rest.
    Times are seconds on one clock, on which the run began at ``began``.
    """

    def __init__(self, budget_s: float, shares: Sequence[float] = REFIT_AT,
                 min_timed_iters: int = 1, began: float = 0.0):
        self.budget_s = budget_s
        self.began = began
        self.pending = sorted(shares)
        self.min_timed_iters = max(1, int(min_timed_iters))
        self.mark: Optional[tuple] = None  # (time, iteration) where the current timing starts

    def start(self, now: float, done: int) -> None:
        self.mark = (now, done)

    def step_time(self, now: float, done: int) -> float:
        """Mean seconds per iteration since the mark, which then moves to ``now``."""
        step = (now - self.mark[0]) / (done - self.mark[1])
        self.mark = (now, done)
        return step

    def due_step_time(self, now: float, done: int,
                      planned: Optional[int] = None) -> Optional[float]:
        """The step time to re-fit with if a share's re-fit is due now (it is then spent),
        else ``None``."""
        if self.mark is None or not self.pending or done - self.mark[1] < self.min_timed_iters:
            return None
        share = self.pending[0]
        if now - self.began < share * self.budget_s and (planned is None or done < share * planned):
            return None
        self.pending.pop(0)
        return self.step_time(now, done)
