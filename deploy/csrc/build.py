"""Build the native ONNX Runtime custom-op library ``libbnn_tasks_ort.so``.

Used by ``setup.py`` (so ``pip install -e .`` builds it with no manual step) and by
``tools/run_sanitizers.sh`` (``python deploy/csrc/build.py --sanitize --out DIR/lib.so``).

ONNX Runtime's C API header is not shipped in the onnxruntime wheel. We take Microsoft's
official headers (ORT API version 29, MIT licensed) from the npm package
``com.github.asus4.onnxruntime@0.4.9``, pinned by the tarball's sha1, cached under
``$BNN_TASKS_CACHE/ort-headers`` (default ``~/.cache/bnn_tasks``) so rebuilds do not download
again. ``ORT_INCLUDE_DIR`` points the build at other headers instead.

The library is not linked against onnxruntime: the runtime passes its API table to
``RegisterCustomOps``. Each SIMD kernel is its own translation unit with its own ISA flags;
the variant is chosen at run time from the CPU's features (and, for amx, the OS's tile
permission).
"""
import argparse
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile

CSRC = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = 'libbnn_tasks_ort.so'

NPM_PACKAGE = 'com.github.asus4.onnxruntime@0.4.9'
NPM_TARBALL = 'com.github.asus4.onnxruntime-0.4.9.tgz'
NPM_SHA1 = '3659f34012db8208ffb7f67d704204cb08792fed'
HEADERS_IN_TARBALL = ('package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/'
                      'onnxruntime.framework/Headers/')

COMMON_FLAGS = ['-std=c++17', '-O3', '-fPIC', '-fvisibility=hidden', '-fvisibility-inlines-hidden',
                # identical float results across variants: no FMA contraction anywhere
                '-ffp-contract=off', '-Wall', '-Wextra']
# (source, extra flags); the SIMD sources only on x86-64.
SOURCES = [('custom_op.cc', []), ('ort_glue.cc', []), ('binary_conv.cc', []), ('dispatch.cc', []),
           ('int8_tile_weights.cc', []), ('kernel_portable.cc', []), ('roi_align.cc', []),
           ('roi_align_op.cc', [])]
X86_SOURCES = [('kernel_avx2.cc', ['-mavx2', '-mpopcnt']),
               ('kernel_avx512.cc', ['-mavx512f', '-mavx512bw', '-mavx512vl',
                                     '-mavx512vpopcntdq', '-mpopcnt'])]
# The int8 tile variant: AMX for the GEMM, AVX-512BW + BMI2 for its sign packing/epilogue.
# Only built if the compiler knows the AMX flags (GCC >= 11, Clang >= 12).
AMX_SOURCES = [('kernel_amx.cc', ['-mamx-tile', '-mamx-int8', '-mavx512f', '-mavx512bw',
                                  '-mavx512vl', '-mbmi2'])]
# Sanitizer builds also check every tile load/store's bounds (ASan does not see them).
SANITIZE_FLAGS = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-g', '-O1',
                  '-DBNN_TASKS_CHECK_TILE_BOUNDS=1']


class BuildError(RuntimeError):
    """The native library could not be built (the message says why and what to do)."""


def cache_dir() -> str:
    return os.path.join(os.environ.get('BNN_TASKS_CACHE', os.path.expanduser('~/.cache/bnn_tasks')),
                        'ort-headers')


def _sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def ort_include_dir(log=print) -> str:
    """Directory holding ``onnxruntime_c_api.h``: ``$ORT_INCLUDE_DIR`` or the cached npm headers."""
    override = os.environ.get('ORT_INCLUDE_DIR')
    if override:
        if not os.path.isfile(os.path.join(override, 'onnxruntime_c_api.h')):
            raise BuildError(f'ORT_INCLUDE_DIR={override} does not contain onnxruntime_c_api.h')
        return override
    root = cache_dir()
    include = os.path.join(root, 'onnxruntime-api29-headers')
    if os.path.isfile(os.path.join(include, 'onnxruntime_c_api.h')):
        return include
    os.makedirs(root, exist_ok=True)
    tarball = os.path.join(root, NPM_TARBALL)
    if not os.path.isfile(tarball) or _sha1(tarball) != NPM_SHA1:
        npm = shutil.which('npm')
        if npm is None:
            raise BuildError(
                'npm is needed once to fetch the ONNX Runtime C API headers '
                f'({NPM_PACKAGE}); install Node.js/npm, or set ORT_INCLUDE_DIR to a directory '
                'with onnxruntime_c_api.h (ORT API version >= 17)')
        log(f'[bnn_tasks build] fetching ONNX Runtime headers: npm pack {NPM_PACKAGE}')
        result = subprocess.run([npm, 'pack', NPM_PACKAGE, '--silent'], cwd=root,
                                capture_output=True, text=True)
        if result.returncode != 0 or not os.path.isfile(tarball):
            raise BuildError(f'`npm pack {NPM_PACKAGE}` failed in {root}:\n{result.stderr.strip()}\n'
                             'Check network access to the npm registry, or set ORT_INCLUDE_DIR.')
    actual = _sha1(tarball)
    if actual != NPM_SHA1:
        os.remove(tarball)
        raise BuildError(f'{NPM_TARBALL} has sha1 {actual}, expected {NPM_SHA1}; the download was '
                         'removed (corrupt or tampered). Retry, or set ORT_INCLUDE_DIR.')
    staging = tempfile.mkdtemp(dir=root)
    try:
        with tarfile.open(tarball, 'r:gz') as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(HEADERS_IN_TARBALL) and m.isfile()]
            if not members:
                raise BuildError(f'{NPM_TARBALL} has no {HEADERS_IN_TARBALL}')
            for m in members:
                target = os.path.join(staging, os.path.basename(m.name))
                with tar.extractfile(m) as src, open(target, 'wb') as dst:
                    shutil.copyfileobj(src, dst)
        os.replace(staging, include)  # atomic: a half-extracted cache is never used
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return include


def _compiler_accepts(cxx, flags) -> bool:
    """Whether ``cxx`` compiles an empty C++ file with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'probe.cc')
        with open(src, 'w') as f:
            f.write('int main() { return 0; }\n')
        result = subprocess.run([cxx, *flags, '-c', src, '-o', os.path.join(tmp, 'probe.o')],
                                capture_output=True, text=True)
        return result.returncode == 0


def _sources(cxx='c++'):
    sources = list(SOURCES)
    if platform.machine().lower() in ('x86_64', 'amd64'):
        sources += X86_SOURCES
        if _compiler_accepts(cxx, AMX_SOURCES[0][1]):
            sources += AMX_SOURCES
    return sources


def _fingerprint(cxx, flags, sources, include) -> str:
    digest = hashlib.sha1(' '.join([cxx] + flags).encode())
    names = sorted(f for f in os.listdir(CSRC) if f.endswith(('.cc', '.h', '.map')))
    for name in names:
        with open(os.path.join(CSRC, name), 'rb') as f:
            digest.update(name.encode() + f.read())
    with open(os.path.join(include, 'onnxruntime_c_api.h'), 'rb') as f:
        digest.update(f.read())
    digest.update(repr(sources).encode())
    return digest.hexdigest()


def build_library(output: str, build_dir: str, sanitize: bool = False, log=print) -> str:
    """Compile and link the library to ``output``; skipped if sources and flags are unchanged."""
    cxx = os.environ.get('CXX', 'c++')
    if shutil.which(cxx) is None:
        raise BuildError(f'C++ compiler {cxx!r} not found (set CXX); a C++17 compiler is required')
    include = ort_include_dir(log)
    flags = COMMON_FLAGS + (SANITIZE_FLAGS if sanitize else [])
    flags += shlex.split(os.environ.get('BNN_TASKS_CXXFLAGS', ''))
    sources = _sources(cxx)
    if any(src == 'kernel_avx2.cc' for src, _ in sources):
        flags.append('-DBNN_TASKS_X86_KERNELS=1')
    if any(src == 'kernel_amx.cc' for src, _ in sources):
        flags.append('-DBNN_TASKS_AMX_KERNEL=1')
    stamp = output + '.buildhash'
    fingerprint = _fingerprint(cxx, flags, sources, include)
    if os.path.isfile(output) and os.path.isfile(stamp) and open(stamp).read() == fingerprint:
        log(f'[bnn_tasks build] {output} is up to date')
        return output
    os.makedirs(build_dir, exist_ok=True)
    objects = []
    for src, extra in sources:
        obj = os.path.join(build_dir, src.replace('.cc', '.o'))
        cmd = [cxx, *flags, *extra, '-I', CSRC, '-I', include, '-c', os.path.join(CSRC, src),
               '-o', obj]
        log('[bnn_tasks build] ' + ' '.join(shlex.quote(c) for c in cmd))
        _run(cmd)
        objects.append(obj)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp_out = output + '.tmp'
    link = [cxx, *flags, '-shared', '-Wl,-z,defs',
            '-Wl,--version-script=' + os.path.join(CSRC, 'exports.map'), '-o', tmp_out, *objects]
    if sanitize:
        link.remove('-Wl,-z,defs')  # the sanitizer runtimes are resolved by LD_PRELOAD
    log('[bnn_tasks build] ' + ' '.join(shlex.quote(c) for c in link))
    _run(link)
    os.replace(tmp_out, output)  # never leave a half-written library where sessions load it
    with open(stamp, 'w') as f:
        f.write(fingerprint)
    return output


def _run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f'command failed ({result.returncode}): {" ".join(cmd)}\n{result.stderr}')
    if result.stderr.strip():
        print(result.stderr, file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(CSRC), LIBRARY_NAME),
                        help='library path to write (default: deploy/libbnn_tasks_ort.so)')
    parser.add_argument('--build-dir', default=None, help='object files (default: next to --out)')
    parser.add_argument('--sanitize', action='store_true',
                        help='build with -fsanitize=address,undefined (for tools/run_sanitizers.sh)')
    args = parser.parse_args(argv)
    build_dir = args.build_dir or os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                               'obj-sanitize' if args.sanitize else 'obj')
    try:
        print(build_library(args.out, build_dir, sanitize=args.sanitize))
    except BuildError as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
