"""`python -m provena_ops.cli`, kept for scripts that call it so: the same as `provena-ops`."""

from provena_ops.__main__ import main

main()
