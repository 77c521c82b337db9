from django.urls import path

from core.api.viewsets import Router
from runs.api.stream import EventsView, RunEventsView
from runs.api.views import RunViewSet, WorkflowExecuteViewSet

router = Router()
router.register("runs", RunViewSet, basename="run")
router.register("workflows", WorkflowExecuteViewSet, basename="workflow-execute")
urlpatterns = [
    path("runs/<uuid:pk>/events", RunEventsView.as_view(), name="run-events"),
    path("events", EventsView.as_view(), name="events"),
    *router.urls,
]
