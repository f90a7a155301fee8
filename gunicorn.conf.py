"""gunicorn settings, read from the working directory by every `gunicorn` started here (Procfile,
scripts, tests).

gunicorn answers some requests itself, before the app sees them: a malformed request line or
header (400), a request line over limit_request_line (414), too many or too large headers (431),
a bad chunked encoding (400). Its answer is an HTML page; integrators parse JSON, so the error
writer is replaced with one that answers our error shape
`{"error": {"code", "message", "details"}}`. (Connections gunicorn drops without answering, such as
a client that never finishes its headers, get no answer at all, JSON or otherwise.)
"""

import json

from gunicorn import util

_CODES = {
    400: "malformed_request",
    403: "forbidden",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_error",
}


def _write_json_error(sock, status_int, reason, mesg):
    message = f"{reason}: {mesg}" if mesg else reason
    body = json.dumps(
        {
            "error": {
                "code": _CODES.get(status_int, "malformed_request"),
                "message": message[:300],
                "details": {},
            }
        }
    )
    util.write_nonblock(
        sock,
        (
            f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode("latin1", "replace"),  # the body is ASCII (json.dumps escapes the rest)
    )


util.write_error = _write_json_error
