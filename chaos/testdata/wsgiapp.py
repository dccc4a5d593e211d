"""A WSGI app for the chaos suite: /raise raises, /exit kills its process
mid-request, /sleep?ms=N answers after N ms, anything else answers with its
pid."""
import os
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/py/raise":
        raise RuntimeError("chaos: the app raised on purpose")
    if path == "/py/exit":
        os._exit(1)
    if path == "/py/sleep":
        time.sleep(int(environ.get("QUERY_STRING", "ms=0").split("=")[1]) / 1000)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok %d" % os.getpid()]
