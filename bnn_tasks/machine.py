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
