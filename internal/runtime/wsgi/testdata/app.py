"""WSGI apps for the runtime's tests: one WSGI callable per behaviour."""
import hashlib
import json
import os
import random
import sys

STATE = {"imported_in": os.getpid(), "warmups": [], "requests": 0, "hooked_in": None}


def stoke_after_fork():
    """Stoke's after-fork hook: runs in each forked instance."""
    if os.environ.get("APP_FAIL_HOOK"):
        raise RuntimeError("after-fork hook failed on purpose")
    wait = os.environ.get("APP_HOOK_WAITS_FOR")
    while wait and not os.path.exists(wait):
        import time

        time.sleep(0.005)  # a test holds the instance's init here
    STATE["hooked_in"] = os.getpid()
    STATE["hook_saw_id"] = os.environ.get("STOKE_INSTANCE_ID")

if os.environ.get("APP_BALLAST_MB"):
    # Memory the template holds (written, so its pages are resident), which
    # its forks share.
    BALLAST = b"x" * (int(os.environ["APP_BALLAST_MB"]) << 20)

if os.environ.get("APP_FAIL_IMPORT"):
    raise RuntimeError("broken at import: " + os.environ["APP_FAIL_IMPORT"])


def app(environ, start_response):
    path = environ["PATH_INFO"]
    STATE["requests"] += 1
    if environ.get("HTTP_USER_AGENT") == "stoke-warmup":
        STATE["warmups"].append(os.getpid())
    if path == "/whoami":
        body = json.dumps({"pid": os.getpid(), "random": random.random(), "imported_in": STATE["imported_in"],
                           "warmups": STATE["warmups"], "requests": STATE["requests"],
                           "hooked_in": STATE["hooked_in"], "hook_saw_id": STATE.get("hook_saw_id"), "instance_id": os.environ.get("STOKE_INSTANCE_ID"),
                           "log_stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo" or path.startswith("/echo/"):
        # The request as the app sees it, and its body's digest.
        body = environ["wsgi.input"].read()
        out = {k: v for k, v in environ.items() if isinstance(v, str)}
        out["body_sha256"] = hashlib.sha256(body).hexdigest()
        out["body_len"] = len(body)
        # PEP 3333's non-str values, and what wsgiref's validator says of it all.
        for k in ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                  "wsgi.input_terminated"):
            out[k] = environ.get(k)
        out["nonstr_keys"] = sorted(k for k, v in environ.items() if not k.startswith("wsgi.")
                                    and (type(k) is not str or type(v) is not str))
        out["check_environ"] = check_environ(environ)
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
    if path in CONFORMANCE:
        return CONFORMANCE[path](environ, start_response)
    if path.startswith("/validated/"):
        # The conformance app wrapped in wsgiref's validator, which checks
        # the server's side of PEP 3333 too (start_response, iteration, close).
        environ["PATH_INFO"] = path[len("/validated"):]
        return VALIDATED(environ, start_response)
    start_response("404 Not Found" if path != "/" else "200 OK", [("Content-Type", "text/plain")])
    return [("path " + path).encode("latin-1")]


def check_environ(environ):
    """wsgiref's environ checks: "ok" or what failed."""
    from wsgiref.validate import check_environ as check

    try:
        check(environ)
    except AssertionError as e:
        return "AssertionError: %s" % e
    return "ok"


def query(environ):
    from urllib.parse import parse_qs

    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def status(environ, start_response):
    """/status?code=204&body=x: that status, with that body (even if HTTP has none)."""
    q = query(environ)
    code = q.get("code", "200")
    start_response("%s %s" % (code, q.get("reason", "Whatever")), [("X-Code", code)])
    return [q["body"].encode()] if "body" in q else []


def headers(environ, start_response):
    """/headers: repeated, latin-1 and hop-by-hop headers."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Multi", "a"), ("X-Multi", "b"),
                              ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                              ("X-Latin1", "caf\xe9"), ("x-lower-case", "kept"),
                              ("Connection", "close"), ("Keep-Alive", "timeout=5")])
    return [b"headers"]


def read_some(environ, start_response):
    """/read-some?n=10: reads n bytes of the body and leaves the rest."""
    n = int(query(environ).get("n", "10"))
    data = environ["wsgi.input"].read(n)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [data]


def noread(environ, start_response):
    """/noread: ignores the body."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ignored the body"]


def readlines(environ, start_response):
    """/readlines: what wsgi.input's readline(size), readline(None),
    read(size), readlines() and read() give, in turn."""
    inp = environ["wsgi.input"]
    out = {}
    first = inp.readline(4)
    rest_of_line = inp.readline(None)
    out["readline4"] = first.decode("latin-1")
    out["readline"] = rest_of_line.decode("latin-1")
    out["read3"] = inp.read(3).decode("latin-1")
    two = inp.readlines()
    out["readlines"] = [x.decode("latin-1") for x in two]
    out["after"] = inp.read().decode("latin-1")
    out["readline_at_eof"] = inp.readline().decode("latin-1")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def chunks(environ, start_response):
    """/chunks: empty strings between chunks of the body must not end it."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"", b"a", b"", b"b", b""]


def empty(environ, start_response):
    """/empty: headers only; the iterable yields nothing."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Empty", "yes")])
    return []


def exc_info(environ, start_response):
    """/exc-info: PEP 3333's error handling: start_response again with
    exc_info before anything was sent replaces the status and headers."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Dropped", "yes")])
    try:
        raise KeyError("boom")
    except KeyError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"handled"]


def exc_info_late(environ, start_response):
    """/exc-info-late: start_response with exc_info after the head went out
    must re-raise the error."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial")
    try:
        raise KeyError("late")
    except KeyError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"not reached"]


def no_start_response(environ, start_response):
    """/no-start-response: a body without start_response is an error."""
    return [b"body"]


def str_body(environ, start_response):
    """/str-body: a str in the iterable is an error (PEP 3333: bytestrings only)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["not bytes"]


def bad_header(environ, start_response):
    """/bad-header: a header value that is not latin-1 is an error."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Euro", "\u20ac")])
    return [b"euro"]


def conforming(environ, start_response):
    """What VALIDATED serves: /echo-body, /write, /stream, /file, /empty."""
    path = environ["PATH_INFO"]
    if path == "/echo-body":
        n = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(n))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/stream":
        def gen():
            for i in range(5):
                yield b"%d" % i

        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/x-python")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"), 1000)
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def _validated():
    from wsgiref.validate import validator

    return validator(conforming)


VALIDATED = _validated()

CONFORMANCE = {
    "/status": status,
    "/headers": headers,
    "/read-some": read_some,
    "/noread": noread,
    "/readlines": readlines,
    "/chunks": chunks,
    "/empty": empty,
    "/exc-info": exc_info,
    "/exc-info-late": exc_info_late,
    "/no-start-response": no_start_response,
    "/str-body": str_body,
    "/bad-header": bad_header,
}

notcallable = 42
