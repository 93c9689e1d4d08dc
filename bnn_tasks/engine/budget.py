"""How many iterations fit in a wall-clock budget: the one rule every budgeted run uses
(the time-budget hook's re-fit, backbone pretraining)."""

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
