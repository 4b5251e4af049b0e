"""The instance folder's secret, shared by the web, bot and worker processes in development."""

import os
import secrets
from pathlib import Path


def secret_key(instance_dir):
    """SECRET_KEY from the environment, else one kept (and created once) in the instance folder.

    It signs staff sessions and counter QR codes, so every process must use the same one.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = Path(instance_dir) / "secret_key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(key_file, "x") as f:  # "x": two processes starting at once write it once
            f.write(secrets.token_hex(32))
        key_file.chmod(0o600)
    except FileExistsError:
        pass
    return key_file.read_text().strip()
