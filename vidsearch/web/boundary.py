"""Who may talk to the server: requests for a host name it is not reached by are refused (DNS rebinding), and
other sites' pages cannot use it (cross-site requests), whether or not it has a token (auth.py).

A page on another site can make a browser send requests to a server on this machine: `<img src=...>` starts work
(clips, searches) without reading the answer, and a host name of the attacker's that is made to resolve to
127.0.0.1 (DNS rebinding) would even let it read the answers. The first is stopped by the Fetch metadata and
Origin headers browsers send, the second by answering only to the names this server is reached by."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.exceptions import BadRequest, Forbidden
from werkzeug.sansio.utils import host_is_trusted

LOOPBACK_NAMES = ("localhost",)  # with the loopback addresses: 127.0.0.0/8 and ::1
WILDCARDS = ("0.0.0.0", "::", "")  # listening on every address of the machine
OTHER_SITE = ("cross-site", "same-site")  # Sec-Fetch-Site values of a request made by another origin's page
HOST = re.compile(r"([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?", re.ASCII | re.IGNORECASE)  # name[:port]
NAME = re.compile(r"\.?[a-z0-9.-]+|\[?[0-9a-f:.]+\]?", re.ASCII | re.IGNORECASE)  # what --allow-host takes
PAGES = "pages"  # the blueprint whose pages a link on another site may open (a plain navigation, GET)


class Hosts:
    """The host names a request may name: loopback ones, and `names` (names or addresses the server is reached by;
    a name starting with "." allows its subdomains). A wildcard address among them (0.0.0.0, ::) allows every IP
    address: a page at an address is that address's own origin, so an address cannot be rebound."""

    def __init__(self, names: Iterable[str] = ()):
        names = [n.strip().lower() for n in names]
        self.any_address = any(n in WILDCARDS for n in names)
        self.addresses, self.names = set(), list(LOOPBACK_NAMES)
        for n in (n for n in names if n not in WILDCARDS):
            try:
                self.addresses.add(ipaddress.ip_address(n.strip("[]")))
            except ValueError:
                self.names.append(n)

    def allows(self, host: str) -> bool:
        """Whether a Host header value (name or address, with any port) is one this server answers to."""
        m = HOST.fullmatch(host)
        if m is None:
            return False
        try:
            address = ipaddress.ip_address(m[1].strip("[]"))
        except ValueError:
            return host_is_trusted(host.lower(), self.names)  # werkzeug's match: IDNA, ".name" for subdomains
        return address.is_loopback or self.any_address or address in self.addresses


def from_other_site() -> bool:
    """Whether a browser sent this request for a page of another origin: Sec-Fetch-Site says so, or an Origin
    header names another host. Programs (curl, the CLI) send neither."""
    if request.headers.get("Sec-Fetch-Site", "").lower() in OTHER_SITE:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    # Host and port only: behind a proxy that ends TLS the page is https while this server sees http.
    return origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("Host", "").lower()


def _plain_navigation() -> bool:
    """A link followed to one of the pages: opening it costs no more than a bookmark does."""
    return request.method in ("GET", "HEAD") and request.blueprint == PAGES and \
        request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate" and \
        request.headers.get("Sec-Fetch-Dest", "document") == "document" and "Origin" not in request.headers


def init_app(app: Flask, hosts: Hosts) -> None:
    @app.before_request
    def guard() -> None:
        host = request.headers.get("Host")
        if host is not None and not hosts.allows(host):  # no Host: HTTP/1.0, not a browser
            name = host[:100] if HOST.fullmatch(host) else "this Host header"
            raise BadRequest(f"This server does not answer to {name}: open it as localhost or 127.0.0.1, or start "
                             f"it with --allow-host NAME for each name it is reached by.")
        if request.endpoint != "static" and from_other_site() and not _plain_navigation():
            raise Forbidden("Another site's page cannot use this server: open vidsearch from its own address "
                            "(a bookmark or the address bar).")
