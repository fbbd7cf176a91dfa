"""`python -m pivox`: the same entry point as the `pivox` console script."""

from pivox.cli import main

raise SystemExit(main())
