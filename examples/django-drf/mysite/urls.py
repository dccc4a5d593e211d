from django.urls import include, path
from rest_framework.routers import DefaultRouter

from notes import views

router = DefaultRouter()
router.register(r"notes", views.NoteViewSet)

urlpatterns = [
    path("api/health", views.health),
    path("api/whoami", views.whoami),
    path("api/alloc", views.alloc),
    path("api/", include(router.urls)),
]
