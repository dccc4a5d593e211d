# Stoke's WSGI shim: runs one WSGI app for Stoke's python-wsgi runtime.
# Embedded in the stoke binary and run as `python -c <this file>`; it needs
# nothing outside the standard library.
#
# Modes (STOKE_WSGI_MODE):
#   template  imports the app, serves it one warm-up request, freezes the GC
#             and then forks instances on Stoke's request (fork snapshot).
#   instance  imports the app and serves it itself (snapshot: false).
#
# Instance connection (a stream socket): frames of a 4-byte big-endian length
# of what follows, a 1-byte type and a payload.
#   Stoke -> shim  I  go-ahead for a forked instance (it is in its cgroup),
#                     {"env"}; a spare gets it again once claimed, whose env
#                     is then its instance's (id, log stream)
#                  Q  request head (JSON), then B body chunks, an empty B ends
#   shim -> Stoke  h  hello {"id", "pid"} (instance mode, first frame)
#                  R  ready {"init_ms"}     E  init failed {"errorType", ...}
#                  H  response head (JSON), D data chunks, Z end,
#                  X  the app raised (JSON error); the response ends there
# Template control connection (a SOCK_SEQPACKET socket, one JSON per packet):
#   Stoke -> shim  {"op":"fork","id"} with fds [instance conn, stdout, stderr]
#   shim -> Stoke  {"op":"ready"|"error"|"forked"|"fork_failed"|"exit", ...};
#                  "forked" carries a pidfd of the child: in its own PID
#                  namespace the template's pids mean nothing to Stoke
# Both connections are socketpairs whose end is this process's fd
# STOKE_WSGI_FD (3): no socket anyone else could connect to.

import gc
import io
import json
import os
import random
import signal
import socket
import struct
import sys
import time
import traceback

T0 = time.monotonic()
HEADER = struct.Struct(">IB")
MAX_CHUNK = 1 << 20


def error_payload(exc, error_type):
    return {
        "errorType": error_type,
        "errorMessage": "%s: %s" % (type(exc).__name__, exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
        "python": describe_python(),
    }


# Import name -> distribution name of the web frameworks worth naming.
FRAMEWORKS = [("django", "Django"), ("rest_framework", "djangorestframework"), ("flask", "Flask"),
              ("werkzeug", "Werkzeug"), ("falcon", "falcon"), ("bottle", "bottle"), ("pyramid", "pyramid")]


def describe_python():
    """The interpreter (path, version) and the frameworks it has imported,
    so every report names what ran the app."""
    found = {}
    for mod, dist in FRAMEWORKS:
        if mod not in sys.modules:
            continue
        try:
            from importlib.metadata import version

            found[dist] = version(dist)
        except Exception:
            found[dist] = str(getattr(sys.modules[mod], "__version__", "?"))
    return {"executable": sys.executable, "version": sys.version.split()[0], "frameworks": found}


# Modules whose stoke_after_fork() runs in each forked instance: the
# handler's module, or the Django settings module.
HOOK_MODULES = []


def load_app():
    """Imports the app: the handler module:callable, or Django's WSGI app."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    handler = os.environ.get("STOKE_WSGI_HANDLER", "")
    if handler:
        mod_name, _, attr = handler.partition(":")
        HOOK_MODULES.append(mod_name)
        try:
            mod = __import__(mod_name, fromlist=["_"])
        except Exception as e:
            raise InitError(e, "Runtime.ImportModuleError")
        app = mod
        try:
            for part in attr.split("."):
                app = getattr(app, part)
        except AttributeError as e:
            raise InitError(e, "Runtime.HandlerNotFound")
        if not callable(app):
            raise InitError(TypeError("%s is not callable" % handler), "Runtime.HandlerNotFound")
        return app
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", os.environ["STOKE_WSGI_DJANGO_SETTINGS"])
    HOOK_MODULES.append(os.environ["DJANGO_SETTINGS_MODULE"])
    try:
        from django.core.wsgi import get_wsgi_application
        return get_wsgi_application()
    except Exception as e:
        raise InitError(e, "Runtime.ImportModuleError")


def init_or_exit(step, report, exit):
    """Runs an init step and returns its result; if it raises, prints the
    traceback (the log), reports the error to Stoke and exits: what failed
    to initialise never serves."""
    try:
        return step()
    except InitError as e:
        exc, error_type = e.exc, e.error_type
    except Exception as e:
        exc, error_type = e, "Runtime.InitError"
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    report(error_payload(exc, error_type))
    exit(1)


def exit_when_read(sock, exit):
    """The exit of an init failure reported on sock: first wait until Stoke
    closes sock (it has read the report then; it closes it on every
    failure, and the kernel does if Stoke dies), so Stoke never finds the
    process gone before it could read why."""

    def wait_then_exit(code):
        try:
            while sock.recv(1 << 16):
                pass
        except OSError:
            pass
        exit(code)

    return wait_then_exit


class InitError(Exception):
    def __init__(self, exc, error_type):
        super().__init__(str(exc))
        self.exc, self.error_type = exc, error_type


class Conn:
    """One framed stream connection to Stoke."""

    def __init__(self, sock):
        self.sock = sock
        self.r = sock.makefile("rb", buffering=64 << 10)

    def send(self, typ, payload=b""):
        self.sock.sendall(HEADER.pack(len(payload) + 1, typ) + payload)

    def send_json(self, typ, obj):
        self.send(typ, json.dumps(obj, separators=(",", ":")).encode())

    def recv(self):
        head = self.r.read(5)
        if len(head) < 5:
            raise EOFError
        n, typ = HEADER.unpack(head)
        payload = self.r.read(n - 1) if n > 1 else b""
        if len(payload) < n - 1:
            raise EOFError
        return typ, payload


class Input(io.RawIOBase):
    """wsgi.input: the request body, read from B frames as the app asks."""

    def __init__(self, conn):
        # A bytearray: appending to it and deleting from its front are cheap,
        # where bytes would be copied whole each time (quadratic in the body).
        self.conn, self.buf, self.eof = conn, bytearray(), False

    def readable(self):
        return True

    def _more(self):
        if self.eof:
            return False
        typ, payload = self.conn.recv()
        if typ != ord("B"):
            raise IOError("protocol: body frame expected, got %r" % chr(typ))
        if not payload:
            self.eof = True
            return False
        self.buf += payload
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            return self._take(len(self.buf))
        while len(self.buf) < size and self._more():
            pass
        return self._take(size)

    def readinto(self, b):
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size=-1):
        if size is None:
            size = -1
        seen = 0  # no newline before it: each byte is searched once
        while True:
            i = self.buf.find(b"\n", seen)
            if i >= 0:
                end = i + 1
                break
            seen = len(self.buf)
            if 0 <= size <= seen or not self._more():
                end = seen
                break
        if size >= 0:
            end = min(end, size)
        return self._take(end)

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def drain(self):
        while self._more():
            self.buf.clear()
        self.buf.clear()


class FileWrapper:
    """wsgi.file_wrapper (PEP 3333): iterates a file in blocks."""

    def __init__(self, filelike, blksize=64 << 10):
        self.filelike, self.blksize = filelike, blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def environ_for(head, wsgi_input):
    path = head.get("path", "/")
    from urllib.parse import unquote_to_bytes

    host = head.get("host", "localhost")
    name, _, port = host.rpartition(":") if ":" in host and not host.endswith("]") else (host, "", "")
    env = {
        "REQUEST_METHOD": head.get("method", "GET"),
        "SCRIPT_NAME": "",
        # PEP 3333: native strings holding the bytes as latin-1.
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": head.get("query", ""),
        "SERVER_NAME": name or "localhost",
        "SERVER_PORT": port or ("443" if head.get("scheme") == "https" else "80"),
        "SERVER_PROTOCOL": head.get("proto", "HTTP/1.1"),
        "REMOTE_ADDR": head.get("remote_addr", "127.0.0.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": head.get("scheme", "http"),
        "wsgi.input": wsgi_input,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
    }
    if head.get("remote_port"):
        env["REMOTE_PORT"] = head["remote_port"]
    for k, v in head.get("headers", []):
        if "_" in k:
            # X_User would pass for X-User (both HTTP_X_USER); gunicorn,
            # waitress and nginx drop such headers too.
            continue
        key = k.upper().replace("-", "_")
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            env[key] = v
            continue
        key = "HTTP_" + key
        env[key] = env[key] + "," + v if key in env else v
    if head.get("length", -1) >= 0:
        env["CONTENT_LENGTH"] = str(head["length"])
    env["HTTP_HOST"] = host
    return env


def run_app(app, env, on_head, on_data):
    """Calls a WSGI app per PEP 3333; headers go out with the first
    non-empty body chunk (or at the end)."""
    state = {"head": None, "sent": False}

    def send_head():
        if not state["sent"]:
            state["sent"] = True
            on_head(state["head"])

    def write(data):
        if state["head"] is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # Before the head goes out, so the client gets a clean error.
            raise TypeError("the app gave %s for the body; PEP 3333 wants bytes" % type(data).__name__)
        if data:
            send_head()
            on_data(data)

    def start_response(status, headers, exc_info=None):
        if exc_info:
            try:
                if state["sent"]:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif state["head"] is not None:
            raise AssertionError("start_response() called twice without exc_info")
        # PEP 3333: str holding latin-1, checked here so the app sees the error.
        if type(status) is not str:
            raise TypeError("status %r is not a str" % (status,))
        status.encode("latin-1")
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError("header %r: name and value must be str" % ((name, value),))
            name.encode("latin-1")
            value.encode("latin-1")
        state["head"] = (status, headers)
        return write

    result = app(env, start_response)
    try:
        for data in result:
            if data:
                write(data)
        if state["head"] is None:
            raise AssertionError("the app returned without calling start_response()")
        send_head()
    finally:
        if hasattr(result, "close"):
            result.close()


def serve(conn, app):
    """The request loop of one instance, until Stoke closes the connection."""
    Q, B, I = ord("Q"), ord("B"), ord("I")
    while True:
        try:
            typ, payload = conn.recv()
        except (EOFError, OSError):
            return
        if typ != Q:
            if typ == B:
                continue  # the rest of a body the app did not read
            if typ == I:
                # A spare that did its after-fork work ahead of demand is
                # claimed: its instance's own id and log stream.
                os.environ.update(json.loads(payload).get("env", {}) if payload else {})
                continue
            raise SystemExit("protocol: request expected, got %r" % chr(typ))
        head = json.loads(payload)
        body = Input(conn)
        env = environ_for(head, body)
        started = [False]

        def on_head(h):
            status, headers = h
            conn.send_json(ord("H"), {"status": status, "headers": headers})
            started[0] = True

        def on_data(data):
            for i in range(0, len(data), MAX_CHUNK):
                conn.send(ord("D"), bytes(data[i : i + MAX_CHUNK]))

        try:
            run_app(app, env, on_head, on_data)
            conn.send(ord("Z"))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as e:
            traceback.print_exc()
            err = error_payload(e, "Runtime.UnhandledError")
            err["started"] = started[0]
            conn.send_json(ord("X"), err)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            body.drain()
        except (EOFError, OSError):
            return


def warmup_host():
    """The Host of the warm-up request: readiness.host, else for Django the
    first ALLOWED_HOSTS entry that is not a wildcard (else the domain of a
    ".example.com" entry), else localhost (which Django accepts with DEBUG
    on and ALLOWED_HOSTS empty). A host the app refuses (DisallowedHost)
    would warm nothing."""
    host = os.environ.get("STOKE_WSGI_WARMUP_HOST", "")
    if host:
        return host
    if "django.conf" in sys.modules:
        try:
            from django.conf import settings

            hosts = [str(h).strip() for h in settings.ALLOWED_HOSTS]
        except Exception:
            hosts = []
        for h in hosts:
            if h and "*" not in h and not h.startswith("."):
                return h
        for h in hosts:
            if h.startswith(".") and len(h) > 1 and "*" not in h:
                return h[1:]
    return "localhost"


class Capture:
    """Collects the warnings an app logs while it answers the warm-up
    request: the reason for a 4xx (Django's DisallowedHost) is logged, not
    in the response."""

    def __init__(self):
        import logging

        class Handler(logging.Handler):
            def emit(handler, record):
                self.records.append(record)

        self.records = []
        self.handler = Handler(logging.WARNING)
        # Django's loggers may not propagate to the root (a LOGGING dict
        # with propagate: False), so listen on its own too.
        self.loggers = [logging.getLogger(), logging.getLogger("django")]

    def __enter__(self):
        for lg in self.loggers:
            lg.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        for lg in self.loggers:
            lg.removeHandler(self.handler)

    def reason(self):
        """The first warning logged, as "logger: message"; "" if none."""
        for r in self.records:
            try:
                msg = r.getMessage()
            except Exception:
                msg = str(r.msg)
            return "%s: %s" % (r.name, msg.splitlines()[0] if msg else "")
        return ""


def warm_up(app):
    """One request to the readiness path, so lazy initialisation (URL
    routes, views, templates, first queries) happens before the snapshot.
    Returns the status and, for a 4xx, why: the app answered but refused
    the request, so little of it ran."""
    path = os.environ.get("STOKE_WSGI_WARMUP", "/")
    lo, _, hi = os.environ.get("STOKE_WSGI_WARMUP_STATUS", "100-499").partition("-")
    p, _, q = path.partition("?")
    body = Input(None)
    body.eof = True
    host = warmup_host()
    head = {"method": "GET", "path": p, "query": q, "host": host,
            "headers": [["User-Agent", "stoke-warmup"]]}
    got = {}
    chunks = []

    def on_data(d):
        if sum(len(c) for c in chunks) < 512:
            chunks.append(bytes(d))

    with Capture() as cap:
        run_app(app, environ_for(head, body), lambda h: got.update(status=h[0]), on_data)
    code = int(got.get("status", "0").split(" ", 1)[0] or 0)
    if not int(lo) <= code <= int(hi or lo):
        raise InitError(RuntimeError("warm-up request GET %s (Host: %s) answered %s; healthy is %s-%s"
                                     % (path, host, got.get("status"), lo, hi)), "Runtime.InitError")
    warning = ""
    if 400 <= code < 500:
        why = cap.reason()
        if not why:
            text = b"".join(chunks)[:512].decode("utf-8", "replace")
            why = " ".join(text.split())[:200]
        warning = "warm-up request GET %s (Host: %s) answered %s%s" % (
            path, host, got.get("status"), (": " + why) if why else "")
    return code, host, warning


def after_fork():
    """Run in a forked instance once it is in its own cgroup."""
    random.seed()
    if "django.db" in sys.modules:
        # The template closed its connections before the snapshot; one an app
        # opened anyway is dropped, not closed: closing would end the
        # template's session on a shared socket.
        from django.db import connections

        for c in connections.all():
            c.connection = None
    for name in HOOK_MODULES:
        hook = getattr(sys.modules.get(name), "stoke_after_fork", None)
        if callable(hook):
            hook()


def fork_instance(fds):
    """Forks an instance; returns its pid and a pidfd of it."""
    conn_fd, out_fd, err_fd = fds
    sys.stdout.flush()
    sys.stderr.flush()
    # SIGTERM stays blocked across the fork until the child has dropped the
    # template's handler: a stop that came in between would otherwise run
    # that handler (sys.exit) in the child and print a traceback.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for fd in fds:
            os.close(fd)
        # Not reaped before this: the SIGCHLD handler only wakes the loop.
        return pid, os.pidfd_open(pid)
    # The child: a new instance, its own process group and session.
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending SIGTERM ends it here, quietly
        os.setsid()
        signal.set_wakeup_fd(-1)
        for f in TEMPLATE_FILES:
            f.close()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        conn = Conn(socket.socket(fileno=conn_fd))
        t0 = time.monotonic()
        try:
            typ, payload = conn.recv()  # the go-ahead: Stoke moved us into our cgroup
        except (EOFError, OSError):
            os._exit(0)  # a spare Stoke stopped before using it: not an error
        if typ != ord("I"):
            os._exit(70)
        # This instance's own variables (its id, its log stream), where the
        # template's values were inherited.
        os.environ.update(json.loads(payload).get("env", {}) if payload else {})
        def init():
            after_fork()
            if os.environ.get("STOKE_WSGI_REWARM") == "1":
                # With init boost the instance has the CPU to itself until it
                # is ready: serving the warm-up request once more here copies
                # the pages the request path writes (reference counts) and
                # opens what the app opens lazily, so the first real request
                # does not pay for that under the memory-sized CPU quota.
                warm_up(APP)

        # os._exit: a fork must not run the template's exit handlers.
        init_or_exit(init, lambda err: conn.send_json(ord("E"), err), exit_when_read(conn.sock, os._exit))
        conn.send_json(ord("R"), {"init_ms": (time.monotonic() - t0) * 1000})
        serve(conn, APP)
    except SystemExit as e:
        # The template's SIGTERM handler, run here when the template itself
        # was being stopped as it forked, or the app's own sys.exit: quiet.
        os._exit(e.code if isinstance(e.code, int) else 0)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


APP = None
TEMPLATE_FILES = []  # the template's own sockets, pipes and selector, closed in a child


def stoke_socket():
    """The connection Stoke made for this process (a socketpair end)."""
    fd = int(os.environ.pop("STOKE_WSGI_FD"))
    return socket.socket(fileno=fd)


def template():
    global APP
    ctl = stoke_socket()

    def send(obj, fds=()):
        data = json.dumps(obj, separators=(",", ":")).encode()
        if fds:
            socket.send_fds(ctl, [data], list(fds))
        else:
            ctl.send(data)

    exit = exit_when_read(ctl, sys.exit)
    APP = init_or_exit(load_app, lambda err: send({"op": "error", **err}), exit)
    status, host, warning = init_or_exit(lambda: warm_up(APP), lambda err: send({"op": "error", **err}), exit)
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()
    gc.collect()
    gc.freeze()  # forked instances then do not touch (copy) the template's objects
    send({"op": "ready", "init_ms": (time.monotonic() - T0) * 1000, "warmup_status": status,
          "warmup_host": host, "warmup_warning": warning, "python": describe_python()})

    # Reap children and tell Stoke how they ended.
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ)
    sel.register(rfd, selectors.EVENT_READ)
    TEMPLATE_FILES.extend([ctl, sel, os.fdopen(rfd, "rb", 0), os.fdopen(wfd, "wb", 0)])
    while True:
        for key, _ in sel.select():
            if key.fileobj == rfd:
                os.read(rfd, 512)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    send({"op": "exit", "pid": pid, "status": status})
                continue
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 3)
            if not msg:
                return  # Stoke closed the control connection
            req = json.loads(msg)
            if len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                send({"op": "fork_failed", "id": req.get("id"), "error": "expected 3 fds, got %d" % len(fds)})
                continue
            try:
                pid, pidfd = fork_instance(fds)
                try:
                    send({"op": "forked", "id": req.get("id"), "pid": pid}, [pidfd])
                finally:
                    os.close(pidfd)
            except OSError as e:
                send({"op": "fork_failed", "id": req.get("id"), "error": str(e)})


def check():
    """Imports the app as an instance would and reports on fd
    STOKE_WSGI_REPORT_FD (for `stoke check` and `stoke import`)."""
    report = os.fdopen(int(os.environ["STOKE_WSGI_REPORT_FD"]), "w")

    def fail(err):
        report.write(json.dumps({"ok": False, **err}))
        report.close()

    init_or_exit(load_app, fail, sys.exit)
    report.write(json.dumps({"ok": True, "python": describe_python()}))
    report.close()


def instance():
    conn = Conn(stoke_socket())
    conn.send_json(ord("h"), {"id": os.environ.get("STOKE_INSTANCE_ID", ""), "pid": os.getpid()})
    app = init_or_exit(load_app, lambda err: conn.send_json(ord("E"), err), exit_when_read(conn.sock, sys.exit))
    conn.send_json(ord("R"), {"init_ms": (time.monotonic() - T0) * 1000})
    serve(conn, app)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    mode = os.environ.get("STOKE_WSGI_MODE")
    if mode == "template":
        template()
    elif mode == "check":
        check()
    else:
        instance()
    # Stoke closed the connection: it is stopping us. A SIGTERM from now on
    # (it follows the close) ends the process as is, rather than raising
    # SystemExit inside the interpreter's shutdown ("Exception ignored in
    # threading._shutdown").
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
