"""A sandbox on an OCI image from a loopback registry (one real boot)."""

from __future__ import annotations

import pytest
from conftest import IMAGE_WORKDIR, no_boot

import monocore
from monocore import Sandbox


def test_a_sandbox_on_an_image_runs_with_its_env_and_workdir(image):
    reference, cache = image
    try:
        sb = Sandbox(image=reference, image_cache=cache, ram=256, env={"MINE": "1"})
    except (monocore.HostCannotBoot, monocore.BootFailed) as error:
        no_boot(error)
    with sb:
        result = sb.run('echo "$GREETING/$MINE"; pwd; cat hello.txt')
        assert result.stdout == f"from the image/1\n{IMAGE_WORKDIR}\nhello from the image's layer\n"
        # A command's own env and cwd win over the image's.
        assert sb.run('echo "$GREETING"; pwd', env={"GREETING": "mine"}, cwd="/tmp").stdout == (
            "mine\n/tmp\n"
        )
    # The pull went into the given cache.
    assert any(cache.iterdir())


def test_an_image_that_does_not_exist_is_an_error_naming_it(image):
    reference, cache = image
    missing = reference.replace("pytest/busybox:1", "pytest/missing:1")
    with pytest.raises(monocore.MonocoreError) as caught:
        Sandbox(image=missing, image_cache=cache)
    assert "pytest/missing" in str(caught.value)
