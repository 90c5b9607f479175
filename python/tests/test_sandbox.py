"""The Python package against real boots (two: one shared sandbox, and one in
a child interpreter that gets Ctrl-C), and its errors without a boot.

A host that cannot boot skips the boot tests, unless MONOCORE_REQUIRE_BOOT=1
(as in CI), which fails them instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import no_boot, not_a_vm

import monocore
from monocore import CommandTimedOut, ConfigError, Output, Sandbox


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory):
    """A host directory the shared sandbox sees at /data."""
    path = tmp_path_factory.mktemp("shared")
    (path / "from-host.txt").write_text("written on the host\n")
    return path


@pytest.fixture(scope="module")
def sb(shared_dir):
    try:
        sandbox = Sandbox(ram=256, volumes={shared_dir: "/data"}, env={"WHO": "sandbox"})
    except (monocore.HostCannotBoot, monocore.BootFailed, monocore.ControlError) as error:
        no_boot(error)
    with sandbox:
        yield sandbox


# --- no boot --------------------------------------------------------------


def test_ram_0_is_a_config_error_naming_ram(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Sandbox(root=tmp_path, ram=0)
    error = caught.value
    assert (error.field, error.index, error.path, error.host) == ("ram", None, "ram", False)
    assert isinstance(error, monocore.MonocoreError) and isinstance(error, ValueError)
    assert "at least 1" in error.reason


def test_a_bad_env_name_is_a_config_error_at_its_index(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Sandbox(root=tmp_path, ram=64, env={"GOOD": "1", "BAD=NAME": "2"})
    assert (caught.value.field, caught.value.index, caught.value.path) == ("env", 1, "env[1]")


def test_a_missing_root_is_a_config_error_naming_root(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Sandbox(root=tmp_path / "missing", ram=64)
    assert caught.value.field == "root"


def test_a_bad_volume_is_a_config_error_at_its_index(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Sandbox(root=tmp_path, ram=64, volumes=[f"{tmp_path}:/ok", f"{tmp_path}:relative"])
    assert (caught.value.field, caught.value.index, caught.value.path) == (
        "mapped_dirs",
        1,
        "mapped_dirs[1]",
    )


def test_a_root_and_an_image_together_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Sandbox(root=tmp_path, image="busybox:latest")
    assert caught.value.field == "image"


def test_the_helper_is_this_interpreter_with_the_package_dir():
    program, *args = monocore._helper.command()
    assert program == sys.executable
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(monocore.__file__)))
    assert args[-1] == package_dir
    assert "-I" in args and "-S" in args


# --- one shared boot ------------------------------------------------------


def test_run_gives_the_exit_code_and_the_output(sb):
    result = sb.run("echo hello; echo oops >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
    assert not result.ok
    listed = sb.run(["/bin/echo", "a b", "c"])
    assert (listed.exit_code, listed.stdout) == (0, "a b c\n")


def test_callbacks_get_the_output_in_order(sb):
    seen = []
    result = sb.run(
        "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.2; done",
        on_stdout=lambda s: seen.append(("out", s)),
        on_stderr=lambda s: seen.append(("err", s)),
    )
    assert "".join(s for k, s in seen if k == "out") == result.stdout == "out1\nout2\nout3\n"
    assert "".join(s for k, s in seen if k == "err") == result.stderr == "err1\nerr2\nerr3\n"
    # Each line arrived while the command ran: out1 before err3.
    assert seen.index(("out", "out1\n")) < seen.index(("err", "err3\n"))


def test_env_cwd_and_stdin(sb):
    result = sb.run(["sh", "-c", 'echo "$FOO"; pwd; cat'], env={"FOO": "bar"}, cwd="/tmp", stdin="in")
    assert result.stdout == "bar\n/tmp\nin"
    # The sandbox's env is every command's default; a command's own wins.
    assert sb.run('echo "$WHO"').stdout == "sandbox\n"
    assert sb.run('echo "$WHO"', env={"WHO": "command"}).stdout == "command\n"


def test_args_arrive_byte_for_byte(sb):
    args = ["", " two  spaces ", "quote'\"", "$HOME", "new\nline", "\u00e9"]
    result = sb.run(["sh", "-c", 'for a in "$@"; do printf "[%s]" "$a"; done', "sh", *args])
    assert result.stdout == "".join(f"[{a}]" for a in args)


def test_a_volume_is_the_hosts_directory(sb, shared_dir):
    assert sb.run("cat /data/from-host.txt").stdout == "written on the host\n"
    sb.run("echo from the guest > /data/from-guest.txt")
    assert (shared_dir / "from-guest.txt").read_text() == "from the guest\n"


def test_stream_gives_the_output_as_it_comes_then_the_result(sb):
    started = time.monotonic()
    seen = []
    with sb.stream("echo one; echo two >&2; sleep 2; echo three; exit 4") as out:
        for piece in out:
            seen.append((piece, time.monotonic() - started))
    assert [p for p, _ in seen] == [
        Output("stdout", "one\n"),
        Output("stderr", "two\n"),
        Output("stdout", "three\n"),
    ]
    # "one" came before the 2 s sleep ended, "three" after it.
    assert seen[2][1] - seen[0][1] > 1.5
    assert (out.result.exit_code, out.result.stdout) == (4, "one\nthree\n")


def test_leaving_a_stream_early_stops_its_command(sb):
    started = time.monotonic()
    for piece in sb.stream("echo first; sleep 300"):
        assert piece == Output("stdout", "first\n")
        break
    assert time.monotonic() - started < 30
    assert sb.run("pgrep -x sleep || echo none").stdout == "none\n"


def test_a_stream_raises_its_commands_timeout_at_the_end(sb):
    pieces = []
    with pytest.raises(CommandTimedOut):
        for piece in sb.stream("echo before; sleep 300", timeout=2):
            pieces.append(piece)
    assert pieces == [Output("stdout", "before\n")]


def test_a_timeout_kills_the_command_and_everything_it_started(sb):
    started = time.monotonic()
    with pytest.raises(CommandTimedOut) as caught:
        sb.run("trap '' TERM; echo started; sleep 300 & sleep 300", timeout=2)
    assert time.monotonic() - started < 30
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.stdout == b"started\n"
    assert caught.value.timeout == 2.0
    # Nothing is left of it, and the sandbox still runs commands.
    assert sb.run("pgrep -x sleep || echo none").stdout == "none\n"


def test_files_write_then_read(sb):
    data = bytes(range(256)) * 16
    sb.files.write("/tmp/data.bin", data, mode=0o600)
    assert sb.files.read("/tmp/data.bin") == data
    assert sb.run("stat -c %a /tmp/data.bin").stdout == "600\n"
    with pytest.raises(monocore.GuestFileError):
        sb.files.read("/no/such/file")


def test_copy_in_and_out_keep_symlinks_inside(sb, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"A" * 1000)
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)))
    (src / "escape").symlink_to("/../../../etc")
    copied = sb.files.copy_in(src, "/tmp/tree")
    assert (copied["files"], copied["dirs"], copied["symlinks"]) == (2, 2, 1)
    assert sb.run("cat /tmp/tree/sub/b.bin | wc -c").stdout.strip() == "256"
    # Writing through the symlink lands inside the guest's root.
    sb.files.write("/tmp/tree/escape/planted", b"x")
    assert sb.run("cat /etc/planted").stdout == "x"
    assert not os.path.exists("/etc/planted")
    out = tmp_path / "out"
    back = sb.files.copy_out("/tmp/tree", out)
    assert back["bytes"] == 1256
    assert (out / "a.txt").read_bytes() == b"A" * 1000
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(256))
    # The symlink came back as a symlink, never followed on the host.
    assert os.readlink(out / "escape") == "/../../../etc"


def test_a_read_over_max_bytes_is_cut_off(sb):
    sb.files.write("/tmp/big", b"z" * 10_000)
    with pytest.raises(monocore.GuestFileError):
        sb.files.read("/tmp/big", max_bytes=1000)
    with pytest.raises(monocore.GuestFileError):
        sb.files.read("/dev/zero", max_bytes=1 << 20)
    assert len(sb.files.read("/tmp/big", max_bytes=10_000)) == 10_000


def test_a_callback_that_raises_stops_the_command_not_the_sandbox(sb):
    def boom(_text):
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback"):
        sb.run("echo x; sleep 300", on_stdout=boom)
    assert sb.run("echo still").stdout == "still\n"


# --- Ctrl-C, in a child interpreter (a second boot) -----------------------

CHILD = textwrap.dedent(
    """
    import sys
    from monocore import Sandbox
    sb = Sandbox(ram=256)
    print("helper", sb.pid, flush=True)
    sb.run("echo running; sleep 300", on_stdout=lambda s: print(s, end="", flush=True))
    print("run returned", flush=True)
    """
)


def test_ctrl_c_during_run_ends_the_wait_and_the_vm():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        helper = _helper_of(child, "the child")
        assert child.stdout.readline() == "running\n"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        assert time.monotonic() - sent < 10
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "run returned" not in out
    assert "KeyboardInterrupt" in err
    assert child.returncode != 0
    # The VM's helper process is gone.
    assert not os.path.exists(f"/proc/{helper}") or not_a_vm(helper)


def _helper_of(child: subprocess.Popen, what: str) -> int:
    """The helper pid that a child interpreter printed once its sandbox
    booted (skip, or fail, if it could not boot)."""
    first = child.stdout.readline()
    if not first.startswith("helper "):
        child.wait(timeout=60)
        error = child.stderr.read()
        if "HostCannotBoot" in error or "BootFailed" in error:
            no_boot(RuntimeError(error.strip().splitlines()[-1]))
        pytest.fail(f"{what} did not boot: {first!r} {error}")
    return int(first.split()[1])


# --- the interpreter ends with sandboxes open (two more boots) -------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from monocore import Sandbox
    sb = Sandbox(ram=256)
    print("helper", sb.pid, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)  # never closed
    time.sleep(600)
    """
)


def _helper_gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or not_a_vm(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_sandbox_ends_when_its_interpreter_exits_or_is_killed():
    children = {
        how: subprocess.Popen(
            [sys.executable, "-c", HOLDER, how],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for how in ("exit", "kill")
    }
    try:
        helpers = {}
        for how, child in children.items():
            helpers[how] = _helper_of(child, f"the {how} child")
        children["kill"].kill()
        for how, child in children.items():
            child.wait(timeout=60)
        assert children["exit"].returncode == 0, children["exit"].stderr.read()
        for how, helper in helpers.items():
            assert _helper_gone_within(helper, 30), f"{how}: helper {helper} still runs"
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
