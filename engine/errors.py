"""Errors a user can meet. str(error) is the one clear sentence shown to them, with a way forward."""


class ModelError(Exception):
    """The model folder can't be used as it is (missing, incomplete, corrupt, unsupported)."""


def unreadable(what: str) -> ModelError:
    """The sentence for a file or folder this app may not read (permissions, macOS privacy)."""
    return ModelError(f"{what} can't be read (permission denied); give this app access to the model folder "
                      "(Finder > Get Info > Sharing & Permissions, or System Settings > Privacy & Security > "
                      "Files and Folders), or choose another folder.")


def require_folder(folder) -> None:
    """Raise ModelError unless `folder` (a Path) is a folder this app can reach."""
    try:
        is_folder = folder.is_dir()
    except PermissionError:  # a parent folder this app may not enter
        raise unreadable(f"The model folder {folder}") from None
    if not is_folder:
        raise ModelError(f"The model folder {folder} does not exist; choose the folder that holds config.json.")


# What a boundary that runs engine work (the app's worker, the server's runner) lets through: the
# signals to stop. Everything else is caught there, including a Rust extension's panic (tiktoken's
# pyo3_runtime.PanicException derives from BaseException, so `except Exception` misses it).
STOP_SIGNALS = (KeyboardInterrupt, SystemExit, GeneratorExit)
