"""`python -m shipyard` runs the CLI."""

from shipyard.cli import main

main()
