"""`python -m aejax COMMAND`: the `aejax` command without its installed script."""

from aejax.commands import main

main()
