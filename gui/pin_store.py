"""The therapist's PIN, per installation, kept only as a salted slow hash.

scrypt (standard library) with a random 16-byte salt: a copied settings file does not
give the PIN away, and trying every 4-8 digit PIN against it costs about 10^8 scrypt
runs at roughly 50 ms each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import platformdirs

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt cost: 16 MiB of memory and about 50 ms per try on a desktop processor."""
MIN_DIGITS = 4


def default_pin_path() -> Path:
    return Path(platformdirs.user_config_dir("fes-footdrop")) / "therapist_pin.json"


class PinStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_pin_path()

    @property
    def is_set(self) -> bool:
        return self.path.exists()

    def set(self, pin: str, old_pin: str | None = None) -> None:
        """Set the PIN; changing one needs the old PIN. ValueError says what is wrong."""
        if self.is_set and (old_pin is None or not self.verify(old_pin)):
            raise ValueError("the current PIN is needed to change it")
        if not (pin.isdigit() and len(pin) >= MIN_DIGITS):
            raise ValueError(f"a PIN is at least {MIN_DIGITS} digits")
        salt = os.urandom(16)
        record = {"scrypt": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                  "salt": salt.hex(), "hash": _hash(pin, salt, SCRYPT_N, SCRYPT_R,
                                                    SCRYPT_P).hex()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(record))
        self.path.chmod(0o600)

    def verify(self, pin: str) -> bool:
        if not self.is_set:
            return False
        record = json.loads(self.path.read_text())
        cost = record["scrypt"]
        expected = bytes.fromhex(record["hash"])
        given = _hash(pin, bytes.fromhex(record["salt"]), cost["n"], cost["r"], cost["p"])
        return hmac.compare_digest(given, expected)


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
