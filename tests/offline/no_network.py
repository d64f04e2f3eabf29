"""Run the kerasbrain CLI with every connection off this machine refused and recorded.

    python tests/offline/no_network.py ARGS... [--then ARGS...]   (attempts go to $KERASBRAIN_BLOCKED_LOG)

Commands joined by `--then` run one after another in the same process (one start-up, not one per
command); the first that fails ends the run with its message and exit status 1.

Loopback and Unix sockets stay open (the server, the app and their clients use them).
"""

import ipaddress
import os
import socket
import sys

LOG = os.environ.get("KERASBRAIN_BLOCKED_LOG")


def _local(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str):
    if LOG:
        with open(LOG, "a") as f:
            f.write(what + "\n")
    raise OSError(f"network blocked by the test: {what}")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect {address}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect_ex {address}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if not _local(host):
        _refuse(f"resolve {host}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import click

    from cli.main import cli

    commands, current = [], []
    for arg in sys.argv[1:]:
        if arg == "--then":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    commands.append(current)
    for command in commands:
        try:
            cli(command, prog_name="kerasbrain", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            sys.exit(1)
