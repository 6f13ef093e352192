"""`serve --host`: IPv6 in brackets works, and the open server checks the address it actually bound."""

from __future__ import annotations

import socket

import httpx
import pytest
from tests_support import Served

from lesson_code import cli


def test_serve_accepts_an_ipv6_host_in_brackets(tmp_path):
    with Served("--no-auth", "--host", "[::1]", "--db", str(tmp_path / "shop.sqlite3")) as server:
        assert server.url.startswith("http://[::1]:"), server.url
        assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
        status, _, err = server.stop()
    assert status == 0 and "Traceback" not in err, err


def test_no_auth_refuses_a_localhost_that_resolves_elsewhere(tmp_path, monkeypatch, capsys):
    """A hostile /etc/hosts: `localhost` names every address. The bound address is checked, not the name."""
    real_getaddrinfo = socket.getaddrinfo

    def hostile(host, port, *args, **kwargs):
        return real_getaddrinfo("0.0.0.0" if host == "localhost" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hostile)
    status = cli.main(["serve", "--no-auth", "--host", "localhost", "--port", "0", "--db", str(tmp_path / "d.sqlite3")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: 'localhost' resolved to 0.0.0.0, which is not a loopback address: use 127.0.0.1 or ::1"
    )


def _option_blocks(help_text: str) -> dict[str, str]:
    """{"--option": "its help text"} from the "options:" section of argparse's output."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.split("options:", 1)[1].splitlines():
        stripped = line.strip()
        if line.startswith("  -") and not line.startswith("   "):
            current = stripped.split()[0].rstrip(",")
            blocks[current] = stripped[len(stripped.split("  ")[0]) :].strip()
        elif current and stripped:
            blocks[current] += " " + stripped
    return blocks


def test_help_of_every_command_explains_every_option_with_its_default(capsys):
    commands = ["keys new", "keys list", "keys revoke", "keys rotate", "keys generate", "serve", "demo"]
    for command in commands:
        with pytest.raises(SystemExit):
            cli.main([*command.split(), "--help"])
        blocks = _option_blocks(capsys.readouterr().out)
        assert "-h" in blocks
        for option, text in blocks.items():
            if option == "-h":
                continue
            assert text, f"{command} {option} has no help text"
            assert "default" in text or option == "--name" or "(off" in text, f"{command} {option}: {text}"
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    serve = _option_blocks(capsys.readouterr().out)
    assert "(default: 127.0.0.1)" in serve["--host"] and "(default: 8000)" in serve["--port"]
    assert "(default: 10.0)" in serve["--idle-timeout"] and "default: 1000" in serve["--max-connections"]
    assert "default: none" in serve["--trusted-proxy"] and "mcp-shopping-course" in serve["--audit-log"]
