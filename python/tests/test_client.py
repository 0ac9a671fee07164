import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from stepwise import AsyncClient, Client
from stepwise.client import ServeError


class _Handler(BaseHTTPRequestHandler):
    calls: list = []  # noqa: RUF012 (shared with the tests on purpose)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.calls.append((self.path, self.headers.get("Authorization"), body))
        if len(_Handler.calls) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"results": [{"reward": 1.0}]}).encode())

    def log_message(self, *a):
        pass


@pytest.fixture()
def server():
    _Handler.calls = []
    s = HTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{s.server_address[1]}"
    s.shutdown()


def test_client_retries_on_503_honouring_retry_after(server):
    c = Client(server, token="t0k", retries=2)
    out = c.rewards([{"response": "\\boxed{1}", "gold": "1"}])
    assert out["results"][0]["reward"] == 1.0
    assert len(_Handler.calls) == 2
    assert _Handler.calls[1][1] == "Bearer t0k"


def test_async_client(server):
    import asyncio

    out = asyncio.run(AsyncClient(server, retries=2).arewards([{"response": "1", "gold": "1"}]))
    assert out["results"][0]["reward"] == 1.0


def test_client_gives_up_with_the_url():
    with pytest.raises(ServeError, match="127.0.0.1:9"):
        Client("http://127.0.0.1:9", retries=1, backoff=0.0).health()
