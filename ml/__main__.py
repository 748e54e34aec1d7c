"""`python -m ml {train,evaluate,predict,phantom} ...`: see `python -m ml -h`."""

from ml.cli import main

raise SystemExit(main())
