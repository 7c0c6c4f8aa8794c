"""`python -m gateway` = the `tillsyn` command."""

from gateway.cli import main

main()
