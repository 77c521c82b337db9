from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api.exceptions import validation_error
from core.api.serializers import StrictCharField, StrictSerializer, iso_datetime
from core.errors import InvalidInput
from workflows.choices import DEFINITION_FIELDS, WorkflowStatus
from workflows.services import definition_check, definition_fields

_STEPS = {
    "research": {
        "id": "research",
        "type": "agent",
        "agent_name": "ResearchAgent",
        "input_mapping": {"topic": "${workflow.input.topic}"},
        "next_step": "write",
    },
    "write": {
        "id": "write",
        "type": "agent",
        "agent_name": "WriterAgent",
        "input_mapping": {"research": "${research.output.findings}", "tone": "formal"},
        "next_step": None,
    },
}
_SCHEMA = {"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}
_DEFINITION = {
    "name": "research-and-write",
    "description": "Research a topic, then write it up.",
    "start_step": "research",
    "input_schema": _SCHEMA,
    "steps": _STEPS,
}
_WORKFLOW = {
    "id": "5b0e6c1a-8f3d-4c2e-9a1b-7d6e5f4c3b2a",
    **_DEFINITION,
    "version": 2,
    "status": "active",
    "workflow_data": {**_DEFINITION, "workflow_id": "5b0e6c1a-8f3d-4c2e-9a1b-7d6e5f4c3b2a", "version": 2},
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T11:00:00Z",
    "created_by": "alice",
    "updated_by": "bob",
}
LIST_FIELDS = [
    "id",
    "name",
    "description",
    "version",
    "status",
    "start_step",
    "step_count",
    "workflow_data",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
]
# What a list item needs of the stored definition: without these, `?fields=` lets the list skip loading it.
DEFINITION_BACKED = {"start_step", "step_count", "workflow_data"}


class DefinitionSerializer(StrictSerializer):
    """The definition fields of a workflow, in the older JSON format."""

    name = StrictCharField(max_length=255)
    description = StrictCharField(max_length=10_000, allow_blank=True, required=False)
    start_step = serializers.JSONField(help_text="Id of the first step.")
    steps = serializers.JSONField(help_text="Object of steps keyed by step id; see the workflow format.")
    input_schema = serializers.JSONField(
        required=False, allow_null=True, help_text="JSON Schema (draft 2020-12) that execute checks input_data against."
    )
    # Older files carry these; the server owns ids and versions, so they are accepted and ignored.
    workflow_id = serializers.JSONField(required=False, write_only=True)
    version = serializers.JSONField(required=False, write_only=True)

    def validate(self, attrs):
        attrs.pop("workflow_id", None)
        attrs.pop("version", None)
        try:
            attrs["plan"] = definition_check({key: attrs[key] for key in DEFINITION_FIELDS if key in attrs})
        except InvalidInput as exc:
            raise validation_error(exc) from None
        return attrs


@extend_schema_serializer(
    examples=[
        OpenApiExample("Two-step workflow", value={**_DEFINITION, "status": "active"}, request_only=True),
        OpenApiExample("Workflow", value=_WORKFLOW, response_only=True),
    ]
)
class WorkflowSerializer(DefinitionSerializer):
    """A workflow: its current definition plus server-owned fields."""

    id = serializers.UUIDField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    status = serializers.ChoiceField(choices=[WorkflowStatus.ACTIVE, WorkflowStatus.INACTIVE], required=False)
    workflow_data = serializers.DictField(read_only=True, help_text="The whole definition as the executor runs it.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    created_by = serializers.CharField(read_only=True)
    updated_by = serializers.CharField(read_only=True)

    def to_internal_value(self, data):
        if self.instance is not None and self.partial and isinstance(data, dict):
            # PATCH: the fields sent replace those of the current definition; the rest stay.
            data = {**definition_fields(self.instance), **data}
        return super().to_internal_value(data)

    def to_representation(self, workflow):
        return workflow_data(workflow)


def _workflow_data(definition: dict, workflow_id: str, version: int) -> dict:
    return {**definition, "workflow_id": workflow_id, "version": version}


def workflow_data(workflow) -> dict:
    definition = workflow.definition
    return {
        "id": str(workflow.id),
        "name": workflow.name,
        "description": workflow.description,
        "version": workflow.version,
        "status": workflow.status,
        "start_step": definition.get("start_step"),
        "steps": definition.get("steps"),
        "input_schema": definition.get("input_schema"),
        "workflow_data": _workflow_data(definition, str(workflow.id), workflow.version),
        "created_at": iso_datetime(workflow.created_at),
        "updated_at": iso_datetime(workflow.updated_at),
        "created_by": workflow.created_by,
        "updated_by": workflow.updated_by,
    }


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Workflow summary",
            response_only=True,
            value={**{k: _WORKFLOW.get(k) for k in LIST_FIELDS}, "step_count": 2},
        )
    ]
)
class WorkflowSummarySerializer(serializers.Serializer):
    """A list item: the workflow with its `workflow_data` (as the older API's list had it), without the
    top-level `steps` and `input_schema`. `?fields=a,b` trims items to those fields."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    start_step = serializers.CharField()
    step_count = serializers.IntegerField()
    workflow_data = serializers.DictField(help_text="The whole definition as the executor runs it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    updated_by = serializers.CharField()

    def to_representation(self, workflow):
        if "definition" in workflow.get_deferred_fields():  # ?fields= asked for none of DEFINITION_BACKED
            return {
                "id": str(workflow.id),
                "name": workflow.name,
                "description": workflow.description,
                "version": workflow.version,
                "status": workflow.status,
                "created_at": iso_datetime(workflow.created_at),
                "updated_at": iso_datetime(workflow.updated_at),
                "created_by": workflow.created_by,
                "updated_by": workflow.updated_by,
            }
        definition = workflow.definition
        return {
            "id": str(workflow.id),
            "name": workflow.name,
            "description": workflow.description,
            "version": workflow.version,
            "status": workflow.status,
            "start_step": definition.get("start_step"),
            "step_count": len(definition.get("steps") or {}),
            "workflow_data": _workflow_data(definition, str(workflow.id), workflow.version),
            "created_at": iso_datetime(workflow.created_at),
            "updated_at": iso_datetime(workflow.updated_at),
            "created_by": workflow.created_by,
            "updated_by": workflow.updated_by,
        }


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Version",
            response_only=True,
            value={
                **{key: value for key, value in _WORKFLOW.items() if key != "updated_at"},
                "created_at": "2026-11-25T11:00:00Z",
                "created_by": "bob",
                "updated_at": "2026-11-25T11:00:00Z",
                "workflow_id": _WORKFLOW["id"],
                "definition": _DEFINITION,
            },
        )
    ]
)
class WorkflowVersionSerializer(WorkflowSerializer):
    """One saved version as a whole workflow (the older API's versions were workflows), so a client can
    open it like a workflow: `id` is the workflow's (execute runs its current version), `version`,
    the definition fields and `workflow_data` are the version's, `created_at` / `created_by` (and
    `updated_*`) say when and by whom the version was saved, `status` is the workflow's."""

    workflow_id = serializers.UUIDField(read_only=True, help_text="Same as id.")
    definition = serializers.DictField(read_only=True, help_text="The version's definition as saved.")

    def to_representation(self, version):
        workflow = self.context.get("workflow") or version.workflow
        definition = version.definition
        return {
            "id": str(workflow.id),
            "name": definition.get("name", workflow.name),
            "description": definition.get("description", ""),
            "version": version.version,
            "status": workflow.status,
            "start_step": definition.get("start_step"),
            "steps": definition.get("steps"),
            "input_schema": definition.get("input_schema"),
            "workflow_data": _workflow_data(definition, str(workflow.id), version.version),
            "created_at": iso_datetime(version.created_at),
            "updated_at": iso_datetime(version.created_at),
            "created_by": version.created_by,
            "updated_by": version.created_by,
            "workflow_id": str(workflow.id),
            "definition": definition,
        }


@extend_schema_serializer(examples=[OpenApiExample("Definition to check", value=_DEFINITION, request_only=True)])
class ValidateSerializer(DefinitionSerializer):
    pass


@extend_schema_serializer(
    examples=[OpenApiExample("Valid", value={"valid": True, "errors": [], "plan": _DEFINITION}, response_only=True)]
)
class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.DictField())
    plan = serializers.DictField(help_text="The normalised definition, as it would be saved and executed.")
