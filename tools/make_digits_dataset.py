#!/usr/bin/env python
"""Generate the built-in digits dataset (no download needed).

    python tools/make_digits_dataset.py --out data/digits --num-train 2000 --num-val 300 \
        --size 256 --seed 0

See docs/datasets.md for the layout and bnn_tasks/datasets/digits.py for how it is drawn.
"""
import argparse
import sys
import time

from bnn_tasks.datasets.digits import DigitsSpec, make_digits_dataset


def parse_args(argv=None):
    d = DigitsSpec()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/digits', help='output folder')
    p.add_argument('--num-train', type=int, default=d.num_train)
    p.add_argument('--num-val', type=int, default=d.num_val)
    p.add_argument('--size', type=int, default=d.size, help='square canvas side in pixels')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--min-digit', type=int, default=None,
                   help='smallest digit height (default: size/16)')
    p.add_argument('--max-digit', type=int, default=None,
                   help='largest digit height (default: size*5/16)')
    p.add_argument('--min-per-image', type=int, default=d.min_per_image)
    p.add_argument('--max-per-image', type=int, default=d.max_per_image)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # digit sizes scale with the canvas so small test canvases keep the same 5x range
    min_digit = args.min_digit or max(6, args.size // 16)
    max_digit = args.max_digit or max(min_digit, args.size * 5 // 16)
    spec = DigitsSpec(num_train=args.num_train, num_val=args.num_val, size=args.size,
                      seed=args.seed, min_digit=min_digit, max_digit=max_digit,
                      min_per_image=args.min_per_image, max_per_image=args.max_per_image)
    try:
        spec.validate()
    except ValueError as e:
        print(f'make_digits_dataset: {e}', file=sys.stderr)
        return 2
    t0 = time.time()
    summary = make_digits_dataset(args.out, spec, verbose=True)
    print(f'wrote {args.out}: {spec.num_train} train / {spec.num_val} val images, '
          f'{summary["num_objects"]} digits, in {time.time() - t0:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
