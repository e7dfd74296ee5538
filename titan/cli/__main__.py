"""`python -m titan.cli ...` (the design documents' spelling) runs the CLI."""

from titan.cli import main

main()
