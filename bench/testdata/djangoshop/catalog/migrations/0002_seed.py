from django.db import migrations

SEED = {
    "tea": ["Assam", "Darjeeling", "Sencha", "Rooibos", "Earl Grey"],
    "coffee": ["Espresso", "Filter", "Decaf"],
    "cups": ["Mug", "Glass", "Bowl", "Thermos"],
}


def seed(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    Product = apps.get_model("catalog", "Product")
    n = 0
    for cat, names in SEED.items():
        c = Category.objects.create(name=cat.title(), slug=cat)
        for name in names:
            n += 1
            Product.objects.create(category=c, name=name, slug=f"{cat}-{name.lower().replace(' ', '-')}",
                                   price_cents=150 * n + 99, stock=(n * 7) % 5 * 1200)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
