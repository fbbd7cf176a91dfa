"""`python -m pivox`: the same entry point as the `pivox` console script."""

from pivox.cli.main import main

raise SystemExit(main())
