"""`python -m titan` runs the CLI."""

from titan.cli import main

main()
