"""Ed25519 signatures over a bundle's manifest, so a device can insist on bundles from a known key.

The manifest holds the sha256 and size of every file in the bundle, so signing its exact bytes
signs the whole bundle: `load_bundle` checks the signature of manifest.json first, then each
file against its sha256. The signature lives next to the manifest in `manifest.sig` (JSON: the
algorithm, the signing key's id and the base64 signature); the bundle format is unchanged.

Keys are PEM files (PKCS#8 private key, SubjectPublicKeyInfo public key) as `edge-albert keygen`
writes them. Ed25519 comes from `cryptography` (the `signing` extra, about 17 MB with cffi;
wheels for aarch64 and armv7): the OpenSSF model-signing library would bring sigstore and some
35 packages onto the device for the same offline key-based check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Tuple, Union

from .atomic import check_writable_file
from .errors import BundleError, EdgeAlbertError
from .extras import install_hint

SIGNATURE_FILE = "manifest.sig"
SIGNATURE_FORMAT = "edge-albert-signature"
ALGORITHM = "ed25519"
TRUSTED_KEY_ENV = "EDGE_ALBERT_TRUSTED_KEY"
PathLike = Union[str, os.PathLike]


class SigningError(EdgeAlbertError):
    """A key cannot be read or made, or signing is not installed."""


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SigningError(f"bundle signatures need the cryptography package: {install_hint('signing')}") from None
    return ed25519, serialization, InvalidSignature


def generate_key_pair(private_path: PathLike, overwrite: bool = False) -> Tuple[Path, Path]:
    """Write a new Ed25519 private key (mode 0600) and its public key (`<private>.pub`)."""
    ed25519, serialization, _ = _crypto()
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        check_writable_file(path, overwrite=overwrite, error=SigningError)
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_atomically(private_path, private_pem, 0o600)
    _write_atomically(public_path, public_pem, 0o644)
    return private_path, public_path


def committable_in(path: PathLike) -> Optional[Path]:
    """The git working tree that `path` lies in and does not ignore, else None: a private key there could be committed.

    Asks `git check-ignore`; without git, any .git above the path counts as a working tree.
    """
    path = Path(path).resolve()
    root = next((parent for parent in path.parents if (parent / ".git").exists()), None)
    if root is None:
        return None
    try:
        check = subprocess.run(["git", "-C", str(path.parent), "check-ignore", "-q", path.name],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return root
    return None if check.returncode == 0 else root


def key_id(public_key) -> str:
    """First 16 hex digits of the sha256 of the raw public key: names the key in messages."""
    _, serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _load_key(path: PathLike, private: bool):
    ed25519, serialization, _ = _crypto()
    kind = "private" if private else "public"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read the {kind} key {path}: {exc.strerror or exc}") from None
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as exc:
        hint = " (did you pass the .pub file?)" if private and b"PUBLIC KEY" in data else (
            " (did you pass the private key?)" if not private and b"PRIVATE KEY" in data else "")
        raise SigningError(f"{path} is not a PEM {kind} key{hint}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    expected = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, expected):
        raise SigningError(f"{path} is a {type(key).__name__}; edge-albert signs with Ed25519 keys "
                           f"(make one with edge-albert keygen)")
    return key


def load_private_key(path: PathLike):
    """The Ed25519 private key at `path`, refused in one line (missing, empty, not PEM, a public key,
    another algorithm): writers load it before any work, so a bad key never leaves an unsigned output."""
    return _load_key(path, private=True)


def sign_file(bundle_dir: PathLike, signed_file: str, private_key) -> Path:
    """Sign `signed_file` of the bundle with `private_key` (a path, or a key from load_private_key);
    write manifest.sig atomically.

    bundle.sign_bundle calls it with the manifest (signing knows no bundle layout: bundle imports it).
    """
    bundle_dir = Path(bundle_dir)
    key = _load_key(private_key, private=True) if isinstance(private_key, (str, os.PathLike)) else private_key
    signature = key.sign((bundle_dir / signed_file).read_bytes())
    record = {"format": SIGNATURE_FORMAT, "algorithm": ALGORITHM, "key_id": key_id(key.public_key()),
              "signed_file": signed_file, "signature": base64.b64encode(signature).decode("ascii")}
    target = bundle_dir / SIGNATURE_FILE
    _write_atomically(target, (json.dumps(record, indent=2) + "\n").encode("utf-8"), 0o644)
    return target


def verify_signature(bundle_dir: PathLike, signed_file: str, public_key: PathLike) -> str:
    """Refuse (BundleError) a bundle whose `signed_file` is unsigned, altered, or signed by another key.

    Returns the key id. bundle.verify_bundle_signature calls it with the manifest.
    """
    _, _, InvalidSignature = _crypto()
    bundle_dir = Path(bundle_dir)
    key = _load_key(public_key, private=False)
    trusted = key_id(key)
    path = bundle_dir / SIGNATURE_FILE
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not signed (no {SIGNATURE_FILE}) and a trusted key {trusted} is "
                          "required; sign it when converting, with the private key keygen wrote")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("format") != SIGNATURE_FORMAT:
            raise ValueError("not an edge-albert signature")
        if record.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {record.get('algorithm')!r}, expected {ALGORITHM!r}")
        signature = base64.b64decode(str(record.get("signature")), validate=True)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not a readable signature: {str(exc).splitlines()[0]}") from None
    signer = record.get("key_id")
    try:
        key.verify(signature, (bundle_dir / signed_file).read_bytes())
    except InvalidSignature:
        if signer != trusted:
            raise BundleError(f"{bundle_dir} is signed by key {signer!r}, not by the trusted key {trusted}") from None
        raise BundleError(f"{bundle_dir}: the signature of {signed_file} does not verify with the trusted key "
                          f"{trusted}: the manifest was altered after signing") from None
    except OSError as exc:
        raise BundleError(f"{bundle_dir / signed_file} cannot be read: {exc.strerror or exc}") from None
    return trusted


def trusted_key_from_environment(trusted_key: Optional[PathLike]) -> Optional[PathLike]:
    """`trusted_key`, else the key named by EDGE_ALBERT_TRUSTED_KEY (a device-wide policy), else None."""
    return trusted_key or os.environ.get(TRUSTED_KEY_ENV) or None


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
