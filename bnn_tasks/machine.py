"""What machine a measurement was made on (recorded with every result and benchmark)."""
import os
import platform


def cpu_name() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor``."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def machine_description() -> str:
    """``cpu_name()`` with the core count: ``Intel(R) Xeon(R) Processor (2 cores)``."""
    return f'{cpu_name()} ({os.cpu_count()} cores)'


def matmul_gflops(seconds: float = 2.0, size: int = 512) -> float:
    """float32 matrix-multiply throughput of this machine now, in GFLOP/s (all of torch's
    threads, median over repeats for about ``seconds``).

    Two instances of one machine kind can differ by a third in training speed (measured: the
    same Faster R-CNN step 0.97 s on one 2-vCPU AMD EPYC, 1.28 s on another), and a time-budget
    run turns that into iterations; recording this next to each run says which runs saw the
    same machine.
    """
    import time

    import torch
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    torch.mm(a, b)  # warm-up: thread pool and kernel choice
    rates, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        start = time.perf_counter()
        for _ in range(8):
            torch.mm(a, b)
        rates.append(8 * 2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    rates.sort()
    return rates[len(rates) // 2]
