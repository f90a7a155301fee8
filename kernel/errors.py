class ApplicationError(Exception):
    """Base of every domain error: a stable machine-readable `code`, a human message, details.

    Each app subclasses it in its own `exceptions.py`; the API renders it as
    `{"error": {"code", "message", "details"}}` with `status_code`.
    """

    code = "application_error"
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}
