"""The instance folder's secret, shared by the web, bot and worker processes in development."""

import os
import secrets
from pathlib import Path


def secret_key(instance_dir, env=None):
    """SECRET_KEY from the environment, else one kept (and created once) in the instance folder.

    It signs staff sessions and counter QR codes, so every process must use the same one.
    """
    env = os.environ if env is None else env
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    key_file = Path(instance_dir) / "secret_key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two processes starting at once write it once; 0600 from the first byte
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as f:
            f.write(secrets.token_hex(32))
    return key_file.read_text().strip()
