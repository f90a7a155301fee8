from kernel.errors import ApplicationError


class MeteringError(ApplicationError):
    code = "metering_error"


class BatchTooLarge(MeteringError):
    code = "batch_too_large"
    status_code = 413


class InvalidBatch(MeteringError):
    code = "invalid_batch"


class InvalidMeter(MeteringError):
    code = "invalid_meter"


class UnknownMeter(MeteringError):
    code = "unknown_meter"
    status_code = 404


class InvalidUsageQuery(MeteringError):
    code = "invalid_query"
