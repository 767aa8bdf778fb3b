"""URLs of the test project (none needed beyond the testproject's view tests)."""

urlpatterns: list = []
