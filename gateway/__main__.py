"""`python -m gateway` is the same as the `socialgate` console script."""

from gateway.cli import main

main()
