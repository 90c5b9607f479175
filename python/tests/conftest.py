"""Fixtures: a host that can (or cannot) boot, and a loopback OCI registry
holding a small busybox image.

The registry is Debian's ``docker-registry`` (installed by
``./scripts/setup.sh``), on 127.0.0.1 with a free port and a temporary
storage directory. The image is pushed with the OCI distribution API, in
plain HTTP, from this process: nothing leaves the machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request

import pytest

REQUIRE_BOOT = os.environ.get("MONOCORE_REQUIRE_BOOT") == "1"
REGISTRY_BIN = "/usr/bin/docker-registry"
#: The image's run defaults, which a sandbox on it must apply.
IMAGE_ENV = ["PATH=/bin", "GREETING=from the image"]
IMAGE_WORKDIR = "/srv"


def no_boot(error: BaseException):
    """Skip (or, with MONOCORE_REQUIRE_BOOT=1, fail) for a host that cannot boot."""
    message = f"this host cannot boot a microVM: {type(error).__name__}: {error}"
    if REQUIRE_BOOT:
        pytest.fail(message + " (MONOCORE_REQUIRE_BOOT=1)")
    pytest.skip(message)


def not_a_vm(pid: int) -> bool:
    """Whether `pid` is not a monocore VM helper (gone, or a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"helper_main" not in f.read()
    except OSError:
        return True


def _busybox() -> str:
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(path):
            return path
    pytest.fail("busybox is missing: install busybox-static (./scripts/setup.sh)")


def _layer() -> bytes:
    """A gzipped tar: busybox, a few applets, /etc, /tmp, /srv."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, data: bytes = b"", mode: int = 0o755, link: str = ""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("bin", "etc", "tmp", "root", "srv"):
            add(d, tarfile.DIRTYPE)
        with open(_busybox(), "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, f.read())
        for applet in ("sh", "echo", "cat", "env", "pwd", "true", "sleep", "ls"):
            add(f"bin/{applet}", tarfile.SYMTYPE, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        add("srv/hello.txt", tarfile.REGTYPE, b"hello from the image's layer\n", 0o644)
    return gzip.compress(raw.getvalue(), mtime=0)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """A running loopback registry."""

    def __init__(self, tmp: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        config = os.path.join(tmp, "config.yml")
        with open(config, "w") as f:
            f.write(
                f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/storage\n"
                f"http:\n  addr: {self.host}\n"
            )
        self._log = open(os.path.join(tmp, "registry.log"), "wb")
        self.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", config],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail(f"the registry did not answer within 30 s (see {tmp}/registry.log)")
                time.sleep(0.05)

    def _request(self, method: str, url: str, data: bytes = b"", headers=None):
        if not url.startswith("http"):
            url = f"http://{self.host}{url}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        return urllib.request.urlopen(request, timeout=30)

    def push_blob(self, name: str, data: bytes) -> str:
        digest = _digest(data)
        with self._request("POST", f"/v2/{name}/blobs/uploads/") as reply:
            location = reply.headers["Location"]
        separator = "&" if "?" in location else "?"
        # Not urllib's default form type, which the registry would parse
        # (and consume) as a form.
        headers = {"Content-Type": "application/octet-stream"}
        self._request("PUT", f"{location}{separator}digest={digest}", data, headers).close()
        return digest

    def push_image(self, name: str, tag: str) -> str:
        """Pushes the busybox image as ``name:tag``; its reference."""
        layer = _layer()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": IMAGE_ENV, "WorkingDir": IMAGE_WORKDIR, "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": [_digest(gzip.decompress(layer))]},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.push_blob(name, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.push_blob(name, layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        self._request("PUT", f"/v2/{name}/manifests/{tag}", manifest, headers).close()
        return f"{self.host}/{name}:{tag}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """``(reference, image_cache)``: the busybox image in a loopback
    registry, and an empty image cache to pull it into."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.fail(f"{REGISTRY_BIN} is missing: install docker-registry (./scripts/setup.sh)")
    tmp = tmp_path_factory.mktemp("registry")
    registry = Registry(str(tmp))
    try:
        reference = registry.push_image("pytest/busybox", "1")
        cache = tmp_path_factory.mktemp("images")
        yield reference, cache
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
