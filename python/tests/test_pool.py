"""A warm pool from Python (three real boots: the pool's VM and two
replacements)."""

from __future__ import annotations

import time

import pytest
from conftest import no_boot, not_a_vm

import monocore
from monocore import Pool, PoolError


def test_a_pool_of_0_is_a_pool_error_naming_size():
    with pytest.raises(PoolError) as caught:
        Pool(size=0)
    assert (caught.value.kind, caught.value.field, caught.value.asked) == ("size", "size", 0)


def test_claims_come_booted_are_never_reused_and_the_pool_refills(image):
    reference, cache = image
    with Pool(size=1, ram=256) as pool:
        try:
            assert pool.wait_ready(1, timeout=180)
        except (monocore.HostCannotBoot, monocore.BootFailed) as error:
            no_boot(error)
        # Over the pool's shape: refused before a VM is taken.
        with pytest.raises(PoolError) as caught:
            pool.claim(ram=512)
        assert (caught.value.kind, caught.value.field) == ("ram_too_large", "ram")
        assert (caught.value.asked, caught.value.limit) == (512, 256)
        assert pool.ready == 1

        asked = time.monotonic()
        with pool.claim(env={"WHO": "first"}) as first:
            result = first.run('echo "$WHO"; echo secret > /root/left-behind')
            claim_to_output = time.monotonic() - asked
            assert result.stdout == "first\n"
            first_pid = first.pid
        # Far less than a boot: the VM was booted before the claim.
        assert claim_to_output < 8, claim_to_output
        assert not_a_vm(first_pid)

        assert pool.wait_ready(1, timeout=180), "the pool did not refill"
        with pool.claim(image=reference, image_cache=cache) as second:
            assert second.pid != first_pid
            out = second.run("cat /root/left-behind 2>&1; echo $GREETING; cat hello.txt").stdout
            assert "secret" not in out
            assert "from the image\nhello from the image's layer\n" in out
