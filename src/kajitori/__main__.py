"""``python -m kajitori`` runs the command line."""

from kajitori.cli.main import main

raise SystemExit(main())
