from audit.api.views import AuditEventViewSet
from core.api.viewsets import Router

router = Router()
router.register("audit-logs", AuditEventViewSet, basename="audit-log")
urlpatterns = router.urls
