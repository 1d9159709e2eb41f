"""`python -m lmbench` and the `lmbench` command: the CLI, loaded so that a Ctrl-C while it loads is one line."""

import sys


def run() -> None:
    try:
        from lmbench.cli import main
    except KeyboardInterrupt:  # Ctrl-C while torch-free start-up imports run: the usual exit, not a traceback
        print("lmbench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    run()
