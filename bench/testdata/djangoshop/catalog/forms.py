from django import forms


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=50, strip=True)
    category = forms.SlugField(required=False)
    max_price = forms.DecimalField(required=False, min_value=0, max_digits=8, decimal_places=2)
    in_stock = forms.BooleanField(required=False)
