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


def _int_field(field: str):
    value = _cpuinfo(field)
    return int(value) if value is not None and value.isdigit() else None


def amd_core_generation(family, flags) -> str:
    """The Zen generation of an AMD CPU from its family and flags ('' where unknown).

    Cloud instances often report only ``AMD EPYC`` as the model name, and the generations
    differ a lot where this project's speed lives: Zen 4 runs AVX-512 (and bfloat16) on 256-bit
    units, Zen 5 on 512-bit ones (measured: a bfloat16 Bi-Real-18 FCN training step 0.43 s
    against 0.64 s, at the same float32 matmul rate), Zen 3 has no AVX-512 at all.
    """
    if family == 26:
        return 'Zen 5'
    if family == 25:  # Zen 3 and Zen 4 share it; only Zen 4 has AVX-512
        return 'Zen 4' if 'avx512f' in flags else 'Zen 3'
    if family == 23:
        return 'Zen / Zen 2'
    return ''


def simd_description(flags) -> str:
    """The widest vector and matrix extensions in ``flags``: 'AVX-512 BF16 VPOPCNTDQ, AMX', ..."""
    if 'avx512f' in flags:
        extras = [name for flag, name in (('avx512_bf16', 'BF16'),
                                          ('avx512_vpopcntdq', 'VPOPCNTDQ')) if flag in flags]
        vector = ' '.join(['AVX-512'] + extras)
    elif 'avx2' in flags:
        vector = 'AVX2'
    else:
        vector = 'no AVX2'
    return f'{vector}, AMX' if 'amx_tile' in flags else vector


def recorded_generation(description: str) -> str:
    """The core generation a ``machine_description()`` names ('' where it names none, as in
    descriptions recorded before it did)."""
    details = description.rpartition(' (')[2].rstrip(')').split('; ')
    return details[0] if details[0].startswith('Zen') else ''


def machine_description() -> str:
    """The CPU with what tells instances of one machine kind apart: name, generation (where the
    name does not say it), vector extensions and core count, e.g.
    ``AMD EPYC (Zen 5; AVX-512 BF16 VPOPCNTDQ; 2 cores)``."""
    flags = cpu_flags()
    name = cpu_name()
    generation = amd_core_generation(_int_field('cpu family'), flags) if 'AMD' in name else ''
    details = [part for part in (generation, simd_description(flags), f'{os.cpu_count()} cores')
               if part]
    return f'{name} ({"; ".join(details)})'


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
