from agents.api.views import AgentViewSet
from core.api.viewsets import Router

router = Router()
router.register("agents", AgentViewSet, basename="agent")
urlpatterns = router.urls
