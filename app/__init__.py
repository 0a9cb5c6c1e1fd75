__version__ = "0.1.0"   # the same as pyproject.toml's (a test checks); shown in About
