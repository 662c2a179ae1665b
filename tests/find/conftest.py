from tests.apply.conftest import environments_file

__all__ = ["environments_file"]
