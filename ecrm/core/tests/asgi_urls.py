"""Views for test_asgi_pool.py: which thread and database connection served a request."""

import threading
import time

from django.db import connection
from django.http import JsonResponse
from django.urls import path

RUNNING = {"now": 0, "most": 0}
_lock = threading.Lock()


def who(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"thread": threading.current_thread().name, "connection": id(connection.connection)})


def slow(request):
    with _lock:
        RUNNING["now"] += 1
        RUNNING["most"] = max(RUNNING["most"], RUNNING["now"])
    time.sleep(0.3)
    with _lock:
        RUNNING["now"] -= 1
    return JsonResponse({"thread": threading.current_thread().name})


def boom(request):
    raise RuntimeError("a view that fails")


urlpatterns = [path("who/", who), path("slow/", slow), path("boom/", boom)]
