from core.api.viewsets import Router
from workflows.api.views import WorkflowViewSet

router = Router()
router.register("workflows", WorkflowViewSet, basename="workflow")
urlpatterns = router.urls
