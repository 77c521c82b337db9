class ReadOnlyAdminMixin:
    """Rows written only by the system (runs, logs, outbox): the admin shows them, never edits them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
