from django.contrib import messages
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from .forms import SearchForm
from .models import Category, Product


def _search(request):
    form = SearchForm(request.GET or None)
    products = Product.objects.select_related("category")
    if form.is_valid():
        d = form.cleaned_data
        if d["q"]:
            products = products.filter(Q(name__icontains=d["q"]) | Q(category__name__icontains=d["q"]))
        if d["category"]:
            products = products.filter(category__slug=d["category"])
        if d["max_price"] is not None:
            products = products.filter(price_cents__lte=int(d["max_price"] * 100))
        if d["in_stock"]:
            products = products.filter(stock__gt=0)
    return form, products


def product_list(request):
    form, products = _search(request)
    categories = Category.objects.annotate(n=Count("products"))
    if form.is_bound and not form.is_valid():
        messages.warning(request, "Some filters were ignored.")
    return render(request, "catalog/list.html", {"form": form, "products": products, "categories": categories})


def product_detail(request, slug):
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    seen = request.session.get("seen", [])
    if slug not in seen:
        request.session["seen"] = (seen + [slug])[-5:]
    return render(request, "catalog/detail.html", {"product": product})


def product_api(request):
    _, products = _search(request)
    return JsonResponse({"products": [
        {"name": p.name, "slug": p.slug, "category": p.category.slug, "price": p.price, "stock": p.stock}
        for p in products
    ]})
