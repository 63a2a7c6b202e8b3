"""Imported only if blockstitch ever imports code a file names: it leaves a marker file."""
import pathlib
import tempfile

pathlib.Path(tempfile.gettempdir(), "blockstitch_pwned_by_import").write_text("imported")


class Boom:
    pass
