"""Which AWS errors are the infrastructure's (retry later) rather than the request's (retrying cannot help), and
which mean a conditional write lost its race."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from pynamodb.exceptions import PynamoDBException

_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",  # SQS
        "KmsThrottled",  # SQS with SSE-KMS
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "KMSThrottlingException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts and connection faults (also when PynamoDB wraps them)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, HTTPClientError)):
            return True
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            status = int(current.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return error.get("Code") in _TRANSIENT_CODES or status >= 500
        if isinstance(current, PynamoDBException) and current.cause is not None:
            current = current.cause
            continue
        if isinstance(current, BotoCoreError):
            return False
        current = current.__cause__
    return False


def not_sent(exc: BaseException) -> bool:
    """The service answered with an error, or no connection was made: the request was not carried out."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    return isinstance(exc, (ClientError, EndpointConnectionError, ConnectTimeoutError))


def lost_race(exc: Exception) -> bool:
    """A conditional write (PynamoDB's PutError, UpdateError) failed on its condition: somebody wrote first."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"
