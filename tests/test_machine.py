"""What a result records about the machine it was measured on."""
import os

from bnn_tasks.machine import (amd_core_generation, machine_description, recorded_generation,
                               simd_description)

ZEN4 = frozenset({'avx2', 'avx512f', 'avx512_bf16', 'avx512_vpopcntdq'})
ZEN3 = frozenset({'avx2'})
SAPPHIRE_RAPIDS = ZEN4 | {'amx_tile', 'amx_bf16', 'amx_int8'}


def test_amd_generation_tells_zen3_zen4_zen5_apart():
    # Zen 3 and Zen 4 share family 25: AVX-512 is what separates them
    assert amd_core_generation(25, ZEN3) == 'Zen 3'
    assert amd_core_generation(25, ZEN4) == 'Zen 4'
    assert amd_core_generation(26, ZEN4) == 'Zen 5'
    assert amd_core_generation(None, ZEN4) == ''


def test_simd_description_names_the_widest_extensions():
    assert simd_description(ZEN3) == 'AVX2'
    assert simd_description(ZEN4) == 'AVX-512 BF16 VPOPCNTDQ'
    assert simd_description(SAPPHIRE_RAPIDS) == 'AVX-512 BF16 VPOPCNTDQ, AMX'
    assert simd_description(frozenset()) == 'no AVX2'


def test_machine_description_of_this_machine_has_its_cores():
    description = machine_description()
    assert description.endswith(f'{os.cpu_count()} cores)')


def test_recorded_generation_reads_what_machine_description_wrote():
    assert recorded_generation('AMD EPYC (Zen 5; AVX-512 BF16 VPOPCNTDQ; 2 cores)') == 'Zen 5'
    assert recorded_generation('AMD EPYC (Zen / Zen 2; AVX2; 2 cores)') == 'Zen / Zen 2'
    assert recorded_generation('AMD EPYC (2 cores)') == ''  # recorded before it named one
    assert recorded_generation('Intel(R) Xeon(R) (AVX-512 BF16 VPOPCNTDQ, AMX; 2 cores)') == ''
    assert recorded_generation(machine_description()) in ('', 'Zen 3', 'Zen 4', 'Zen 5',
                                                          'Zen / Zen 2')
