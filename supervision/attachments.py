"""Attachments of a hidden danger: photos and documents, checked before anything is written (pure).

Accepted: JPEG and PNG photos and PDF documents, up to `ATTACHMENT_MAX_BYTES`
(10 MiB, hazmon's policy: a phone photo or a scanned plan fits, the database
does not fill up with videos). The content decides the type: the file's first
bytes must match the declared or guessed type, so a renamed executable is
refused. They are stored in the database (``bytea``) in the same transaction as
the ``attach`` step that records them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath

from hazmon.supervision.dangers import RefusedError

__all__ = ["ALLOWED_TYPES", "ATTACHMENT_MAX_BYTES", "Attachment", "AttachmentError", "check_attachment"]

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
"""Largest attachment accepted (hazmon's policy); the database checks it too."""

ALLOWED_TYPES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "image/jpeg": (b"\xff\xd8\xff", (".jpg", ".jpeg")),
    "image/png": (b"\x89PNG\r\n\x1a\n", (".png",)),
    "application/pdf": (b"%PDF-", (".pdf",)),
}
"""Content type -> (magic bytes the content starts with, file name extensions)."""


class AttachmentError(RefusedError):
    """The file may not be attached; the message says why (nothing was written)."""

    def __init__(self, reason: str) -> None:
        super().__init__([reason])


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str


def check_attachment(filename: str, content: bytes, content_type: str | None = None) -> Attachment:
    """The attachment's checked description, or `AttachmentError` with the reason.

    Args:
        filename: the file's name (its extension guesses the type when none is given).
        content: the bytes.
        content_type: the declared type, if any.
    """
    name = PurePath(filename).name
    if not name or len(name) > 255:
        raise AttachmentError(f"{filename!r}: a file name of 1 to 255 characters is needed")
    if len(content) == 0:
        raise AttachmentError(f"{name}: the file is empty")
    if len(content) > ATTACHMENT_MAX_BYTES:
        raise AttachmentError(
            f"{name}: {len(content)} bytes is over the limit of {ATTACHMENT_MAX_BYTES} bytes "
            f"({ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB)"
        )
    allowed = ", ".join(f"{t} ({'/'.join(ext)})" for t, (_, ext) in ALLOWED_TYPES.items())
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not ctype:
        ext = PurePath(name).suffix.lower()
        ctype = next((t for t, (_, exts) in ALLOWED_TYPES.items() if ext in exts), "")
        if not ctype:
            what = ext or "no extension"
            raise AttachmentError(f"{name}: the type '{what}' is not accepted; only {allowed}")
    if ctype not in ALLOWED_TYPES:
        raise AttachmentError(f"{name}: the type '{ctype}' is not accepted; only {allowed}")
    magic = ALLOWED_TYPES[ctype][0]
    if not content.startswith(magic):
        raise AttachmentError(f"{name}: the content is not a {ctype} file (its first bytes do not match)")
    return Attachment(name, ctype, len(content), hashlib.sha256(content).hexdigest())
