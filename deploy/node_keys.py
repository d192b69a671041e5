"""SuperNode key pairs for Flower's node authentication (``flower-superlink --enable-supernode-auth``).

    python -m fedotl.deploy.node_keys DIR NAME [NAME ...]

writes ``DIR/NAME`` (the private key, mode 600) and ``DIR/NAME.pub`` for each NAME that has
none yet.  The keys are ECDSA on NIST P-384 in OpenSSH format, what ``flower-supernode
--auth-supernode-private-key`` reads (flwr 1.42 refuses other key types) and what ``ssh-keygen
-t ecdsa -b 384 -N ""`` makes on a device without Python.  The private key stays on its device;
the public key goes to the server's operator, who registers it with ``flwr supernode register``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a file name, never a path


def key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """``folder/name`` and ``folder/name.pub``, made if missing (an existing pair is kept)."""
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r}: use letters, digits, '.', '_' and '-' only")
    private, public = folder / name, folder / f"{name}.pub"
    if private.is_file() and public.is_file():
        return private, public
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")
    return private, public


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        for name in args[1:]:
            private, public = key_pair(Path(args[0]), name)
            print(f"{private}  {public}")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
