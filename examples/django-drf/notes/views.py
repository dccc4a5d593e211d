import os
import random
import sqlite3
import threading

from django.db import connection
from rest_framework import status, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from .models import Note
from .serializers import NoteSerializer

MAX_ALLOC_MB = 4096


class NoteViewSet(viewsets.ModelViewSet):
    """/api/notes/ (list, create) and /api/notes/<id>/ (retrieve, update, delete)."""

    queryset = Note.objects.all()
    serializer_class = NoteSerializer


@api_view(["GET"])
def health(request):
    """Cheap readiness probe: no database access."""
    return Response({"status": "ok"})


@api_view(["GET"])
def whoami(request):
    """Per-process state, to check that forked instances don't share it.

    Two instances forked from one initialised parent must report different
    pids, different random numbers (the RNG is reseeded after fork) and
    database connections each opened by themselves: db_opened_by_pid must
    equal pid. (db_connection is id() of the sqlite3 connection object; in
    siblings forked from one parent it can coincide by address even when the
    connections are distinct, so compare db_opened_by_pid instead.)
    """
    connection.ensure_connection()
    return Response(
        {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "random": random.random(),
            "db_connection": id(connection.connection),
            "db_opened_by_pid": getattr(connection, "opened_by_pid", None),
            "thread": threading.get_ident(),
            "sqlite_version": sqlite3.sqlite_version,
        }
    )


# Kept alive only for the duration of a request; module-level so that a test
# can hold memory across requests with ?keep=1.
_kept = []


@api_view(["GET"])
def alloc(request):
    """Allocate ?mb=N megabytes (touched, so resident) and report the size.

    ?keep=1 keeps the allocation after the response, to grow an instance
    across requests; ?reset=1 frees everything kept.
    """
    if request.query_params.get("reset"):
        _kept.clear()
    try:
        mb = int(request.query_params.get("mb", "0"))
    except ValueError:
        return Response({"error": "mb must be an integer"}, status=status.HTTP_400_BAD_REQUEST)
    if mb < 0 or mb > MAX_ALLOC_MB:
        return Response(
            {"error": f"mb must be between 0 and {MAX_ALLOC_MB}"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    # bytearray(n) may be backed by calloc'd zero pages that are never made
    # resident; repeating a non-zero byte memsets every page.
    buf = bytearray(b"\x01") * (mb * 1024 * 1024)
    if request.query_params.get("keep"):
        _kept.append(buf)
    return Response(
        {
            "allocated_mb": mb,
            "bytes": len(buf),
            "kept_mb": sum(len(b) for b in _kept) // (1024 * 1024),
            "pid": os.getpid(),
        }
    )
