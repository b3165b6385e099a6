"""A stand-in ClickHouse server for the tests: real ClickHouse (chdb, embedded) behind ClickHouse's
HTTP interface on loopback, so the ``clickhouse://`` backend's real client (clickhouse-connect)
is tested end to end. No ClickHouse server package usable here (Debian's is too old), hence this.

    python tests/chdb_http.py DATA_DIR      # prints the port, then serves until killed

What it speaks of the interface: the query in the body (or ``?query=``, with the body after it),
``database`` and the query's settings as URL parameters (applied with ``SET`` before it, as the
server applies them to the query), the format from a trailing ``FORMAT`` clause (TabSeparated
without one), the result as the body with ``X-ClickHouse-Format``/``-Timezone``/``-Query-Id``
headers, and errors as HTTP 500 with ClickHouse's own message and ``X-ClickHouse-Exception-
Code``. One chdb session serves every request in turn (a single-threaded server), so the temporary
tables of one client's session live across its queries, as a session_id would keep them.
"""

from __future__ import annotations

import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, urlparse

# URL parameters of the HTTP interface that are not query settings.
NOT_SETTINGS = {
    "query", "database", "session_id", "session_timeout", "session_check", "query_id",
    "default_format", "compress", "decompress", "user", "password", "quota_key",
    "wait_end_of_query", "buffer_size", "enable_http_compression", "client_protocol_version",
}  # fmt: skip
FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


def serve(data: str) -> None:
    from chdb import session

    ch = session.Session(data)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            url = urlparse(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size).decode() if size else ""
            query = (params.get("query", "") + ("\n" if params.get("query") else "") + body).strip()
            query_id = params.get("query_id") or str(uuid.uuid4())
            try:
                ch.query(f"USE {params.get('database') or 'default'}")
                for key, value in params.items():
                    if key not in NOT_SETTINGS:
                        literal = value if re.fullmatch(r"-?\d+(\.\d+)?", value) else repr(value)
                        ch.query(f"SET {key} = {literal}")
                found = FORMAT.search(query)
                fmt = found.group(1) if found else "TabSeparated"
                if found:
                    query = query[: found.start()]
                result = ch.query(query, fmt).bytes() if query else b""
            except Exception as exc:  # ClickHouse's message, as the server sends it
                text = str(exc)
                code = re.search(r"Code: (\d+)", text)
                self.send_response(500)
                self.send_header("X-ClickHouse-Exception-Code", code.group(1) if code else "1")
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                payload = text.encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_response(200)
            self.send_header("X-ClickHouse-Format", fmt)
            self.send_header("X-ClickHouse-Timezone", "UTC")
            self.send_header("X-ClickHouse-Query-Id", query_id)
            self.send_header("X-ClickHouse-Summary", "{}")
            self.send_header("Content-Length", str(len(result)))
            self.end_headers()
            self.wfile.write(result)

        do_GET = _answer
        do_POST = _answer

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1])
