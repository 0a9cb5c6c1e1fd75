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
