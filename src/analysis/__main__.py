"""Allow ``python -m analysis`` as a synonym of the ``study`` command."""

from analysis.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
