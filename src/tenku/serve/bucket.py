"""Videos in an S3-compatible bucket (``--bucket s3://BUCKET/PREFIX``, any endpoint boto3 can
reach: AWS, MinIO, Ceph, R2...) instead of a folder every machine mounts. Each machine keeps
its own ``--data-dir`` as a staging folder: an API server writes a job's uploads there and puts
them in the bucket before the job is queued; the worker that takes the job fetches them, makes
the video, puts the outputs in the bucket before the job is marked completed, and empties its
staging folder. ``content`` streams from the bucket; delete and expiry remove the objects.
Objects are ``PREFIX<video id>/<file name>``, the names the folder would have. Credentials come
from boto3's usual places (``AWS_ACCESS_KEY_ID``..., ``~/.aws``), never a flag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Bucket:
    """One bucket and prefix; ``endpoint``: an S3-compatible server's URL (None: AWS)."""

    def __init__(self, url: str, endpoint: str | None = None):
        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise ValueError(f"--bucket {url!r}: give s3://BUCKET or s3://BUCKET/PREFIX")
        try:
            import boto3
        except ImportError:
            raise ValueError('--bucket s3://...: needs boto3 (pip install "tenku[s3]")') from None
        name, _, prefix = url[5:].partition("/")
        self.name, self.prefix = name, (prefix.rstrip("/") + "/") if prefix.strip("/") else ""
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        try:
            self.s3.head_bucket(Bucket=name)
        except Exception as e:  # noqa: BLE001 - any reason is a reason to refuse at start
            raise ValueError(f"--bucket {url}: cannot reach it ({str(e).splitlines()[0]})") from None

    def _key(self, video_id: str, name: str = "") -> str:
        return f"{self.prefix}{video_id}/{name}"

    def names(self, video_id: str) -> list[str]:
        """The file names a video has in the bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=self._key(video_id))
        return [o["Key"].rsplit("/", 1)[1] for page in pages for o in page.get("Contents", [])]

    def put(self, video_id: str, folder: Path, prefix: str = "") -> None:
        """The files of ``folder`` whose names start with ``prefix`` (temporary ones never)."""
        for f in sorted(folder.iterdir()) if folder.is_dir() else []:
            if f.is_file() and f.name.startswith(prefix) and not f.name.startswith("."):
                self.s3.upload_file(str(f), self.name, self._key(video_id, f.name))

    def fetch(self, video_id: str, folder: Path, prefix: str = "input") -> None:
        """The video's files whose names start with ``prefix`` into ``folder`` (those not there)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.names(video_id):
            if name.startswith(prefix) and not (folder / name).exists():
                self.s3.download_file(self.name, self._key(video_id, name), str(folder / name))

    def get(self, video_id: str, name: str, dst: Path) -> bool:
        """One file of a video into ``dst``; False if the bucket has none."""
        if name not in self.names(video_id):
            return False
        self.s3.download_file(self.name, self._key(video_id, name), str(dst))
        return True

    def stream(self, video_id: str, name: str) -> tuple[Iterator[bytes], int] | None:
        """A file's bytes in chunks and its length, or None if the bucket has none."""
        try:
            obj = self.s3.get_object(Bucket=self.name, Key=self._key(video_id, name))
        except self.s3.exceptions.NoSuchKey:
            return None
        body: Any = obj["Body"]
        return body.iter_chunks(1 << 20), int(obj["ContentLength"])

    def delete(self, video_id: str) -> None:
        """Every object of a video."""
        keys = [{"Key": self._key(video_id, n)} for n in self.names(video_id)]
        if keys:
            self.s3.delete_objects(Bucket=self.name, Delete={"Objects": keys})
