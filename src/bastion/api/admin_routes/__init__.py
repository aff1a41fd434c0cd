"""The ``/admin/v1`` routes, grouped by what they manage; ``api/admin.py`` assembles them."""
