"""The IMI v3 REST API (``/umsapi/v3/``) as IGEL's UMS serves it: docs/DOMAIN.md section 6, docs/IMI.md."""
