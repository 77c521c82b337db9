from core.api.viewsets import Router
from schedules.api.views import ScheduleViewSet

router = Router()
router.register("schedules", ScheduleViewSet, basename="schedule")
urlpatterns = router.urls
