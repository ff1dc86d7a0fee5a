"""``python -m eventkeep``: the same as the ``eventkeep`` command."""

from eventkeep.cli import main

if __name__ == "__main__":
    main(prog_name="eventkeep")
