"""Reading a multipart/form-data request the way the platform's server would, to assert exact uploads."""

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

import httpx


@dataclass(frozen=True)
class FormPart:
    """One field of a form: its value as text (fields) or bytes (files), with the file's name and type."""

    content: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode()


def _parts(request: httpx.Request) -> list:
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary="), content_type
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.content)
    return list(message.iter_parts())


def form_parts(request: httpx.Request) -> dict[str, FormPart]:
    """Every field of a multipart request body, by name (a repeated name keeps its last part)."""
    parts = {}
    for part in _parts(request):
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        parts[name] = FormPart(part.get_payload(decode=True), filename, part.get_content_type() if filename else None)
    return parts


def field_names(request: httpx.Request) -> list[str]:
    """The names of a multipart request's fields in the order they were sent (repeats included)."""
    return [part.get_param("name", header="content-disposition") for part in _parts(request)]
