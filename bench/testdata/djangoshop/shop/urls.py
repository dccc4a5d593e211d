import os

from django.urls import include, path

# URL_PREFIX mounts the shop below a path, for several copies behind one gateway.
prefix = os.environ.get("URL_PREFIX", "")

urlpatterns = [path(prefix + "shop/", include("catalog.urls"))]
