"""What reaches the HTTP server itself (issue 10, items 20 and 21), under both servers the Procfile
can run (scripts/web.sh): a chunked body is read; the answers gunicorn writes without the app (400,
414, 431) are our JSON error shape; under Granian (the default) the long request lines and large
headers gunicorn refused reach the app and get its JSON answers, and only bytes that are not HTTP
get Granian's own bodiless 400."""

import http.client
import io
import json
import socket

import pytest

TIMEOUT = 60  # a loaded machine (2 cores shared) boots gunicorn's workers slowly


def _ready(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    _ready(port)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _chunked_post(port: int, host: str, key: str, path: str, chunks: list[bytes]):
    _ready(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request(
        "POST",
        path,
        body=iter(chunks),
        headers={"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_a_chunked_body_is_read(live_tenant, request, server):
    served = request.getfixturevalue(server)
    port = served if server == "gunicorn" else served[0]
    response, body = _chunked_post(
        port, live_tenant.host, live_tenant.api_key, "/api/v1/customers",
        [b'{"external_id": ', b'"chunky", "email": "c@x.test"}'],
    )  # fmt: skip
    assert response.status == 201, body
    assert json.loads(body)["external_id"] == "chunky"


def test_a_chunked_body_over_the_limit_is_a_json_413(settings):
    from monetize.middleware import ChunkedBodyWSGI

    settings.API_MAX_BODY_BYTES = 10
    called, started = [], []
    wrapped = ChunkedBodyWSGI(lambda environ, start_response: called.append(environ) or [b""])
    environ = {
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"x" * 11),
        "PATH_INFO": "/api/v1/x",
    }
    body = b"".join(wrapped(environ, lambda status, headers: started.append(status)))
    assert started == ["413 Content Too Large"] and not called
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # at the limit, the app gets the body with its length
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 10)}
    wrapped(environ, lambda status, headers: None)
    assert called[0]["CONTENT_LENGTH"] == "10" and called[0]["wsgi.input"].read() == b"x" * 10


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (b"NOT A REQUEST LINE\r\n\r\n", 400, "malformed_request"),
        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n", 431, "headers_too_large"),
    ],
    ids=["400", "414", "431"],
)
def test_gunicorns_own_errors_are_json(live_tenant, gunicorn, request_bytes, status, code):
    got, headers, body = _raw(gunicorn, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and error["details"] == {}


def test_under_granian_long_request_lines_and_large_headers_get_the_apps_json(live_tenant, granian):
    port, _, _ = granian
    host, key = live_tenant.host.encode(), live_tenant.api_key.encode()
    long_path = b"GET /api/v1/" + b"a" * 10000 + b" HTTP/1.1\r\nHost: " + host
    long_path += b"\r\nAuthorization: Bearer " + key + b"\r\nConnection: close\r\n\r\n"
    status, headers, body = _raw(port, long_path)
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"

    big_header = b"GET /api/v1/me HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: Bearer " + key
    big_header += b"\r\nX-Big: " + b"a" * 10000 + b"\r\nConnection: close\r\n\r\n"
    status, headers, body = _raw(port, big_header)
    assert status == 200 and headers["content-type"] == "application/json", body
    assert isinstance(json.loads(body), dict)


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"GET /he\x00llo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    ],
    ids=["400", "400-nul", "431-too-many"],
)
def test_under_granian_what_is_not_http_gets_a_status_and_the_connection_closed(
    granian, request_bytes, status
):
    """What Granian answers itself (the app never sees these): the status line, no body, and the
    connection closed; nothing reaches the app, so nothing is stored."""
    port, _, _ = granian
    got, headers, body = _raw(port, request_bytes)
    assert got == status
    assert headers["connection"] == "close" and headers["content-length"] == "0" and body == b""
