"""`python -m pivox.server`: the same as `pivox serve`."""

from pivox.server.command import main

raise SystemExit(main())
