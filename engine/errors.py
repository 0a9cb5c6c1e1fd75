"""Errors a user can meet. str(error) is the one clear sentence shown to them, with a way forward."""


class ModelError(Exception):
    """The model folder can't be used as it is (missing, incomplete, corrupt, unsupported)."""
