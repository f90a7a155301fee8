"""Routes of the catalog editor (included by monetize/urls_tenant.py under /catalog/)."""

from django.urls import path

from console.catalog import adjustments, views

urlpatterns = [
    path("", views.catalog_home, name="catalog"),
    path("preview/", views.catalog_preview, name="catalog-preview"),
    path("export.yaml", views.catalog_export_download, name="catalog-export"),
    path("import/", views.catalog_import_page, name="catalog-import"),
    path("tiers/new/", views.tier_new, name="catalog-tier-new"),
    path("tiers/<slug:code>/", views.tier_edit, name="catalog-tier"),
    path("tiers/<slug:code>/prices/new/", views.price_new, name="catalog-price-new"),
    path("prices/<str:price_id>/", views.price_detail, name="catalog-price"),
    path("prices/<str:price_id>/deactivate/", views.price_deactivate, name="catalog-price-deactivate"),
    path("coupons/", adjustments.coupon_list_page, name="catalog-coupons"),
    path("coupons/new/", adjustments.coupon_new, name="catalog-coupon-new"),
    path("coupons/<str:code>/", adjustments.coupon_detail, name="catalog-coupon"),
    path(
        "coupons/<str:code>/deactivate/",
        adjustments.coupon_deactivate_page,
        name="catalog-coupon-deactivate",
    ),
    path("tax-rates/", adjustments.tax_rate_list_page, name="catalog-tax-rates"),
    path("tax-rates/new/", adjustments.tax_rate_new, name="catalog-tax-rate-new"),
    path("tax-rates/<str:tax_rate_id>/", adjustments.tax_rate_detail, name="catalog-tax-rate"),
    path(
        "tax-rates/<str:tax_rate_id>/deactivate/",
        adjustments.tax_rate_deactivate_page,
        name="catalog-tax-rate-deactivate",
    ),
]
