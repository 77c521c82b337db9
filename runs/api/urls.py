from core.api.viewsets import Router
from runs.api.views import RunViewSet, WorkflowExecuteViewSet

router = Router()
router.register("runs", RunViewSet, basename="run")
router.register("workflows", WorkflowExecuteViewSet, basename="workflow-execute")
urlpatterns = router.urls
