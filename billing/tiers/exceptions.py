from kernel.errors import ApplicationError


class CatalogError(ApplicationError):
    """A catalog file or change that cannot be applied; `details` name the file, line and field."""

    code = "invalid_catalog"


class TierNotFound(ApplicationError):
    code = "unknown_tier"
    status_code = 404


class FeatureNotFound(ApplicationError):
    code = "unknown_feature"
