from tests.conftest import Api


def test_typed_fetch_returns_item_roles_and_lock_state(api: Api, demo) -> None:  # type: ignore[no-untyped-def]
    run_id = demo.notable["model run with annotations"]
    response = api.http.get(f"{api.registry}/registry/activity/model_run/fetch", params={"id": run_id},
                            headers=api.auth())
    body = response.json()
    assert response.status_code == 200
    assert body["status"]["success"] is True
    assert body["item"]["id"] == run_id
    assert body["roles"] == ["metadata-read", "metadata-write", "admin"]
    assert body["locked"] is False
    assert body["item_is_seed"] is False
