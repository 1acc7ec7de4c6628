from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import Company, ProductPack
from .reports import product_type_consumption
from .tables import PackTable


@login_required
def dashboard(request):
    packs = ProductPack.objects.non_archived().select_related("assigned_ums", "subscription_key", "order")
    table = PackTable(packs, request=request)
    table.paginate(page=request.GET.get("page", 1), per_page=50)
    return render(
        request,
        "licensing/dashboard.html",
        {
            "companies": Company.objects.all(),
            "consumption": product_type_consumption(),
            "table": table,
        },
    )
