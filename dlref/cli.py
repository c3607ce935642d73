"""The ``dlref`` command: ``verify``, ``bench``, ``summary``, ``train``."""

from __future__ import annotations

import argparse
import importlib
import sys


def _verify(args: argparse.Namespace) -> int:
    from dlref import verify

    if args.transforms:
        from dlref.verify import transforms

        cases = transforms.transform_cases()
    else:
        cases = verify.all_cases()
    if args.filter:
        cases = [c for c in cases if args.filter in c.op]
        if not cases:
            print(f"dlref verify: no op matches --filter {args.filter!r}", file=sys.stderr)
            return 2
    if args.transforms:
        rows = transforms.run(
            cases, seed=args.seed, progress=not args.no_progress, dtype=args.dtype
        )
        print(transforms.format_table(rows))
        return 0 if all(r.passed for r in rows) else 1
    rows = verify.run(cases, seed=args.seed, progress=not args.no_progress, dtype=args.dtype)
    print(verify.format_table(rows))
    return 0 if all(r.passed for r in rows) else 1


# Subcommands implemented in their own modules, as ``cli_main(argv: list[str]) -> int``.
SUBCOMMANDS = {
    "bench": ("dlref.kernels.bench", "benchmark the convolution implementations"),
    "summary": ("dlref.models", "per-layer table of a built-in model"),
    "train": ("dlref.train", "train a built-in small model on digits"),
}


def _delegate(name: str):
    module_name = SUBCOMMANDS[name][0]

    def run(args: argparse.Namespace) -> int:
        # An ImportError here is a broken install, not a missing feature: let it surface.
        return importlib.import_module(module_name).cli_main(args.rest)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlref", description="Verified JAX reference ops for deep learning."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="check every op against its lax/jax.nn/optax/flax twin")
    p.add_argument("--seed", type=int, default=0, help="random seed for the inputs")
    p.add_argument("--filter", default="", help="only ops whose name contains this string")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--dtype",
        default="float64",
        choices=("float64", "float32", "bfloat16", "float16"),
        help="run every op in this dtype against the float64 reference, with the tolerance "
        "of dlref.testing.tolerance(dtype) (default float64)",
    )
    p.add_argument(
        "--transforms",
        action="store_true",
        help="the op x transformation table (jit, vmap, jvp, vjp, order 2) instead",
    )
    p.set_defaults(func=_verify)

    for name, (_, text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the subcommand")
        p.set_defaults(func=_delegate(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:  # the subcommand parses its own options, --help included
        return _delegate(argv[0])(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
