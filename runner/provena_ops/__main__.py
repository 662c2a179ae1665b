"""`python -m provena_ops`, as the `provena-ops` command."""

from .entry import main

main()
