"""WSGI apps for the runtime's tests: one WSGI callable per behaviour."""
import hashlib
import json
import os
import random
import sys

STATE = {"imported_in": os.getpid(), "warmed_in": None, "requests": 0}

if os.environ.get("APP_FAIL_IMPORT"):
    raise RuntimeError("broken at import: " + os.environ["APP_FAIL_IMPORT"])


def app(environ, start_response):
    path = environ["PATH_INFO"]
    STATE["requests"] += 1
    if environ.get("HTTP_USER_AGENT") == "stoke-warmup":
        STATE["warmed_in"] = os.getpid()
    if path == "/whoami":
        body = json.dumps({"pid": os.getpid(), "random": random.random(), "imported_in": STATE["imported_in"],
                           "warmed_in": STATE["warmed_in"], "requests": STATE["requests"]}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo":
        # The request as the app sees it, and its body's digest.
        body = environ["wsgi.input"].read()
        out = {k: v for k, v in environ.items() if isinstance(v, str)}
        out["body_sha256"] = hashlib.sha256(body).hexdigest()
        out["body_len"] = len(body)
        start_response("200 OK", [("Content-Type", "application/json"), ("X-Multi", "a"), ("X-Multi", "b")])
        return [json.dumps(out).encode()]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(lines)).encode(), b" ", lines[-1] if lines else b""]
    if path == "/stream":
        n = int(environ.get("QUERY_STRING", "n=3").split("=")[1])

        def gen():
            for i in range(n):
                yield ("chunk %d\n" % i).encode()

        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/close":
        class Result:
            def __iter__(self):
                yield b"closing"

            def close(self):
                print("close() called", flush=True)

        start_response("200 OK", [])
        return Result()
    if path == "/file":
        f = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/x-python")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/write":
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/raise":
        raise ValueError("the app failed on purpose")
    if path == "/raise-late":
        def gen():
            yield b"partial"
            raise ValueError("failed mid-body")

        start_response("200 OK", [])
        return gen()
    if path == "/big":
        n = int(environ.get("QUERY_STRING", "n=0").split("=")[1])
        start_response("200 OK", [("Content-Length", str(n))])
        return [b"x" * n]
    if path == "/alloc":
        mb = int(environ.get("QUERY_STRING", "mb=0").split("=")[1])
        keep = bytearray(mb << 20)
        for i in range(0, len(keep), 4096):
            keep[i] = 1
        start_response("200 OK", [])
        return [b"allocated %d" % len(keep)]
    if path == "/log":
        print("hello from the app")
        print("to stderr", file=sys.stderr)
        start_response("200 OK", [])
        return [b"logged"]
    if path == "/exit":
        os._exit(3)
    start_response("404 Not Found" if path != "/" else "200 OK", [("Content-Type", "text/plain")])
    return [("path " + path).encode("latin-1")]


notcallable = 42
