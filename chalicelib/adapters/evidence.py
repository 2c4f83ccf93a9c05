"""Evidence photos in S3: presigned uploads straight from the app (the API never carries the bytes)."""

from __future__ import annotations

from typing import Any


class S3Evidence:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def upload_url(self, key: str, content_type: str, expires_in: int) -> str:
        """A PUT URL for exactly this key and content type (signature v4: the only one the China regions take)."""
        url: str = self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return url
