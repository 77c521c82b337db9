from core.api.viewsets import Router
from runs.api.views import RunViewSet

router = Router()
router.register("runs", RunViewSet, basename="run")
urlpatterns = router.urls
