"""A WSGI app that does nothing (reads the body, answers `{}`): served by gunicorn with the same
worker settings, it is the floor under every figure of an endpoint -- what gunicorn, the kernel's
loopback and wrk cost before any Django or Monetize code runs."""


def application(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
