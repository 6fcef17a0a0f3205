"""Settings of the web app and the refusal an upload check raises."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WebConfig", "UploadRejected"]


class WebConfig(BaseModel):
    """Settings of the web app (frozen; unknown keys rejected). Sizes in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    token: str = Field(min_length=16)
    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_zip_members: int = Field(1000, gt=0)
    max_zip_total_bytes: int = Field(512 * 1024 * 1024, gt=0)
    max_zip_member_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_zip_ratio: float = Field(200.0, gt=1)
    #: Decoded pixels per image (decompression-bomb guard).
    max_image_pixels: int = Field(40_000_000, gt=0)
    #: Voxels per NIfTI volume (checked on the header, before decompression).
    max_volume_voxels: int = Field(150_000_000, gt=0)
    #: Queued jobs above which uploads get 429.
    max_queued_jobs: int = Field(500, gt=0)
    session_ttl_s: float = Field(8 * 3600.0, gt=0)
    #: Wrong tokens per client within ``login_window_s`` before 429.
    login_max_failures: int = Field(5, gt=0)
    login_window_s: float = Field(60.0, gt=0)
    #: De-identification secret for DICOM uploads (default: kept in ``data_dir/deid.salt``).
    deid_salt: str | None = None


class UploadRejected(Exception):
    """An upload that is refused, with the HTTP status and the reason shown to the user."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
