"""A real nginx (Debian's ``nginx`` package) in front of one recipe server.

``Nginx(template, upstream)`` renders one of ``shared/deploy/nginx``'s site
templates as a user would with ``envsubst`` (only ``${BANK_LISTEN}`` and
``${BANK_UPSTREAM}``), wraps it in a main configuration of its own (a folder
for its pid, logs and temporary files), and runs ``nginx`` in the foreground
on a free loopback port. As root (CI) its workers run as ``nobody``. With
``tls=``, the site takes HTTPS as its comment says a user makes it: its three
commented lines in place of its ``listen``, naming a certificate made by
``self_signed_certificate``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import psutil

from cookbook_testing.http import HTTPClient
from cookbook_testing.processes import wait_for
from cookbook_testing.servers import free_port

__all__ = ["Nginx", "nginx_binary", "render_site", "self_signed_certificate", "with_hosts", "with_tls"]

#: How long nginx may take to listen, and to stop.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0
#: The file of uWSGI parameters Debian's nginx package ships, which the uWSGI site includes.
UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")
#: The variables a site template has; nginx's own ``$variables`` are left alone.
TEMPLATE_VARIABLES = ("BANK_LISTEN", "BANK_UPSTREAM")
#: Each line of the access log: who connected, what they claimed, the request, the
#: servers nginx passed it to (``$upstream_addr``: comma-separated if it passed it on
#: to another; ``-`` if none), and the answer.
ACCESS_LOG_FORMAT = '$remote_addr "$http_x_forwarded_for" "$request" "$upstream_addr" $status'

MAIN_CONF = """\
{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{
    worker_connections 512;
}}
http {{
    log_format forwarded '{log_format}';
    access_log {root}/access.log forwarded;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    uwsgi_temp_path {root}/tmp/uwsgi;
    fastcgi_temp_path {root}/tmp/fastcgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/site.conf;
}}
"""


def nginx_binary() -> str | None:
    """Where Debian's package puts ``nginx`` (``/usr/sbin``, often not on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, made by Debian's ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        msg = "openssl is not installed (Debian: apt-get install openssl)"
        raise RuntimeError(msg)
    certificate, key = folder / "bank.pem", folder / "bank.key"
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(certificate)]
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files]
    subprocess.run(command, check=True, capture_output=True, timeout=START_TIMEOUT)
    return certificate, key


def with_tls(site: str, certificate: Path, key: Path) -> str:
    """The rendered site taking HTTPS: its ``listen`` line replaced by the three
    commented lines below it, naming ``certificate`` and ``key``."""
    plain = re.search(r"^    listen \S+;\n", site, re.MULTILINE)
    listen = re.search(r"^    #   (listen \S+ ssl;)$", site, re.MULTILINE)
    named = re.findall(r"^    #   (ssl_certificate|ssl_certificate_key)\s+\S+;$", site, re.MULTILINE)
    assert plain and listen and named == ["ssl_certificate", "ssl_certificate_key"], "the site's TLS lines moved"
    lines = [listen[1], f"ssl_certificate {certificate};", f"ssl_certificate_key {key};"]
    return site.replace(plain[0], "".join(f"    {line}\n" for line in lines), 1)


def with_hosts(site: str, upstreams: Sequence[str]) -> str:
    """The rendered site passing requests to several hosts: its upstream's one
    ``server`` line, naming the first, followed by one line for each other."""
    line = re.search(r"^    server (\S+);\n", site, re.MULTILINE)
    assert line and line[1] == upstreams[0], "the site's server line moved"
    return site.replace(line[0], "".join(f"    server {upstream};\n" for upstream in upstreams), 1)


def render_site(template: str, values: dict[str, str]) -> str:
    """``envsubst '${BANK_LISTEN} ${BANK_UPSTREAM}'``: those two, nothing else."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    pattern = r"\$\{(" + "|".join(TEMPLATE_VARIABLES) + r")\}"
    return re.sub(pattern, value, template)


class Nginx:
    """nginx serving ``template`` (a ``shared/deploy/nginx`` site) on a free loopback
    port, in front of ``upstream`` (``host:port``, or several: one per host); started
    by ``start()`` or ``with``."""

    def __init__(
        self,
        template: Path,
        upstream: str | Sequence[str],
        *,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.template = template
        self.upstreams = [upstream] if isinstance(upstream, str) else list(upstream)
        self.host = host
        #: (certificate, key): the site takes HTTPS, with these.
        self.tls = tls
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="cookbook-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            msg = "nginx is not installed (Debian: apt-get install nginx)"
            raise RuntimeError(msg)
        self.port = free_port()
        listen = f"{self.host}:{self.port}"
        site = render_site(self.template.read_text(), {"BANK_LISTEN": listen, "BANK_UPSTREAM": self.upstreams[0]})
        if len(self.upstreams) > 1:
            site = with_hosts(site, self.upstreams)
        if self.tls is not None:
            site = with_tls(site, *self.tls)
        (self.root / "site.conf").write_text(site)
        # The site includes uwsgi_params by a name relative to the main file's folder: the
        # package's own file (Debian's; it maps the request to uWSGI's variables).
        shutil.copy(UWSGI_PARAMS, self.root)
        root_user = os.geteuid() == 0
        (self.root / "tmp").mkdir(mode=0o777 if root_user else 0o700)
        os.chmod(self.root, 0o755)  # noqa: S103 - mkdtemp's 0700 would keep nobody's workers out
        (self.root / "nginx.conf").write_text(
            MAIN_CONF.format(
                user="user nobody nogroup;\n" if root_user else "",
                root=self.root,
                log_format=ACCESS_LOG_FORMAT,
            )
        )
        command = [
            binary,
            "-p",
            str(self.root),
            "-c",
            str(self.root / "nginx.conf"),
            "-e",
            str(self.root / "error.log"),
        ]
        # Checked first: a configuration nginx refuses is a clear error, not a port that never opens.
        subprocess.run([*command, "-t", "-q"], check=True, capture_output=True, timeout=START_TIMEOUT)
        self.process = subprocess.Popen([*command, "-g", "daemon off;"], stdin=subprocess.DEVNULL)
        wait_for(lambda: accepts(self.host, self.port), START_TIMEOUT, "nginx to listen")
        return self

    @property
    def client(self) -> HTTPClient:
        """A client of the site, through nginx."""
        return HTTPClient(self.host, self.port)

    def reload(self) -> None:
        """SIGHUP: new workers with the configuration, the old ones finish their requests."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        return set()

    def take_out(self, upstream: str) -> None:
        """Take one host out of turn, as an operator does before stopping it: its
        ``server`` line marked ``down``, and a graceful reload. Returns once nginx's
        old workers have finished what they held: no request goes there after."""
        site = self.root / "site.conf"
        line = f"    server {upstream};\n"
        assert line in site.read_text(), f"{upstream} is not one of nginx's hosts"
        site.write_text(site.read_text().replace(line, f"    server {upstream} down;\n"))
        old = self.worker_pids()
        self.reload()
        wait_for(lambda: not self.worker_pids() & old, STOP_TIMEOUT, "nginx's old workers to finish")

    def stop(self) -> None:
        """SIGQUIT (a graceful stop), SIGKILL if that takes longer than ``STOP_TIMEOUT``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)

    def access_log(self) -> list[str]:
        """Its whole lines (one being written is left for the next read)."""
        path = self.root / "access.log"
        log = path.read_text() if path.exists() else ""
        return log[: log.rfind("\n") + 1].splitlines()

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text() if path.exists() else ""

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
