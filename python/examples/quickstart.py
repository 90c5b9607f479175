"""The README's Python example: a sandbox, a command with its exit code and
output, a file in, a stream, a timeout, and a warm pool.

Run: python python/examples/quickstart.py   (after `pip install ./python`)
"""

import time

from monocore import CommandTimedOut, Pool, Sandbox

started = time.monotonic()
with Sandbox(ram=256, env={"GREETING": "hello"}) as sb:
    print(f"booted in {time.monotonic() - started:.1f}s")
    result = sb.run('echo "$GREETING from $(uname -r)"; echo oops >&2; exit 3')
    print(result.exit_code, repr(result.stdout), repr(result.stderr))

    sb.files.write("/tmp/input.txt", "three words here\n")
    print(sb.run(["wc", "-w", "/tmp/input.txt"]).stdout, end="")

    for piece in sb.stream("for i in 1 2; do echo line $i; sleep 0.5; done; echo done >&2"):
        print(piece.stream, repr(piece.text))

    try:
        sb.run("trap '' TERM; sleep 60", timeout=2)
    except CommandTimedOut as error:
        print(f"killed after {error.timeout}s")

with Pool(size=1, ram=256) as pool:
    pool.wait_ready(1, timeout=120)
    asked = time.monotonic()
    with pool.claim() as sb:
        out = sb.run("echo from a warm VM").stdout
        print(f"{out.strip()}: claim to output in {time.monotonic() - asked:.2f}s")
