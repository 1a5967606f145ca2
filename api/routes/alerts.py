"""/v1/alerts: standing queries (define, list, get, delete), their firings, and backtests over
recorded footage. The engine is api/alerts; its messages also reach /v1/live clients as `alert`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ..alerts import Alert, AlertSpec, Firing
from ..deps import AdminKey, ReadKey, ServiceDep
from ..schemas import AlertBacktestRequest, BacktestRequest

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Newest first, at most this many.")]


@router.post(
    "/v1/alerts", response_model=Alert, status_code=201, summary="Define (or replace) a standing query"
)
def define(spec: AlertSpec, service: ServiceDep, _key: AdminKey) -> Alert:
    return service.alert_engine().define(spec)


@router.get("/v1/alerts", response_model=dict[str, list[Alert]], summary="Defined alerts")
def list_alerts(service: ServiceDep, _key: ReadKey) -> dict[str, list[Alert]]:
    return {"alerts": service.alert_engine().list()}


@router.get("/v1/alerts/{alert_id}", response_model=Alert, summary="One alert")
def get_alert(alert_id: AlertId, service: ServiceDep, _key: ReadKey) -> Alert:
    return service.alert_engine().get(alert_id)


@router.delete("/v1/alerts/{alert_id}", status_code=204, response_class=Response, summary="Delete an alert")
def delete_alert(alert_id: AlertId, service: ServiceDep, _key: AdminKey) -> Response:
    service.alert_engine().delete(alert_id)
    return Response(status_code=204)


@router.get(
    "/v1/alerts/{alert_id}/firings", response_model=dict[str, list[Firing]], summary="An alert's firings"
)
def alert_firings(
    alert_id: AlertId, service: ServiceDep, _key: ReadKey, limit: Limit = 100
) -> dict[str, Any]:
    return {"firings": service.alert_engine().firings(alert_id, limit)}


@router.get("/v1/firings", response_model=dict[str, list[Firing]], summary="Firings of every alert")
def all_firings(service: ServiceDep, _key: ReadKey, limit: Limit = 100) -> dict[str, Any]:
    return {"firings": service.alert_engine().firings(None, limit)}


@router.post(
    "/v1/alerts/{alert_id}/backtest",
    response_model=dict[str, list[Firing]],
    summary="What a defined alert would have fired over recorded footage",
)
async def backtest(
    alert_id: AlertId, body: BacktestRequest, service: ServiceDep, _key: ReadKey
) -> dict[str, Any]:
    firings = await service.alert_engine().backtest(alert_id, body.streams, body.since, body.until)
    return {"firings": firings}


@router.post(
    "/v1/alerts/backtest",
    response_model=dict[str, list[Firing]],
    summary="What a draft alert (not stored) would have fired over recorded footage",
)
async def backtest_draft(body: AlertBacktestRequest, service: ServiceDep, _key: ReadKey) -> dict[str, Any]:
    firings = await service.alert_engine().backtest(body.alert, body.streams, body.since, body.until)
    return {"firings": firings}
