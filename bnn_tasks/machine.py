"""What machine a measurement was made on (recorded with every result and benchmark)."""
import os
import platform


def _cpuinfo(field: str):
    """The value of the first CPU's ``field`` in ``/proc/cpuinfo``; None where there is none."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(field):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor``."""
    return _cpuinfo('model name') or platform.processor() or 'unknown CPU'


def cpu_flags() -> frozenset:
    """The first CPU's feature flags in ``/proc/cpuinfo`` (empty where there are none)."""
    return frozenset((_cpuinfo('flags') or '').split())


# bfloat16 dot-product instructions oneDNN's bf16 convolutions and matmuls run on; without them
# torch emulates bf16 and a bf16 step is slower than a float32 one
NATIVE_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


def has_native_bf16(flags=None) -> bool:
    """Whether this CPU computes bfloat16 dot products in hardware (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


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
