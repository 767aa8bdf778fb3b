"""The dashboard's views, one module per page family; ``DashboardAdmin.get_urls`` wires them."""
