import os

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from notes import views

router = DefaultRouter()
router.register(r"notes", views.NoteViewSet)

# URL_PREFIX mounts the API below a path (e.g. "v2/" serves /v2/api/notes/),
# for running several copies behind one gateway.
prefix = os.environ.get("URL_PREFIX", "")

urlpatterns = [
    path(prefix + "api/health", views.health),
    path(prefix + "api/whoami", views.whoami),
    path(prefix + "api/alloc", views.alloc),
    path(prefix + "api/", include(router.urls)),
]
