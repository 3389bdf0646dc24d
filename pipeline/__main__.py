"""``python -m pipeline``: the same CLI as the ``rfm-pipeline`` console script."""

from pipeline.cli import main

main()
